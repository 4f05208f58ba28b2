"""``shrew export | import | quantize``: standard files out of and into `.sw` programs."""

from __future__ import annotations

from pathlib import Path

from ..common import (
    UsageError,
    add_dim_option,
    add_runtime_options,
    dims,
    executor,
    existing_file,
    graph_name,
)

EXPORT_SUFFIXES = (".onnx", ".safetensors", ".shrew")


def cmd_export(args, out) -> int:
    suffix = Path(args.output).suffix
    if suffix not in EXPORT_SUFFIXES:
        raise UsageError(f"-o {args.output}: expected one of {', '.join(EXPORT_SUFFIXES)}")
    ex = executor(args)
    if suffix == ".onnx":
        import shrew.onnx

        model = shrew.onnx.export_program(
            ex, args.output, graph=args.graph and graph_name(ex, args), dims=dims(args.dim) or None
        )
        what = f"graph {model.graph.name!r} as ONNX (opset {model.opset_import[0].version})"
    else:
        import shrew.io

        shrew.io.save(ex, args.output)
        what = f"{len(ex.named_params())} parameters"
    out.line(f"wrote {what} to {args.output}")
    out.set(output=args.output, format=suffix[1:], parameters=len(ex.named_params()))
    return 0


def cmd_import(args, out) -> int:
    import shrew.io
    import shrew.onnx

    existing_file(args.file)
    output = Path(args.output)
    if output.suffix != ".sw":
        raise UsageError(f"-o {args.output}: the program is written as a .sw file")
    source, weights = shrew.onnx.to_sw(args.file)
    weights_path = output.with_suffix(".safetensors")
    from shrew._atomic import atomic_write_bytes

    atomic_write_bytes(output, source.encode())
    shrew.io.save_safetensors(weights, weights_path)
    out.line(f"wrote {output} and its {len(weights)} weights to {weights_path}")
    out.line(f"run it: shrew run {output} --params {weights_path}")
    out.set(program=str(output), weights=str(weights_path), tensors=len(weights))
    return 0


def cmd_quantize(args, out) -> int:
    import numpy as np

    import shrew.quantization as q

    ex = executor(args)
    config = q.QuantConfig(
        bits=args.bits,
        symmetric=not args.asymmetric,
        granularity=args.granularity,
        group_size=args.group_size,
    )
    before = _held_out_metrics(ex, args) if args.data else None
    q.quantize_executor(ex, config)
    weights, rows, seen = ex.named_params(), [], set()
    for (gname, nid), layer in ex.quantized_weights.items():
        node = ex.module.graphs[gname].nodes[nid]
        pname = ex.module.graphs[gname].nodes[node.inputs[1]].name
        if (gname, pname) in seen:
            continue
        seen.add((gname, pname))
        w = weights[f"{gname}/{pname}"].numpy()
        w = w if node.op == "linear" else w.T
        deq = layer.dequantize_weight().numpy()
        rows.append([f"{gname}/{pname}", "x".join(map(str, w.shape)), w.nbytes,
                     layer.qweight.size_bytes, float(np.abs(deq - w).max())])  # fmt: skip
    if not rows:
        raise UsageError(f"{args.file}: no linear/matmul weight params to quantize")
    out.table(["parameter", "shape", "bytes", "quantized bytes", "max |error|"], rows)
    original, quantized = sum(r[2] for r in rows), sum(r[3] for r in rows)
    out.line(
        f"{len(rows)} weight(s) quantized to int{args.bits} {args.granularity}: "
        f"{original:,} -> {quantized:,} bytes ({original / quantized:.2f}x smaller)"
    )
    after = _held_out_metrics(ex, args) if args.data else None
    if before is not None:
        out.table(
            ["weights", *before],
            [["float", *before.values()], [f"int{args.bits}", *after.values()]],
        )
    out.set(
        bits=args.bits,
        granularity=args.granularity,
        original_bytes=original,
        quantized_bytes=quantized,
        tensors=[dict(zip(["name", "shape", "bytes", "quantized_bytes", "max_abs_error"], r))
                 for r in rows],
        metrics={"float": before, "quantized": after} if before is not None else None,
    )  # fmt: skip
    return 0


def _held_out_metrics(ex, args) -> dict:
    """Loss and accuracy of the eval-mode executor on the held-out split of ``--data``."""
    from shrew.exec import Trainer

    from ..data import load_arrays, split

    trainer = Trainer(ex)
    x, y = load_arrays(args.data, ex.input_names(trainer.graph))
    _, (xte, yte) = split(x, y, 0.2, args.seed or 0)
    return trainer.evaluate(xte, yte)


def register(sub) -> None:
    c = sub.add_parser("export", help="write a program as ONNX, or its parameters")
    c.add_argument("file", help="the .sw program")
    c.add_argument("-o", "--output", required=True, help="model.onnx | model.safetensors | .shrew")
    c.add_argument("--params", metavar="CKPT", help="trained parameters to export")
    add_dim_option(c)
    add_runtime_options(c)
    c.set_defaults(func=cmd_export)

    c = sub.add_parser("import", help="turn an ONNX model into an editable .sw program")
    c.add_argument("file", help="the .onnx model")
    c.add_argument("-o", "--output", required=True, help="the .sw file to write")
    c.set_defaults(func=cmd_import)

    c = sub.add_parser("quantize", help="post-training int8/int4 weight quantization")
    c.add_argument("file", help="the .sw program")
    c.add_argument("--params", metavar="CKPT", help="trained parameters")
    c.add_argument("--bits", type=int, choices=(8, 4), default=8)
    c.add_argument(
        "--granularity", choices=("per_tensor", "per_channel", "per_group"), default="per_channel"
    )
    c.add_argument("--group-size", type=int, default=128)
    c.add_argument("--asymmetric", action="store_true")
    c.add_argument("--data", help="also compare held-out loss/accuracy (as `train --data`)")
    add_dim_option(c)
    add_runtime_options(c)
    c.set_defaults(func=cmd_quantize)
