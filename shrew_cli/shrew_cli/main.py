"""The ``shrew`` command: validate, dump, info, run, train and bench .sw programs.

Each subcommand is a function ``cmd_<name>(args) -> exit code``; ``main(argv)`` parses
the arguments, runs one, and turns Shrew errors into a rendered message and exit code 1
(2 for bad command-line usage, as argparse does).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import numpy as np

import shrew_core as sc
import shrew_ir

from .tables import Progress, table


# ---------------------------------------------------------------- helpers
def _dims(pairs: Sequence[str]) -> dict[str, int]:
    dims = {}
    for pair in pairs or ():
        name, sep, value = pair.partition("=")
        if not sep or not value.lstrip("-").isdigit():
            raise SystemExit(f"shrew: --dim expects NAME=INT, got {pair!r}")
        dims[name] = int(value)
    return dims


def _module(args) -> shrew_ir.IRModule:
    return shrew_ir.lower(shrew_ir.parse_file(args.file))


def _config(args, training: bool = False):
    from shrew.exec import RuntimeConfig

    return RuntimeConfig(
        dims=_dims(getattr(args, "dim", None)),
        device=getattr(args, "device", None),
        seed=getattr(args, "seed", None),
        training=training,
        dtype=getattr(args, "dtype", None),
    )


def _type_str(graph, ids) -> str:
    return ", ".join(f"{graph.nodes[i].name}: {graph.nodes[i].type}" for i in ids) or "-"


# ---------------------------------------------------------------- commands
def cmd_validate(args) -> int:
    module = _module(args)
    diags = shrew_ir.validate(module, dims=_dims(args.dim) or None)
    for d in diags:
        print(shrew_ir.render_diagnostic(d), file=sys.stderr)
    errors = sum(d.severity == "error" for d in diags)
    warnings = len(diags) - errors
    nodes = sum(len(g.nodes) for g in module.graphs.values())
    status = "error" if errors else "ok"
    print(
        f"{args.file}: {status}: {len(module.graphs)} graph(s), {nodes} nodes, "
        f"{errors} error(s), {warnings} warning(s)"
    )
    return 1 if errors else 0


def cmd_dump(args) -> int:
    module = _module(args)
    shrew_ir.check(module, dims=_dims(args.dim) or None)
    if args.optimize:
        report = shrew_ir.optimize(module, args.optimize)
        print(f"// {report}", file=sys.stderr)
    print(shrew_ir.to_dot(module) if args.dot else shrew_ir.dump(module), end="")
    return 0


def cmd_info(args) -> int:
    module = _module(args)
    shrew_ir.check(module, dims=_dims(args.dim) or None)
    meta = module.metadata
    print(f"{meta.get('name', args.file)}" + (f" v{meta['version']}" if "version" in meta else ""))
    rows = []
    for name, g in module.graphs.items():
        rows.append(
            [
                name,
                _type_str(g, g.inputs),
                ", ".join(f"{o.name}: {g.nodes[o.node].type}" for o in g.outputs),
                len(g.nodes),
                len(g.params),
                _param_elements(g, module, args),
            ]
        )
    print(table(["graph", "inputs", "outputs", "nodes", "params", "elements"], rows))
    tr = module.training
    if tr is not None:
        opt = tr.optimizer
        extra = ", ".join(f"{k}={v}" for k, v in opt.extra.items())
        print(
            f"\ntraining: model {tr.model or '-'}, loss {tr.loss}, optimizer {opt.type} "
            f"(lr={opt.lr}{', ' + extra if extra else ''}), epochs {tr.epochs}, batch "
            f"{tr.batch_size}, precision {tr.precision}"
        )
    return 0


def _param_elements(graph, module, args) -> int | str:
    from shrew.exec.params import resolve_shape

    total = 0
    env = sc.ShapeEnv(_dims(args.dim))
    for p in graph.params:
        try:
            total += int(np.prod(resolve_shape(p.type, env, module.config, p.name)))
        except sc.ShrewError:
            return "?"
    return total


def _random_inputs(ex, graph: str, given: dict, seed: int) -> dict:
    g = ex.module.graphs[graph]
    rng = np.random.default_rng(seed)
    feed = dict(given)
    for nid in g.inputs:
        node = g.nodes[nid]
        if node.name in feed or nid in g.optional_inputs:
            continue
        dims = [
            d.value if isinstance(d, shrew_ir.Fixed) else ex.config.dims.get(str(d), 2)
            for d in getattr(node.type, "dims", ())
        ]
        dtype = getattr(node.type, "dtype", "f32")
        if dtype.startswith(("f", "bf")):
            feed[node.name] = rng.standard_normal(dims).astype(np.float32)
        else:
            feed[node.name] = np.zeros(dims, dtype=np.int64)
    return feed


def _load_inputs(pairs: Sequence[str]) -> dict:
    feed = {}
    for pair in pairs or ():
        name, sep, path = pair.partition("=")
        if not sep:
            raise SystemExit(f"shrew: --input expects NAME=FILE.npy, got {pair!r}")
        feed[name] = np.load(path)
    return feed


def cmd_run(args) -> int:
    from shrew.exec import Executor

    module = _module(args)
    config = _config(args)
    shrew_ir.check(module, dims=config.dims or None)
    shrew_ir.optimize(module, args.optimize)
    ex = Executor(module, config)
    graph = args.graph or ex.graph_names()[0]
    feed = _random_inputs(ex, graph, _load_inputs(args.input), args.seed or 0)
    with sc.no_grad():
        outputs = ex.run(graph, feed)
    rows = []
    for name, t in outputs.items():
        arr = np.asarray(t.numpy(), dtype=np.float64)
        head = ", ".join(f"{v:.4g}" for v in arr.reshape(-1)[:4])
        rows.append(
            [
                name,
                "x".join(map(str, t.shape)) or "scalar",
                t.dtype.name,
                float(arr.mean()) if arr.size else 0.0,
                head,
            ]
        )
    print(table(["output", "shape", "dtype", "mean", "first values"], rows))
    if args.save:
        np.savez(args.save, **{k: np.asarray(v.numpy()) for k, v in outputs.items()})
        print(f"saved {len(outputs)} output(s) to {args.save}")
    return 0


def cmd_train(args) -> int:
    from shrew.exec import Executor, Trainer

    from .data import load_arrays, split

    module = _module(args)
    config = _config(args)
    shrew_ir.check(module, dims=config.dims or None)
    shrew_ir.optimize(module, 2)
    trainer = Trainer(Executor(module, config), fp32_fallback=args.fp32)
    x, y = load_arrays(args.data, trainer.executor.input_names(trainer.graph))
    (xtr, ytr), (xte, yte) = split(x, y, args.test_size, args.seed or 0)
    epochs = args.epochs or trainer.epochs
    print(
        f"training graph {trainer.graph!r} on {len(ytr)} samples ({len(yte)} held out): "
        f"{trainer.optimizer.__class__.__name__}, loss {trainer.loss_name}, {epochs} epochs"
    )
    progress = Progress(epochs)

    def report(log):
        progress.update(log.epoch + 1, f"loss {log.loss:.4f}  lr {log.lr:.3g}  {log.seconds:.2f}s")

    start = time.perf_counter()
    trainer.fit(
        xtr, ytr, epochs=epochs, batch_size=args.batch_size, seed=args.seed or 0, on_epoch=report
    )
    rows = [["train", *_metrics(trainer.evaluate(xtr, ytr))]]
    if len(yte):
        rows.append(["test", *_metrics(trainer.evaluate(xte, yte))])
    print(table(["split", "loss", "accuracy"], rows))
    print(f"trained in {time.perf_counter() - start:.1f} s")
    if args.save:
        np.savez(args.save, **trainer.executor.state_dict())
        print(f"saved {len(trainer.executor.named_params())} parameters to {args.save}")
    return 0


def _metrics(m: dict) -> list:
    return [m["loss"], m.get("accuracy", "-")]


def cmd_bench(args) -> int:
    from shrew.exec import Executor

    module = _module(args)
    config = _config(args)
    shrew_ir.check(module, dims=config.dims or None)
    rows = []
    for level in (0, 2):
        mod = _module(args)
        if level:
            shrew_ir.optimize(mod, level)
        ex = Executor(mod, config)
        graph = args.graph or ex.graph_names()[0]
        feed = _random_inputs(ex, graph, {}, 0)
        fwd = _time(lambda ex=ex, graph=graph, feed=feed: _forward(ex, graph, feed), args.iters)
        both = _time(
            lambda ex=ex, graph=graph, feed=feed: _forward_backward(ex, graph, feed), args.iters
        )
        rows.append([graph, level, len(mod.graphs[graph].nodes), fwd * 1e3, both * 1e3])
    print(table(["graph", "opt level", "nodes", "forward ms", "fwd+bwd ms"], rows))
    return 0


def _forward(ex, graph, feed):
    with sc.no_grad():
        ex.run(graph, feed)


def _forward_backward(ex, graph, feed):
    out = next(iter(ex.run(graph, feed).values()))
    if out.requires_grad:
        out.float().sum().backward()


def _time(fn, iters: int) -> float:
    fn()  # warm-up (kernel compilation)
    best = float("inf")
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


# ---------------------------------------------------------------- argument parsing
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="shrew", description="Validate, inspect, run, train and benchmark .sw model programs."
    )
    sub = p.add_subparsers(dest="command", required=True)

    def command(name, fn, help_):
        c = sub.add_parser(name, help=help_, description=help_)
        c.add_argument("file", help="the .sw program")
        c.add_argument(
            "--dim",
            action="append",
            metavar="NAME=N",
            help="size of a symbolic dim, e.g. Batch=32 (repeatable)",
        )
        c.set_defaults(func=fn)
        return c

    command("validate", cmd_validate, "check a program and report every error and warning")
    d = command("dump", cmd_dump, "print the graph IR (or Graphviz DOT with --dot)")
    d.add_argument("--optimize", type=int, default=0, choices=(0, 1, 2), metavar="LEVEL")
    d.add_argument("--dot", action="store_true", help="Graphviz DOT instead of text")
    command("info", cmd_info, "summarise graphs, inputs, outputs, parameters and training")
    for name, fn, help_ in (
        ("run", cmd_run, "run a graph on given or random inputs"),
        ("train", cmd_train, "train the @training model graph on data"),
        ("bench", cmd_bench, "time forward and forward+backward"),
    ):
        c = command(name, fn, help_)
        c.add_argument("--device", default=None, help="cpu (default), cuda, or another backend")
        c.add_argument("--dtype", default=None, help="float dtype for params (f32, f64, ...)")
        c.add_argument("--seed", type=int, default=None)
        c.add_argument("--graph", default=None, help="graph name (default: the first)")
        if name == "run":
            c.add_argument("--input", action="append", metavar="NAME=FILE.npy")
            c.add_argument("--optimize", type=int, default=2, choices=(0, 1, 2))
            c.add_argument("--save", metavar="OUT.npz", help="write the outputs to a .npz")
        if name == "train":
            c.add_argument(
                "--data",
                required=True,
                help="iris, wine, digits, breast_cancer, or a .npz/.csv file",
            )
            c.add_argument("--epochs", type=int, default=None)
            c.add_argument("--batch-size", type=int, default=None)
            c.add_argument("--test-size", type=float, default=0.2)
            c.add_argument(
                "--fp32",
                action="store_true",
                help="train in fp32 when @training asks for mixed precision",
            )
            c.add_argument("--save", metavar="PARAMS.npz", help="write trained parameters")
        if name == "bench":
            c.add_argument("--iters", type=int, default=10)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except shrew_ir.IRError as e:
        print(e, file=sys.stderr)
        return 1
    except (sc.ShrewError, NotImplementedError, FileNotFoundError, KeyError) as e:
        print(f"shrew {args.command}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
