"""Shared helpers for shrew_ir's tests: paths, the example programs, a NumPy interpreter.

The NumPy reference interpreter (`run_graph`) executes a Graph on small arrays;
the pass tests use it to prove that every optimisation preserves results.
NumPy is a test-only dependency: the package itself never imports it.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

import shrew_ir

PACKAGE_ROOT = Path(__file__).resolve().parents[1]

REPO_ROOT = PACKAGE_ROOT.parent
EXAMPLES = REPO_ROOT / "examples" / "sw"
SHARED_EXAMPLES = REPO_ROOT.parent / "shared" / "sw-examples"
DATA = Path(__file__).resolve().parent / "data"
GOLDEN = Path(__file__).resolve().parent / "golden"

EXAMPLE_FILES = ["demo_mlp.sw", "iris.sw", "wine.sw", "mnist_mlp.sw", "tiny_gpt.sw"]
SHARED_FILES = [
    "demo_mlp.sw",
    "iris_classifier.sw",
    "wine_classifier.sw",
    "mnist/mnist_mlp.sw",
    "tiny_gpt.sw",
    "layers/transformer.sw",
]


def errors_of(diags):
    return [d for d in diags if d.is_error]


def compile_source(source: str, filename: str = "<test>"):
    return shrew_ir.lower(shrew_ir.parse(source, filename))


# --------------------------------------------------------------------------- interpreter


def _unary(fn):
    return lambda args, attrs: fn(args[0])


def _softmax(x, dim):
    e = np.exp(x - x.max(axis=dim, keepdims=True))
    return e / e.sum(axis=dim, keepdims=True)


def _reduce(fn):
    def run(args, attrs):
        dim = attrs.get("dim")
        axis = tuple(dim) if isinstance(dim, list) else dim
        return fn(args[0], axis=axis, keepdims=attrs.get("keepdim", False))

    return run


def _transpose(args, attrs):
    x = args[0]
    if x.ndim < 2:
        return x
    return np.swapaxes(x, attrs.get("dim0", -2), attrs.get("dim1", -1))


def _layer_norm(args, attrs):
    x = args[0]
    eps = attrs.get("eps", 1e-5)
    mu = x.mean(axis=-1, keepdims=True)
    var = x.var(axis=-1, keepdims=True)
    y = (x - mu) / np.sqrt(var + eps)
    if len(args) > 1:
        y = y * args[1]
    if len(args) > 2:
        y = y + args[2]
    return y


NUMPY_OPS = {
    "identity": lambda a, k: a[0],
    "neg": _unary(np.negative),
    "abs": _unary(np.abs),
    "relu": _unary(lambda x: np.maximum(x, 0)),
    "sigmoid": _unary(lambda x: 1 / (1 + np.exp(-x))),
    "tanh": _unary(np.tanh),
    "exp": _unary(np.exp),
    "log": _unary(np.log),
    "sqrt": _unary(np.sqrt),
    "square": _unary(np.square),
    "silu": _unary(lambda x: x / (1 + np.exp(-x))),
    "gelu": _unary(lambda x: 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))),
    "add": lambda a, k: a[0] + a[1],
    "sub": lambda a, k: a[0] - a[1],
    "mul": lambda a, k: a[0] * a[1],
    "div": lambda a, k: a[0] / a[1],
    "pow": lambda a, k: np.power(a[0], a[1]),
    "maximum": lambda a, k: np.maximum(a[0], a[1]),
    "minimum": lambda a, k: np.minimum(a[0], a[1]),
    "gt": lambda a, k: a[0] > a[1],
    "lt": lambda a, k: a[0] < a[1],
    "where": lambda a, k: np.where(a[0], a[1], a[2]),
    "matmul": lambda a, k: np.matmul(a[0], a[1]),
    "matmul_add": lambda a, k: np.matmul(a[0], a[1]) + a[2],
    "linear": lambda a, k: np.matmul(a[0], np.swapaxes(a[1], -1, -2))
    + (a[2] if len(a) > 2 else 0),
    "transpose": _transpose,
    "permute": lambda a, k: np.transpose(a[0], k["dims"]),
    "reshape": lambda a, k: np.reshape(a[0], k["shape"]),
    "softmax": lambda a, k: _softmax(a[0], k.get("dim", -1)),
    "sum": _reduce(np.sum),
    "mean": _reduce(np.mean),
    "layer_norm": _layer_norm,
    "concat": lambda a, k: np.concatenate(a, axis=k.get("dim", 0)),
    "dropout": lambda a, k: a[0] if k.get("p", 0.5) == 0 else a[0],
    "cast": lambda a, k: a[0],
}


def _fused(args, attrs):
    results = []
    for step in attrs["steps"]:
        op, refs = step[0], step[1:]
        vals = []
        for r in refs:
            if isinstance(r, str) and r.startswith("$"):
                vals.append(args[int(r[1:])])
            elif isinstance(r, str) and r.startswith("%"):
                vals.append(results[int(r[1:])])
            else:
                vals.append(np.float64(r))
        results.append(NUMPY_OPS[op](vals, {}))
    return results[-1]


NUMPY_OPS["fused_elementwise"] = _fused


def run_graph(graph, feeds: dict) -> dict:
    """Evaluate `graph` with NumPy; `feeds` maps input/param names to arrays."""
    values = {}
    for nid in graph.topo_order():
        node = graph.nodes[nid]
        if node.op in ("input", "param"):
            values[nid] = np.asarray(feeds[node.name], dtype=np.float64)
        elif node.op == "constant":
            values[nid] = np.asarray(node.attrs["value"], dtype=np.float64)
        else:
            args = [values[i] for i in node.inputs]
            values[nid] = NUMPY_OPS[node.op](args, node.attrs)
    return {out.name: values[out.node] for out in graph.outputs}


def random_feeds(graph, rng, sizes: dict | None = None) -> dict:
    sizes = sizes or {}
    feeds = {}
    for nid in list(graph.inputs) + [p.node for p in graph.params]:
        node = graph.nodes[nid]
        shape = []
        for d in node.type.dims:
            if isinstance(d, shrew_ir.Fixed):
                shape.append(d.value)
            else:
                shape.append(sizes.get(str(d), 3))
        feeds[node.name] = rng.standard_normal(shape)
    return feeds


# Test modules import these helpers with `from ir_testkit import ...` (the name
# `conftest` is ambiguous in a monorepo with a root conftest.py).
sys.modules.setdefault("ir_testkit", sys.modules[__name__])
