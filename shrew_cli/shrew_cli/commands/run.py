"""``shrew run | bench``: execute a graph once on given or random inputs, or time it."""

from __future__ import annotations

import time

import numpy as np

import shrew_core as sc

from ..common import (
    add_dim_option,
    add_runtime_options,
    executor,
    graph_name,
    npy_inputs,
    random_inputs,
    summary_row,
)


def cmd_run(args, out) -> int:
    ex = executor(args, args.optimize, jit=args.jit)
    graph = graph_name(ex, args)
    feed = random_inputs(ex, graph, npy_inputs(args.input), args.seed or 0)
    with sc.no_grad():
        outputs = ex.run(graph, feed)
    rows = [summary_row(name, t) for name, t in outputs.items()]
    out.table(["output", "shape", "dtype", "mean", "first values"], rows)
    out.set(
        graph=graph,
        outputs={
            r[0]: {"shape": list(outputs[r[0]].shape), "dtype": r[2], "mean": r[3]} for r in rows
        },
    )
    if args.save:
        from shrew._atomic import atomic_write

        with atomic_write(args.save) as f:
            np.savez(f, **{k: np.asarray(v.numpy()) for k, v in outputs.items()})
        out.line(f"saved {len(outputs)} output(s) to {args.save}")
    return 0


def cmd_bench(args, out) -> int:
    rows = []
    for level in (0, 2):
        for jit in (False, True) if args.jit else (False,):
            ex = executor(args, level, jit=jit)
            graph = graph_name(ex, args)
            feed = random_inputs(ex, graph, {}, 0)
            fwd = best_time(lambda ex=ex, g=graph, f=feed: _forward(ex, g, f), args.iters)
            both = best_time(lambda ex=ex, g=graph, f=feed: _forward_backward(ex, g, f), args.iters)
            nodes = len(ex.module.graphs[graph].nodes)
            rows.append(
                [graph, "jit" if jit else "interpreter", level, nodes, fwd * 1e3, both * 1e3]
            )
    headers = ["graph", "executor", "opt level", "nodes", "forward ms", "fwd+bwd ms"]
    out.table(headers, rows)
    out.set(results=[dict(zip(headers, r)) for r in rows], iters=args.iters)
    return 0


def _forward(ex, graph, feed):
    with sc.no_grad():
        ex.run(graph, feed)


def _forward_backward(ex, graph, feed):
    result = next(iter(ex.run(graph, feed).values()))
    if result.requires_grad:
        result.float().sum().backward()


def best_time(fn, iters: int) -> float:
    """Best of ``iters`` timed calls after one warm-up call (kernel compilation)."""
    fn()
    best = float("inf")
    for _ in range(max(iters, 1)):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def register(sub) -> None:
    c = sub.add_parser("run", help="run a graph on given (--input) or random inputs")
    c.add_argument("file", help="the .sw program")
    add_dim_option(c)
    add_runtime_options(c)
    c.add_argument("--input", action="append", metavar="NAME=FILE.npy")
    c.add_argument("--params", metavar="CKPT", help="trained parameters (.shrew/.safetensors)")
    c.add_argument("--optimize", type=int, default=2, choices=(0, 1, 2))
    c.add_argument("--jit", action="store_true", help="run through the JIT executor")
    c.add_argument("--save", metavar="OUT.npz", help="write the outputs to a .npz")
    c.set_defaults(func=cmd_run)

    c = sub.add_parser("bench", help="time forward and forward+backward at opt levels 0 and 2")
    c.add_argument("file", help="the .sw program")
    add_dim_option(c)
    add_runtime_options(c)
    c.add_argument("--iters", type=int, default=10)
    c.add_argument("--jit", action="store_true", help="also time the JIT executor")
    c.set_defaults(func=cmd_bench)
