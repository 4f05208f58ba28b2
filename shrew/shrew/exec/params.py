"""Turning IR parameter declarations into tensors: shapes, dtypes and initialisers."""

from __future__ import annotations

import math

import shrew_core as sc
import shrew_ir
import shrew_nn.init as init
from shrew_core import ShapeEnv

from .errors import ExecutionError

# IR element types -> runtime dtypes (types Shrew lacks widen to the nearest one that holds them)
_DTYPES = {
    "f16": "f16",
    "bf16": "bf16",
    "f32": "f32",
    "f64": "f64",
    "u8": "u8",
    "u32": "u32",
    "i64": "i64",
    "i8": "i64",
    "i16": "i64",
    "i32": "i64",
    "u16": "u32",
    "u64": "i64",
    "bool": "bool",
}


def runtime_dtype(ir_dtype: str, where: str) -> sc.DType:
    try:
        return sc.as_dtype(_DTYPES[ir_dtype])
    except KeyError:
        raise ExecutionError(f"{where}: dtype {ir_dtype!r} is not supported at run time") from None


def resolve_dim(dim, env: ShapeEnv, config: dict, where: str) -> int:
    """The concrete size of an IR dim: fixed, a bound/configured name, or arithmetic."""
    if isinstance(dim, shrew_ir.Fixed):
        return dim.value
    if isinstance(dim, shrew_ir.Symbolic):
        value = env.get(dim.name)
        if value is None and isinstance(config.get(dim.name), int):
            value = config[dim.name]
        if value is None:
            raise ExecutionError(
                f"{where}: symbolic dim {dim.name!r} is unbound; pass it with "
                f"RuntimeConfig(dims={{{dim.name!r}: ...}}) or --dim {dim.name}=N"
            )
        return int(value)
    if isinstance(dim, shrew_ir.DimExpr):
        a = resolve_dim(dim.left, env, config, where)
        b = resolve_dim(dim.right, env, config, where)
        ops = {"+": a + b, "-": a - b, "*": a * b}
        if dim.op in ops:
            return ops[dim.op]
        if b == 0:
            raise ExecutionError(f"{where}: division by zero in dim {dim}")
        return a // b if dim.op == "/" else a % b
    raise ExecutionError(f"{where}: a dynamic dim ('?') cannot be resolved for a parameter")


def resolve_shape(ttype, env: ShapeEnv, config: dict, where: str) -> tuple[int, ...]:
    if not isinstance(ttype, shrew_ir.TensorType):
        return ()
    return tuple(resolve_dim(d, env, config, where) for d in ttype.dims)


def init_param(param, shape, dtype, device, where: str) -> sc.Tensor:
    """A tensor initialised as the declaration says (``normal(0, 0.02)``, ``xavier_uniform``)."""
    kind, args = param.init.kind, param.init.args
    t = sc.zeros(shape, dtype=dtype, device=device)
    if not dtype.is_float:
        if kind not in ("zeros", "ones"):
            raise ExecutionError(f"{where}: init {kind!r} needs a float parameter, got {dtype}")
        return t + 1 if kind == "ones" else t
    fan_ok = len(shape) >= 2
    with sc.no_grad():
        if kind == "zeros":
            pass
        elif kind == "ones":
            init.ones_(t)
        elif kind in ("constant", "full"):
            init.constant_(t, float(args.get("value", next(iter(args.values()), 0.0))))
        elif kind == "normal":
            init.normal_(t, float(args.get("mean", 0.0)), float(args.get("std", 1.0)))
        elif kind == "uniform":
            init.uniform_(
                t,
                float(args.get("low", args.get("a", 0.0))),
                float(args.get("high", args.get("b", 1.0))),
            )
        elif kind in ("xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal"):
            if not fan_ok:
                bound = 1.0 / math.sqrt(max(1, shape[0] if shape else 1))
                init.uniform_(t, -bound, bound)
            elif kind.startswith("kaiming"):
                getattr(init, kind + "_")(t, nonlinearity="relu")
            else:
                getattr(init, kind + "_")(t)
        elif kind == "orthogonal" and fan_ok:
            init.orthogonal_(t)
        else:
            raise ExecutionError(f"{where}: unknown initialiser {param.init.text or kind!r}")
    return t
