"""``shrew validate | dump | info``: check and inspect a program without running it."""

from __future__ import annotations

import sys

import numpy as np

import shrew_core as sc
import shrew_ir

from ..common import add_dim_option, dims, existing_file, load_module


def cmd_validate(args, out) -> int:
    module = shrew_ir.lower(shrew_ir.parse_file(existing_file(args.file)))
    diags = shrew_ir.validate(module, dims=dims(args.dim) or None)
    for d in diags:
        out.note(shrew_ir.render_diagnostic(d))
    errors = sum(d.severity == "error" for d in diags)
    warnings = len(diags) - errors
    nodes = sum(len(g.nodes) for g in module.graphs.values())
    status = "error" if errors else "ok"
    out.line(
        f"{args.file}: {status}: {len(module.graphs)} graph(s), {nodes} nodes, "
        f"{errors} error(s), {warnings} warning(s)"
    )
    out.set(
        file=args.file,
        ok=not errors,
        graphs=len(module.graphs),
        nodes=nodes,
        diagnostics=[
            {
                "severity": d.severity,
                "message": d.message,
                "line": getattr(d.span, "line", None),
                "column": getattr(d.span, "column", None),
            }
            for d in diags
        ],
    )
    return 1 if errors else 0


def cmd_dump(args, out) -> int:
    module = load_module(args)
    if args.optimize:
        report = shrew_ir.optimize(module, args.optimize)
        out.note(f"// {report}")
    text = shrew_ir.to_dot(module) if args.dot else shrew_ir.dump(module)
    if out.as_json:
        out.set(file=args.file, format="dot" if args.dot else "text", ir=text)
    else:
        sys.stdout.write(text)
    return 0


def cmd_info(args, out) -> int:
    module = load_module(args)
    meta = module.metadata
    out.line(
        f"{meta.get('name', args.file)}" + (f" v{meta['version']}" if "version" in meta else "")
    )
    rows = []
    for name, g in module.graphs.items():
        rows.append(
            [
                name,
                _types(g, g.inputs),
                ", ".join(f"{o.name}: {g.nodes[o.node].type}" for o in g.outputs),
                len(g.nodes),
                len(g.params),
                _param_elements(g, module, args),
            ]
        )
    out.table(["graph", "inputs", "outputs", "nodes", "params", "elements"], rows)
    tr = module.training
    training = None
    if tr is not None:
        opt = tr.optimizer
        extra = ", ".join(f"{k}={v}" for k, v in opt.extra.items())
        out.line(
            f"\ntraining: model {tr.model or '-'}, loss {tr.loss}, optimizer {opt.type} "
            f"(lr={opt.lr}{', ' + extra if extra else ''}), epochs {tr.epochs}, batch "
            f"{tr.batch_size}, precision {tr.precision}"
        )
        training = {
            "model": tr.model,
            "loss": tr.loss,
            "optimizer": {"type": opt.type, "lr": opt.lr, **dict(opt.extra)},
            "epochs": tr.epochs,
            "batch_size": tr.batch_size,
            "precision": tr.precision,
        }
    out.set(
        name=meta.get("name"),
        version=meta.get("version"),
        graphs=[
            dict(zip(["name", "inputs", "outputs", "nodes", "params", "elements"], r)) for r in rows
        ],
        training=training,
    )
    return 0


def _types(graph, ids) -> str:
    return ", ".join(f"{graph.nodes[i].name}: {graph.nodes[i].type}" for i in ids) or "-"


def _param_elements(graph, module, args) -> int | str:
    from shrew.exec.params import resolve_shape

    total = 0
    env = sc.ShapeEnv(dims(args.dim))
    for p in graph.params:
        try:
            total += int(np.prod(resolve_shape(p.type, env, module.config, p.name)))
        except sc.ShrewError:
            return "?"
    return total


def register(sub) -> None:
    c = sub.add_parser("validate", help="check a program and report every error and warning")
    c.add_argument("file", help="the .sw program")
    add_dim_option(c)
    c.set_defaults(func=cmd_validate)

    c = sub.add_parser("dump", help="print the graph IR (or Graphviz DOT with --dot)")
    c.add_argument("file", help="the .sw program")
    add_dim_option(c)
    c.add_argument("--optimize", type=int, default=0, choices=(0, 1, 2), metavar="LEVEL")
    c.add_argument("--dot", action="store_true", help="Graphviz DOT instead of text")
    c.set_defaults(func=cmd_dump)

    c = sub.add_parser("info", help="graphs, inputs, outputs, parameter counts, @training")
    c.add_argument("file", help="the .sw program")
    add_dim_option(c)
    c.set_defaults(func=cmd_info)
