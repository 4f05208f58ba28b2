"""The ``.sw`` exporter's op table: ``EMIT[ir_op](P, node, args) -> PV``.

``PV`` is an exported value: an ONNX value name with its Shrew dtype (and rank where an op
needs it), a Python constant waiting for the dtype of the tensor it meets (weak scalars,
as the executor treats literals), or a tuple (``split``). Dtypes are promoted with
shrew_core's one table and made explicit with Cast, because ONNX ops take one type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

import shrew_core as sc
import shrew_ir
from shrew.exec.params import runtime_dtype
from shrew_core.dtypes import result_type_with_scalar

from . import dtypes
from ._attention import attention
from ._layers import activation, flatten, normalize
from .export_module import Value

INT64_MAX = np.iinfo(np.int64).max


@dataclass
class PV:
    name: str | None = None
    dtype: sc.DType | None = None
    const: Any = None
    items: list | None = None
    rank: int | None = None

    @property
    def is_const(self) -> bool:
        return self.name is None and self.items is None


EMIT: dict = {}


def emit(*names: str):
    def register(fn):
        for n in names:
            EMIT[n] = fn
        return fn

    return register


# ---------------------------------------------------------------------------- helpers
def _const_dtype(value) -> sc.DType:
    array = np.asarray(value)
    if array.dtype == np.bool_:
        return sc.bool_
    return sc.i64 if array.dtype.kind in "iu" else sc.f32


def materialize(P, pv: PV, dtype: sc.DType | None) -> PV:
    """``pv`` as an ONNX value of ``dtype`` (None: its own dtype)."""
    if pv.items is not None:
        raise P.unsupported("a tuple value used as a tensor")
    if pv.is_const:
        if pv.const is None or isinstance(pv.const, str):
            raise P.unsupported(f"constant {pv.const!r} used as a tensor")
        dt = dtype or _const_dtype(pv.const)
        return PV(P.const(np.asarray(pv.const, dtype=dt.np_dtype)), dt,
                  rank=np.ndim(pv.const))  # fmt: skip
    if dtype is None or pv.dtype == dtype:
        return pv
    return PV(P.op("Cast", pv.name, to=dtypes.to_onnx(dtype)), dtype, rank=pv.rank)


def _name(P, pv: PV, dtype=None) -> str:
    return materialize(P, pv, dtype).name


def _promote(args: list[PV]) -> sc.DType:
    tensors = [a.dtype for a in args if not a.is_const and a.dtype is not None]
    if tensors:
        dt = tensors[0]
        for t in tensors[1:]:
            dt = sc.promote_types(dt, t)
        for a in args:
            if a.is_const and a.const is not None:
                dt = result_type_with_scalar(dt, a.const)
        return dt
    dt = _const_dtype(args[0].const)
    for a in args[1:]:
        dt = sc.promote_types(dt, _const_dtype(a.const))
    return dt


def _rank(P, node, i: int = 0) -> int:
    """The rank of the node's i-th input from its IR type."""
    graph = P.ex.module.graphs[P.graph]
    t = graph.nodes[node.inputs[i]].type
    if not isinstance(t, shrew_ir.TensorType):
        raise P.unsupported(f"the rank of input {i} is unknown ({t})")
    return len(t.dims)


def _in_type(P, node, i: int = 0):
    return P.ex.module.graphs[P.graph].nodes[node.inputs[i]].type


def _attr_list(v) -> list[int]:
    return [int(v)] if isinstance(v, int) else [int(i) for i in v]


def _axes(dim, rank: int) -> list[int] | None:
    if dim is None:
        return None
    return [d % rank for d in _attr_list(dim)]


# ---------------------------------------------------------------------------- elementwise
_UNARY = {"neg": "Neg", "abs": "Abs", "relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh",
          "exp": "Exp", "log": "Log", "sqrt": "Sqrt", "sin": "Sin", "cos": "Cos",
          "reciprocal": "Reciprocal", "sign": "Sign", "floor": "Floor", "ceil": "Ceil",
          "round": "Round"}  # fmt: skip
_FLOAT_ONLY = {"sigmoid", "tanh", "exp", "log", "sqrt", "sin", "cos", "reciprocal", "rsqrt",
               "silu", "gelu", "elu", "softplus"}  # fmt: skip


def _unary_input(P, op: str, x: PV) -> PV:
    dt = x.dtype if not x.is_const else _const_dtype(x.const)
    if op in _FLOAT_ONLY and not dt.is_float:
        dt = sc.f32
    return materialize(P, x, dt)


def _unary(op):
    def run(P, node, a):
        x = _unary_input(P, op, a[0])
        if op in _UNARY:
            return PV(P.op(_UNARY[op], x.name), x.dtype, rank=x.rank)
        if op == "rsqrt":
            return PV(P.op("Reciprocal", P.op("Sqrt", x.name)), x.dtype, rank=x.rank)
        if op == "square":
            return PV(P.op("Mul", x.name, x.name), x.dtype, rank=x.rank)
        kw = dict(node.attrs)
        return PV(activation(P, op, x.name, x.dtype, **kw), x.dtype, rank=x.rank)

    return run


for _op in list(_UNARY) + ["rsqrt", "square", "silu", "gelu", "leaky_relu", "elu", "softplus"]:
    EMIT[_op] = _unary(_op)


@emit("not")
def _not(P, node, a):
    return PV(P.op("Not", _name(P, a[0], sc.bool_)), sc.bool_)


@emit("clamp")
def _clamp(P, node, a):
    x = materialize(P, a[0], None)
    lo, hi = node.attrs.get("min"), node.attrs.get("max")
    bound = lambda v: None if v is None else P.const(np.asarray(v, x.dtype.np_dtype))  # noqa: E731
    return PV(P.op("Clip", x.name, bound(lo), bound(hi)), x.dtype, rank=x.rank)


@emit("cast")
def _cast(P, node, a):
    dt = runtime_dtype(node.attrs["dtype"], P.where())
    return materialize(P, a[0], dt)


_BINARY = {"add": "Add", "sub": "Sub", "mul": "Mul", "pow": "Pow", "maximum": "Max",
           "minimum": "Min"}  # fmt: skip
_COMPARE = {"eq": "Equal", "lt": "Less", "gt": "Greater", "le": "LessOrEqual",
            "ge": "GreaterOrEqual"}  # fmt: skip


def _binary(op):
    def run(P, node, a):
        dt = _promote(a)
        if op == "div" and not dt.is_float:
            dt = sc.f32  # true division
        x, y = _name(P, a[0], dt), _name(P, a[1], dt)
        if op in _BINARY:
            return PV(P.op(_BINARY[op], x, y), dt)
        if op == "div":
            return PV(P.op("Div", x, y), dt)
        if op == "mod":  # the sign of the divisor, like Python
            if not dt.is_float:
                return PV(P.op("Mod", x, y, fmod=0), dt)
            return PV(P.op("Sub", x, P.op("Mul", P.op("Floor", P.op("Div", x, y)), y)), dt)
        if op == "ne":
            return PV(P.op("Not", P.op("Equal", x, y)), sc.bool_)
        return PV(P.op(_COMPARE[op], x, y), sc.bool_)

    return run


for _op in list(_BINARY) + ["div", "mod", "ne"] + list(_COMPARE):
    EMIT[_op] = _binary(_op)


@emit("and", "or")
def _logical(P, node, a):
    return PV(P.op("And" if node.op == "and" else "Or", _name(P, a[0], sc.bool_),
                   _name(P, a[1], sc.bool_)), sc.bool_)  # fmt: skip


@emit("where")
def _where(P, node, a):
    dt = _promote(a[1:])
    return PV(P.op("Where", _name(P, a[0], sc.bool_), _name(P, a[1], dt), _name(P, a[2], dt)),
              dt)  # fmt: skip


@emit("identity", "dropout")
def _identity(P, node, a):
    return a[0]  # dropout: the identity in eval mode, which is what is exported


@emit("coalesce")
def _coalesce(P, node, a):
    return a[0]  # graph inputs of an exported graph are always present


# ---------------------------------------------------------------------------- linear algebra
@emit("matmul")
def _matmul(P, node, a):
    dt = _promote(a)
    return PV(P.op("MatMul", _name(P, a[0], dt), _name(P, a[1], dt)), dt)


@emit("matmul_add")
def _matmul_add(P, node, a):
    dt = _promote(a)
    y = P.op("MatMul", _name(P, a[0], dt), _name(P, a[1], dt))
    return PV(P.op("Add", y, _name(P, a[2], dt)), dt)


@emit("linear")
def _linear(P, node, a):
    dt = _promote(a[:2])
    x, w = _name(P, a[0], dt), _name(P, a[1], dt)
    b = _name(P, a[2], dt) if len(a) > 2 and a[2] is not None else None
    if _rank(P, node) == 2:
        return PV(P.op("Gemm", x, w, b, transB=1), dt)
    y = P.op("MatMul", x, P.op("Transpose", w, perm=[1, 0]))
    return PV(y if b is None else P.op("Add", y, b), dt)


# ---------------------------------------------------------------------------- nn
@emit("softmax", "log_softmax")
def _softmax(P, node, a):
    x = _unary_input(P, "exp", a[0])
    op = "Softmax" if node.op == "softmax" else "LogSoftmax"
    return PV(P.op(op, x.name, axis=int(node.attrs.get("dim", -1))), x.dtype)


def _last_dims_ones(P, x: str, n: int, dt) -> str:
    """Ones of ``x.shape[-n:]`` computed at run time."""
    shape = P.op("Slice", P.op("Shape", x), P.ints([-n]), P.ints([INT64_MAX]))
    one = sc_tensor_proto(np.ones(1, dt.np_dtype))
    return P.op("ConstantOfShape", shape, value=one)


def sc_tensor_proto(array: np.ndarray):
    from ._deps import onnx

    return onnx.numpy_helper.from_array(array)


def _opt(a, i):
    return a[i] if len(a) > i else None


@emit("layer_norm")
def _layer_norm(P, node, a):
    x = materialize(P, a[0], None)
    w, b = _opt(a, 1), _opt(a, 2)
    n = 1 if w is None else len(_in_type(P, node, 1).dims)
    scale = _name(P, w, x.dtype) if w is not None else _last_dims_ones(P, x.name, n, x.dtype)
    bias = None if b is None else _name(P, b, x.dtype)
    return PV(P.op("LayerNormalization", x.name, scale, bias, axis=-n,
                   epsilon=float(node.attrs.get("eps", 1e-5))), x.dtype)  # fmt: skip


@emit("rms_norm")
def _rms_norm(P, node, a):
    x = materialize(P, a[0], None)
    w = _opt(a, 1)
    n = 1 if w is None else len(_in_type(P, node, 1).dims)
    ms = P.op("ReduceMean", P.op("Mul", x.name, x.name), axes=list(range(-n, 0)), keepdims=1)
    eps = P.const(np.asarray(node.attrs.get("eps", 1e-6), x.dtype.np_dtype))
    y = P.op("Div", x.name, P.op("Sqrt", P.op("Add", ms, eps)))
    return PV(y if w is None else P.op("Mul", y, _name(P, w, x.dtype)), x.dtype)


@emit("batch_norm")
def _batch_norm(P, node, a):
    x = materialize(P, a[0], None)
    rank, dt = _rank(P, node), x.dtype
    w, b, mean, var = _opt(a, 1), _opt(a, 2), _opt(a, 3), _opt(a, 4)
    eps = float(node.attrs.get("eps", 1e-5))
    channels = P.op("Slice", P.op("Shape", x.name), P.ints([1]), P.ints([2]))

    def filled(v: float) -> str:
        return P.op("ConstantOfShape", channels, value=sc_tensor_proto(np.full(1, v, dt.np_dtype)))

    scale = _name(P, w, dt) if w is not None else filled(1.0)
    bias = _name(P, b, dt) if b is not None else filled(0.0)
    if mean is not None and var is not None:
        return PV(P.op("BatchNormalization", x.name, scale, bias, _name(P, mean, dt),
                       _name(P, var, dt), epsilon=eps), dt)  # fmt: skip
    view = P.ints([-1] + [1] * (rank - 2))
    y = normalize(P, x.name, [0] + list(range(2, rank)), eps, dt)
    return PV(P.op("Add", P.op("Mul", y, P.op("Reshape", scale, view)),
                   P.op("Reshape", bias, view)), dt)  # fmt: skip


@emit("embedding")
def _embedding(P, node, a):
    table = materialize(P, a[1], None)
    return PV(P.op("Gather", table.name, _name(P, a[0], None), axis=0), table.dtype)


def _example(P, node, i: int, dtype) -> sc.Tensor:
    """A small zero tensor shaped like input ``i`` (symbolic dims -> 2): module converters
    read ranks and call the module on it."""
    t = _in_type(P, node, i)
    if not isinstance(t, shrew_ir.TensorType):
        raise P.unsupported(f"the type of input {i} is unknown")
    shape = []
    for d in t.dims:
        if isinstance(d, shrew_ir.Fixed):
            shape.append(d.value)
        elif isinstance(d, shrew_ir.Symbolic):
            shape.append(P.fixed_dim(d.name) or 2)
        else:
            shape.append(2)
    return sc.zeros(tuple(shape), dtype=dtype)


@emit("multi_head_attention", "transformer_block")
def _owned_module(P, node, a):
    module = P.ex._modules[(P.graph, node.id)]
    x = materialize(P, a[0], None)
    q = Value(x.name, _example(P, node, 0, x.dtype))
    at = 1 if node.op == "transformer_block" else 3
    mask, mask_v = _opt(a, at), None
    if mask is not None:
        m = materialize(P, mask, None)
        mask_v = Value(m.name, _example(P, node, at, m.dtype))
    if node.op == "transformer_block":
        return PV(P.call(module, "", q, mask_v).name, x.dtype)
    k = q if _opt(a, 1) is None else Value(_name(P, a[1], x.dtype), _example(P, node, 1, x.dtype))
    v = k if _opt(a, 2) is None else Value(_name(P, a[2], x.dtype), _example(P, node, 2, x.dtype))
    out, _ = attention(P, module, q, k, v, mask_v, None, bool(node.attrs.get("causal", False)),
                       False)  # fmt: skip
    return PV(out, x.dtype)


def _conv_attrs(node, nd: int) -> dict:
    at = node.attrs
    pads = _attr_list(at.get("padding", 0))
    pads = pads * nd if len(pads) == 1 else pads
    strides, dil = _attr_list(at.get("stride", 1)), _attr_list(at.get("dilation", 1))
    return {"strides": strides * nd if len(strides) == 1 else strides, "pads": pads * 2,
            "dilations": dil * nd if len(dil) == 1 else dil, "group": int(at.get("groups", 1))}


@emit("conv1d", "conv2d")
def _conv(P, node, a):
    nd = 1 if node.op == "conv1d" else 2
    x = materialize(P, a[0], None)
    b = _opt(a, 2)
    y = P.op("Conv", x.name, _name(P, a[1], x.dtype), None if b is None else _name(P, b, x.dtype),
             **_conv_attrs(node, nd))  # fmt: skip
    return PV(y, x.dtype)


@emit("max_pool1d", "avg_pool1d", "max_pool2d", "avg_pool2d")
def _pool(P, node, a):
    nd = 1 if node.op.endswith("1d") else 2
    x = materialize(P, a[0], None)
    at = node.attrs
    k = _attr_list(at["kernel_size"])
    k = k * nd if len(k) == 1 else k
    s = k if at.get("stride") is None else _attr_list(at["stride"])
    s = s * nd if len(s) == 1 else s
    p = _attr_list(at.get("padding", 0))
    p = (p * nd if len(p) == 1 else p) * 2
    if node.op.startswith("max"):
        y = P.op("MaxPool", x.name, kernel_shape=k, strides=s, pads=p)
    else:
        y = P.op("AveragePool", x.name, kernel_shape=k, strides=s, pads=p, count_include_pad=1)
    return PV(y, x.dtype)


@emit("adaptive_avg_pool2d")
def _adaptive(P, node, a):
    x = materialize(P, a[0], None)
    size = _attr_list(node.attrs["output_size"])
    size = size * 2 if len(size) == 1 else size
    if size == [1, 1]:
        return PV(P.op("GlobalAveragePool", x.name), x.dtype)
    dims = P.onnx_dims(_in_type(P, node))
    h, w = (dims or [None, None])[-2:]
    if not isinstance(h, int) or not isinstance(w, int) or h % size[0] or w % size[1]:
        raise P.unsupported(f"adaptive_avg_pool2d to {size} needs a fixed input size that is a "
                            f"multiple of it, got {h}x{w}")
    k = [h // size[0], w // size[1]]
    return PV(P.op("AveragePool", x.name, kernel_shape=k, strides=k), x.dtype)


# ---------------------------------------------------------------------------- shapes
def _shape_value(P, dims: list, expand: bool = False) -> str:
    """An i64 shape tensor for an IR ``dims`` attribute (ints, -1, symbolic names)."""
    parts, run = [], []
    for d in dims:
        if isinstance(d, str):
            if run:
                parts.append(P.ints(run))
                run = []
            parts.append(P.dim_value(d))
        else:
            run.append(1 if (expand and d == -1) else int(d))
    if run:
        parts.append(P.ints(run))
    return parts[0] if len(parts) == 1 else P.op("Concat", *parts, axis=0)


@emit("reshape")
def _reshape(P, node, a):
    x = materialize(P, a[0], None)
    dims = node.attrs["shape"]
    allow = 1 if any(d == 0 for d in dims if isinstance(d, int)) else None
    return PV(P.op("Reshape", x.name, _shape_value(P, dims), allowzero=allow), x.dtype,
              rank=len(dims))  # fmt: skip


@emit("expand")
def _expand(P, node, a):
    x = materialize(P, a[0], None)
    dims = node.attrs["shape"]
    return PV(P.op("Expand", x.name, _shape_value(P, dims, True)), x.dtype, rank=len(dims))


@emit("flatten")
def _flatten(P, node, a):
    x = materialize(P, a[0], None)
    rank = _rank(P, node)
    if rank == 0:
        return PV(P.op("Reshape", x.name, P.ints([1])), x.dtype)
    return PV(flatten(P, x.name, rank, node.attrs.get("start_dim", 0),
                      node.attrs.get("end_dim", -1)), x.dtype)  # fmt: skip


@emit("squeeze")
def _squeeze(P, node, a):
    x = materialize(P, a[0], None)
    dims = _in_type(P, node).dims
    d = node.attrs.get("dim")
    if d is None:
        if any(not isinstance(v, shrew_ir.Fixed) for v in dims):
            raise P.unsupported("squeeze() of an input with symbolic dims (name the dim)")
        axes = [i for i, v in enumerate(dims) if v.value == 1]
    else:
        d %= len(dims)
        known = dims[d]
        axes = [] if isinstance(known, shrew_ir.Fixed) and known.value != 1 else [d]
    if not axes:
        return x
    return PV(P.op("Squeeze", x.name, P.ints(axes)), x.dtype)


@emit("unsqueeze")
def _unsqueeze(P, node, a):
    x = materialize(P, a[0], None)
    return PV(P.op("Unsqueeze", x.name, P.ints([int(node.attrs["dim"])])), x.dtype)


@emit("transpose")
def _transpose(P, node, a):
    x = materialize(P, a[0], None)
    rank = _rank(P, node)
    perm = list(range(rank))
    d0, d1 = node.attrs.get("dim0", -2) % rank, node.attrs.get("dim1", -1) % rank
    perm[d0], perm[d1] = perm[d1], perm[d0]
    return PV(P.op("Transpose", x.name, perm=perm), x.dtype)


@emit("permute")
def _permute(P, node, a):
    x = materialize(P, a[0], None)
    rank = _rank(P, node)
    return PV(P.op("Transpose", x.name, perm=[d % rank for d in node.attrs["dims"]]), x.dtype)


@emit("concat", "stack")
def _concat(P, node, a):
    dt = _promote(a)
    names = [_name(P, v, dt) for v in a]
    dim = int(node.attrs.get("dim", 0))
    if node.op == "stack":
        names = [P.op("Unsqueeze", n, P.ints([dim])) for n in names]
    return PV(P.op("Concat", *names, axis=dim), dt)


@emit("split")
def _split(P, node, a):
    x = materialize(P, a[0], None)
    dims = P.onnx_dims(_in_type(P, node))
    d = int(node.attrs.get("dim", 0)) % len(dims)
    n, chunks = dims[d], int(node.attrs["chunks"])
    if not isinstance(n, int):
        raise P.unsupported(f"split of a symbolic dim ({n}) needs a fixed size")
    each = -(-n // chunks)
    sizes = [min(each, n - i * each) for i in range(-(-n // each))]
    outs = P.op("Split", x.name, P.ints(sizes), n_out=len(sizes), axis=d)
    outs = outs if isinstance(outs, list) else [outs]
    return PV(items=[PV(o, x.dtype) for o in outs])


@emit("index")
def _index(P, node, a):
    i = int(node.attrs["index"])
    if a[0].items is not None:
        return a[0].items[i]
    x = materialize(P, a[0], None)
    return PV(P.op("Gather", x.name, P.const(np.int64(i)), axis=int(node.attrs.get("dim", 0))),
              x.dtype)  # fmt: skip


@emit("slice")
def _slice(P, node, a):
    x = materialize(P, a[0], None)
    at = node.attrs
    end = INT64_MAX if at.get("end") is None else int(at["end"])
    return PV(P.op("Slice", x.name, P.ints([int(at.get("start", 0))]), P.ints([end]),
                   P.ints([int(at.get("dim", 0))]), P.ints([int(at.get("step", 1))])), x.dtype)


# ---------------------------------------------------------------------------- reductions
@emit("sum", "mean", "prod", "max", "min")
def _reduce(P, node, a):
    x = materialize(P, a[0], None)
    if node.op == "mean" and not x.dtype.is_float:
        x = materialize(P, x, sc.f32)
    rank = _rank(P, node)
    axes = _axes(node.attrs.get("dim"), rank)
    keep = int(bool(node.attrs.get("keepdim", False)))
    if node.op == "sum":
        y = P.op("ReduceSum", x.name, None if axes is None else P.ints(axes), keepdims=keep)
    else:
        op = {"mean": "ReduceMean", "prod": "ReduceProd", "max": "ReduceMax", "min": "ReduceMin"}
        y = P.op(op[node.op], x.name, axes=axes, keepdims=keep)
    return PV(y, x.dtype)


@emit("argmax", "argmin")
def _arg(P, node, a):
    x = materialize(P, a[0], None)
    dim, keep = node.attrs.get("dim"), int(bool(node.attrs.get("keepdim", False)))
    op = "ArgMax" if node.op == "argmax" else "ArgMin"
    if dim is None:
        return PV(P.op(op, P.op("Reshape", x.name, P.ints([-1])), axis=0, keepdims=0), sc.i64)
    if isinstance(dim, list):
        raise P.unsupported(f"{node.op} over several dims {dim}")
    return PV(P.op(op, x.name, axis=int(dim), keepdims=keep), sc.i64)


def _count(P, x: str, axes: list[int], dt) -> str:
    """The number of elements reduced over ``axes``, as a scalar of ``dt``."""
    sizes = P.op("Gather", P.op("Shape", x), P.ints(axes), axis=0)
    return P.op("Cast", P.op("ReduceProd", sizes, keepdims=0), to=dtypes.to_onnx(dt))


@emit("var", "std")
def _var(P, node, a):
    x = materialize(P, a[0], None)
    x = x if x.dtype.is_float else materialize(P, x, sc.f32)
    rank = _rank(P, node)
    axes = _axes(node.attrs.get("dim"), rank) or list(range(rank))
    keep = int(bool(node.attrs.get("keepdim", False)))
    d = P.op("Sub", x.name, P.op("ReduceMean", x.name, axes=axes, keepdims=1))
    ss = P.op("ReduceSum", P.op("Mul", d, d), P.ints(axes), keepdims=keep)
    n = P.op("Sub", _count(P, x.name, axes, x.dtype),
             P.const(np.asarray(node.attrs.get("correction", 1), x.dtype.np_dtype)))
    var = P.op("Div", ss, n)
    return PV(var if node.op == "var" else P.op("Sqrt", var), x.dtype)


# ---------------------------------------------------------------------------- losses
def _reduction(P, node, loss: str, dt, weight_sum: str | None = None) -> str:
    mode = node.attrs.get("reduction", "mean")
    if mode == "none":
        return loss
    if mode == "sum":
        return P.op("ReduceSum", loss, keepdims=0)
    if mode == "mean":
        return P.op("ReduceMean", loss, keepdims=0)
    raise P.unsupported(f"reduction {mode!r}")


@emit("cross_entropy")
def _cross_entropy(P, node, a):
    logits = materialize(P, a[0], None)
    target = materialize(P, a[1], None)
    smoothing = float(node.attrs.get("label_smoothing", 0.0))
    mode = node.attrs.get("reduction", "mean")
    if not target.dtype.is_float and smoothing == 0.0:
        y = P.op("SoftmaxCrossEntropyLoss", logits.name, target.name, reduction=mode)
        return PV(y, logits.dtype)
    logp = P.op("LogSoftmax", logits.name, axis=1)
    dt = logits.dtype
    if target.dtype.is_float:
        probs = target.name
    else:
        classes = P.op("Slice", P.op("Shape", logits.name), P.ints([1]), P.ints([2]))
        values = P.const(np.asarray([0, 1], dt.np_dtype))
        probs = P.op("OneHot", target.name, classes, values, axis=1)
    if smoothing:
        n = P.op("Cast", P.op("Slice", P.op("Shape", logits.name), P.ints([1]), P.ints([2])),
                 to=dtypes.to_onnx(dt))  # fmt: skip
        keep = P.const(np.asarray(1.0 - smoothing, dt.np_dtype))
        probs = P.op("Add", P.op("Mul", probs, keep),
                     P.op("Div", P.const(np.asarray(smoothing, dt.np_dtype)), n))  # fmt: skip
    loss = P.op("Neg", P.op("ReduceSum", P.op("Mul", probs, logp), P.ints([1]), keepdims=0))
    return PV(_reduction(P, node, loss, dt), dt)


@emit("nll_loss")
def _nll(P, node, a):
    x = materialize(P, a[0], None)
    y = P.op("NegativeLogLikelihoodLoss", x.name, _name(P, a[1], None),
             reduction=node.attrs.get("reduction", "mean"))  # fmt: skip
    return PV(y, x.dtype)


@emit("mse_loss", "l1_loss", "binary_cross_entropy")
def _pointwise_loss(P, node, a):
    dt = _promote(a)
    p, t = _name(P, a[0], dt), _name(P, a[1], dt)
    if node.op == "mse_loss":
        d = P.op("Sub", p, t)
        loss = P.op("Mul", d, d)
    elif node.op == "l1_loss":
        loss = P.op("Abs", P.op("Sub", p, t))
    else:  # torch clamps the logs at -100
        floor = P.const(np.asarray(-100.0, dt.np_dtype))
        one = P.const(np.asarray(1.0, dt.np_dtype))
        log_p = P.op("Max", P.op("Log", p), floor)
        log_q = P.op("Max", P.op("Log", P.op("Sub", one, p)), floor)
        loss = P.op("Neg", P.op("Add", P.op("Mul", t, log_p),
                                P.op("Mul", P.op("Sub", one, t), log_q)))  # fmt: skip
    return PV(_reduction(P, node, loss, dt), dt)


# ---------------------------------------------------------------------------- structure
@emit("constant")
def _constant(P, node, a):
    return PV(const=node.attrs.get("value"))


@emit("dim")
def _dim(P, node, a):
    name = node.attrs["name"]
    fixed = P.fixed_dim(name)
    if fixed is not None:
        return PV(const=fixed)
    return PV(P.op("Squeeze", P.dim_value(name), P.ints([0])), sc.i64)


@emit("range")
def _range(P, node, a):
    vals = list(a)
    if len(vals) == 1:
        vals = [PV(const=0)] + vals
    if len(vals) == 2:
        vals = vals + [PV(const=1)]
    names = []
    for v in vals:
        n = _name(P, v, sc.i64)
        if v.rank:  # a 1-element tensor -> scalar
            n = P.op("Squeeze", n, P.ints([0]))
        names.append(n)
    return PV(P.op("Range", *names), sc.i64, rank=1)


@emit("call")
def _call(P, node, a):
    target = P.ex.module.graphs.get(node.attrs["graph"])
    if target is None:
        raise P.unsupported(f"call of unknown graph {node.attrs['graph']!r}")
    outputs = P.emit_graph(node.attrs["graph"], dict(zip(target.inputs, a)))
    return next(iter(outputs.values()))


@emit("fused_elementwise")
def _fused(P, node, a):
    results: list[PV] = []

    def arg(v):
        if isinstance(v, str) and v[:1] == "$":
            return a[int(v[1:])]
        if isinstance(v, str) and v[:1] == "%":
            return results[int(v[1:])]
        return PV(const=v)

    for op, *args in node.attrs["steps"]:
        fn = EMIT.get(op)
        if fn is None:
            raise P.unsupported(f"fused step {op!r} has no ONNX equivalent")
        results.append(fn(P, _Step(op, node), [arg(v) for v in args]))
    return results[-1]


class _Step:
    """A fused step seen as a node with default attributes."""

    def __init__(self, op: str, parent):
        self.op, self.name, self.span, self.attrs = op, parent.name, parent.span, {}
        self.inputs, self.id = parent.inputs, parent.id

