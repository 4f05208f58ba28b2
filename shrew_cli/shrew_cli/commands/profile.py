"""``shrew profile``: run a graph under the profiler; print the op table, write a trace."""

from __future__ import annotations

from ..common import add_dim_option, add_runtime_options, executor, graph_name, random_inputs
from .run import _forward, _forward_backward


def cmd_profile(args, out) -> int:
    from shrew.profiler import profile

    ex = executor(args)
    graph = graph_name(ex, args)
    feed = random_inputs(ex, graph, {}, args.seed or 0)
    step = _forward_backward if args.backward else _forward
    step(ex, graph, feed)  # warm-up: kernel compilation is not profiled
    with profile(record_shapes=True, profile_memory=True) as prof:
        for _ in range(args.iters):
            step(ex, graph, feed)
    table = prof.key_averages()
    rows = [[r.name, r.count, r.total_us / 1e3, r.avg_us] for r in table.rows]
    out.table(["op", "calls", "total ms", "avg us"], rows)
    out.line(f"peak memory {prof.peak_memory / 2**20:.2f} MiB over {args.iters} run(s)")
    prof.export_chrome_trace(args.trace)
    out.line(f"Chrome trace written to {args.trace} (open in https://ui.perfetto.dev)")
    out.set(
        graph=graph,
        iters=args.iters,
        trace=args.trace,
        peak_memory=prof.peak_memory,
        ops=[dict(zip(["name", "count", "total_ms", "avg_us"], r)) for r in rows],
    )
    return 0


def register(sub) -> None:
    c = sub.add_parser("profile", help="op-level profile of a graph, with a Chrome trace")
    c.add_argument("file", help="the .sw program")
    add_dim_option(c)
    add_runtime_options(c)
    c.add_argument("--iters", type=int, default=5)
    c.add_argument("--backward", action="store_true", help="profile forward + backward")
    c.add_argument("--trace", default="trace.json", help="where to write the Chrome trace")
    c.set_defaults(func=cmd_profile)
