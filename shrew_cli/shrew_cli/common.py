"""Pieces every ``shrew`` subcommand shares: argument types, loading a program, inputs.

:class:`UsageError` is a mistake on the command line (a bad ``--dim``, a missing file, an
unknown suffix); ``main`` prints it as one short line and exits with status 2.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np

import shrew_core as sc
import shrew_ir


class UsageError(Exception):
    """A bad command line: printed without a traceback, exit status 2."""


def dims(pairs: Sequence[str] | None) -> dict[str, int]:
    """``["Batch=8", "SeqLen=64"]`` -> ``{"Batch": 8, "SeqLen": 64}``."""
    out = {}
    for pair in pairs or ():
        name, sep, value = pair.partition("=")
        if not sep or not name or not value.strip().isdigit() or int(value) <= 0:
            raise UsageError(f"--dim expects NAME=N with N a positive integer, got {pair!r}")
        out[name.strip()] = int(value)
    return out


def existing_file(path: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise UsageError(f"{path}: no such file")
    if p.is_dir():
        raise UsageError(f"{path}: is a folder, expected a file")
    return p


def load_module(args, optimize_level: int | None = None) -> shrew_ir.IRModule:
    """Parse, lower and check ``args.file`` (shape inference with ``--dim``), then optimise."""
    module = shrew_ir.lower(shrew_ir.parse_file(existing_file(args.file)))
    shrew_ir.check(module, dims=dims(getattr(args, "dim", None)) or None)
    if optimize_level:
        shrew_ir.optimize(module, optimize_level)
    return module


def runtime_config(args, training: bool = False):
    from shrew.exec import RuntimeConfig

    return RuntimeConfig(
        dims=dims(getattr(args, "dim", None)),
        device=getattr(args, "device", None),
        seed=getattr(args, "seed", None),
        training=training,
        dtype=getattr(args, "dtype", None),
    )


def executor(args, optimize_level: int = 2, jit: bool = False, training: bool = False):
    """An Executor (or JitExecutor with ``jit``) for ``args.file``, params from ``--params``."""
    from shrew.exec import Executor

    module = load_module(args, optimize_level)
    config = runtime_config(args, training)
    if jit:
        from shrew.exec import JitExecutor

        ex = JitExecutor(module, config)
    else:
        ex = Executor(module, config)
    params = getattr(args, "params", None)
    if params:
        load_params(ex, params)
    return ex


def load_params(ex, path: str) -> None:
    """Load trained parameters into an executor: a .shrew/.safetensors/.npz tensor file, or
    a training checkpoint written by ``shrew train --checkpoint``."""
    p = existing_file(path)
    if p.suffix == ".npz":
        with np.load(p, allow_pickle=False) as z:
            ex.load_state_dict({k: z[k] for k in z.files})
        return
    import shrew.io

    if "shrew.checkpoint" in shrew.io.load_metadata(p):
        shrew.io.load_checkpoint(p, model=ex)
    else:
        shrew.io.load(p, into=ex)


def context_length(module, dims: dict) -> int | None:
    """The longest sequence a language model takes: ``@config`` ``block_size`` /
    ``max_seq_len`` / ``seq_len``, else ``--dim SeqLen=N``; None if neither says."""
    for key in ("block_size", "max_seq_len", "seq_len"):
        if isinstance(module.config.get(key), int):
            return module.config[key]
    return dims.get("SeqLen")


def graph_name(ex, args) -> str:
    names = ex.graph_names()
    wanted = getattr(args, "graph", None)
    if wanted is None:
        return names[0]
    if wanted not in names:
        raise UsageError(f"--graph {wanted!r}: no such graph; graphs: {', '.join(names)}")
    return wanted


def random_inputs(ex, graph: str, given: dict, seed: int) -> dict:
    """Inputs for ``graph``: those given, random normal floats / zero indices for the rest
    (symbolic dims from ``--dim``; a dynamic ``?`` dim takes ``--dim Batch=N``; else 2)."""
    g = ex.module.graphs[graph]
    rng = np.random.default_rng(seed)
    feed = dict(given)
    for nid in g.inputs:
        node = g.nodes[nid]
        if node.name in feed or nid in g.optional_inputs:
            continue
        shape = [
            d.value
            if isinstance(d, shrew_ir.Fixed)
            else ex.config.dims.get("Batch" if isinstance(d, shrew_ir.Dynamic) else str(d), 2)
            for d in getattr(node.type, "dims", ())
        ]
        dtype = getattr(node.type, "dtype", "f32")
        if dtype.startswith(("f", "bf")):
            feed[node.name] = rng.standard_normal(shape).astype(np.float32)
        else:
            feed[node.name] = np.zeros(shape, dtype=np.int64)
    return feed


def npy_inputs(pairs: Sequence[str] | None) -> dict:
    feed = {}
    for pair in pairs or ():
        name, sep, path = pair.partition("=")
        if not sep:
            raise UsageError(f"--input expects NAME=FILE.npy, got {pair!r}")
        feed[name] = np.load(existing_file(path), allow_pickle=False)
    return feed


def summary_row(name: str, t: sc.Tensor) -> list:
    arr = np.asarray(t.numpy(), dtype=np.float64)
    head = ", ".join(f"{v:.4g}" for v in arr.reshape(-1)[:4])
    return [
        name,
        "x".join(map(str, t.shape)) or "scalar",
        t.dtype.name,
        float(arr.mean()) if arr.size else 0.0,
        head,
    ]


def add_dim_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dim", action="append", metavar="NAME=N", help="size of a symbolic dim, e.g. Batch=32"
    )


def add_runtime_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default=None, help="cpu (default), cuda, auto, or another backend")
    p.add_argument("--dtype", default=None, help="float dtype for params (f32, f64, bf16, ...)")
    p.add_argument("--seed", type=int, default=None, help="seed for params and random inputs")
    p.add_argument("--graph", default=None, help="graph name (default: the first)")
