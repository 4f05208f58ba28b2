"""The importer's op table: one function per ONNX op, on Shrew tensors (so gradients flow).

``OPS[op_type](node, inputs)`` returns the node's output tensor, or a list for several
outputs; ``inputs`` holds None for absent optional inputs and ``node.attrs`` the decoded
attributes (``node.opset`` is the model's default-domain opset, for the attributes that
became inputs: Squeeze/Unsqueeze/ReduceSum axes at 13, the other reductions at 18).
Integer "shape" inputs (Reshape's shape, Slice's starts, ...) are read with ``_ints``: they
are ordinary tensors computed eagerly, so Shape -> Gather -> Concat -> Reshape chains
evaluate on the actual sizes.
"""

from __future__ import annotations

import math

import numpy as np

import shrew_core as sc
import shrew_nn.functional as F

from .dtypes import from_onnx
from .errors import OnnxUnsupportedError

OPS: dict = {}


def op(*names: str):
    def register(fn):
        for n in names:
            OPS[n] = fn
        return fn

    return register


def _ints(t) -> list[int]:
    if t is None:
        return []
    return [int(v) for v in np.asarray(t.numpy() if isinstance(t, sc.Tensor) else t).ravel()]


def _scalar(t):
    return np.asarray(t.numpy()).reshape(-1)[0].item()


def _unsupported(node, what: str) -> OnnxUnsupportedError:
    return OnnxUnsupportedError(f"ONNX import: {node.op_type} node {node.name!r}: {what}")


def _axis(a: int, ndim: int) -> int:
    return a + ndim if a < 0 else a


# ---------------------------------------------------------------------------- elementwise
_UNARY = {
    "Relu": sc.relu, "Sigmoid": sc.sigmoid, "Tanh": sc.tanh, "Sqrt": sc.sqrt, "Erf": sc.erf,
    "Exp": sc.exp, "Log": sc.log, "Neg": sc.neg, "Abs": sc.abs, "Reciprocal": sc.reciprocal,
    "Floor": sc.floor, "Ceil": sc.ceil, "Round": sc.round, "Sin": sc.sin, "Cos": sc.cos,
    "Sign": sc.sign, "Not": sc.logical_not, "Softsign": lambda x: x / (sc.abs(x) + 1),
}  # fmt: skip
for _n, _f in _UNARY.items():
    OPS[_n] = (lambda f: lambda node, a: f(a[0]))(_f)


@op("Identity")
def _identity(node, a):
    return a[0]


@op("Dropout")
def _dropout(node, a):  # inference: the identity (training_mode is not supported)
    if len(a) > 2 and a[2] is not None and bool(_scalar(a[2])):
        raise _unsupported(node, "training_mode=True")
    if node.n_out > 1:
        return [a[0], sc.ones(a[0].shape, dtype=sc.bool_, device=a[0].device)]
    return a[0]


@op("Gelu")
def _gelu(node, a):
    return sc.gelu(a[0], approximate=node.attrs.get("approximate", "none"))


@op("LeakyRelu")
def _leaky_relu(node, a):
    return F.leaky_relu(a[0], node.attrs.get("alpha", 0.01))


@op("Elu")
def _elu(node, a):
    return F.elu(a[0], node.attrs.get("alpha", 1.0))


@op("Softplus")
def _softplus(node, a):
    return F.softplus(a[0])


@op("HardSigmoid")
def _hard_sigmoid(node, a):
    alpha, beta = node.attrs.get("alpha", 0.2), node.attrs.get("beta", 0.5)
    return sc.clamp(a[0] * alpha + beta, 0.0, 1.0)


@op("Clip")
def _clip(node, a):
    lo = node.attrs.get("min") if node.opset < 11 else (None if len(a) < 2 or a[1] is None
                                                         else _scalar(a[1]))  # fmt: skip
    hi = node.attrs.get("max") if node.opset < 11 else (None if len(a) < 3 or a[2] is None
                                                         else _scalar(a[2]))  # fmt: skip
    return a[0] if lo is None and hi is None else sc.clamp(a[0], lo, hi)


@op("Add")
def _add(node, a):
    return a[0] + a[1]


@op("Sub")
def _sub(node, a):
    return a[0] - a[1]


@op("Mul")
def _mul(node, a):
    return a[0] * a[1]


@op("Div")
def _div(node, a):
    x, y = a
    if x.dtype.is_float:
        return x / y
    return sc.cast(sc.div(x, y, rounding_mode="trunc"), x.dtype)  # integer division truncates


@op("Pow")
def _pow(node, a):
    return a[0] ** (a[1] if a[1].dtype == a[0].dtype else a[1].to(a[0].dtype))


@op("Mod")
def _mod(node, a):
    if node.attrs.get("fmod", 0):
        return a[0] - sc.div(a[0], a[1], rounding_mode="trunc").to(a[0].dtype) * a[1]
    return a[0] % a[1]


def _fold(fn):
    def run(node, a):
        out = a[0]
        for t in a[1:]:
            out = fn(out, t)
        return out

    return run


OPS["Max"] = _fold(sc.maximum)
OPS["Min"] = _fold(sc.minimum)
OPS["Sum"] = _fold(lambda x, y: x + y)
_COMPARE = {"Equal": sc.eq, "Less": sc.lt, "Greater": sc.gt, "LessOrEqual": sc.le,
            "GreaterOrEqual": sc.ge, "And": sc.logical_and, "Or": sc.logical_or,
            "Xor": sc.logical_xor}  # fmt: skip
for _n, _f in _COMPARE.items():
    OPS[_n] = (lambda f: lambda node, a: f(a[0], a[1]))(_f)


@op("Where")
def _where(node, a):
    cond = a[0] if a[0].dtype.is_bool else a[0].to(sc.bool_)
    return sc.where(cond, a[1], a[2])


@op("Cast")
def _cast(node, a):
    return sc.cast(a[0], from_onnx(node.attrs["to"], f"Cast node {node.name!r}"))


@op("CastLike")
def _cast_like(node, a):
    return sc.cast(a[0], a[1].dtype)


# ---------------------------------------------------------------------------- linear algebra
@op("MatMul")
def _matmul(node, a):
    return a[0] @ a[1]


@op("Gemm")
def _gemm(node, a):
    at = node.attrs
    A = a[0].t() if at.get("transA", 0) else a[0]
    B, C = a[1], (a[2] if len(a) > 2 else None)
    alpha, beta = at.get("alpha", 1.0), at.get("beta", 1.0)
    if at.get("transB", 0) and alpha == 1.0 and beta == 1.0 and (C is None or C.ndim == 1):
        return sc.linear(A, B, C)  # the common Linear layer: one fused GEMM
    y = A @ (B.t() if at.get("transB", 0) else B)
    if alpha != 1.0:
        y = y * alpha
    if C is not None:
        y = y + (C * beta if beta != 1.0 else C)
    return y


# ---------------------------------------------------------------------------- nn
def _softmax(fn):
    def run(node, a):
        x = a[0]
        if node.opset >= 13:
            return fn(x, node.attrs.get("axis", -1))
        axis = _axis(node.attrs.get("axis", 1), x.ndim)  # opset < 13: coerced to 2-D
        lead = int(np.prod(x.shape[:axis], dtype=np.int64))
        return fn(x.reshape(lead, -1), -1).reshape(x.shape)

    return run


OPS["Softmax"] = _softmax(sc.softmax)
OPS["LogSoftmax"] = _softmax(sc.log_softmax)


@op("LayerNormalization")
def _layer_norm(node, a):
    x, scale, bias = a[0], a[1], (a[2] if len(a) > 2 else None)
    axis = _axis(node.attrs.get("axis", -1), x.ndim)
    eps = node.attrs.get("epsilon", 1e-5)
    y = sc.layer_norm(x, x.shape[axis:], scale, bias, eps)
    if node.n_out == 1:
        return y
    dims = tuple(range(axis, x.ndim))
    mean = x.mean(dims, True)
    inv = sc.rsqrt(((x - mean) ** 2).mean(dims, True) + eps)
    return [y, mean, inv][: node.n_out]


@op("BatchNormalization")
def _batch_norm(node, a):
    if node.attrs.get("training_mode", 0):
        raise _unsupported(node, "training_mode=1 (only inference batch normalisation)")
    x, scale, bias, mean, var = a[:5]
    return F.batch_norm(x, mean, var, scale, bias, training=False,
                        eps=node.attrs.get("epsilon", 1e-5))  # fmt: skip


def _spatial_pads(node, x, kernel, strides, dilations) -> list[int]:
    """ONNX ``pads`` ([begins..., ends...]) after ``auto_pad``."""
    nd = len(kernel)
    auto = node.attrs.get("auto_pad", "NOTSET")
    if isinstance(auto, bytes):
        auto = auto.decode()
    if auto in ("NOTSET", ""):
        return list(node.attrs.get("pads", [0] * (2 * nd)))
    if auto == "VALID":
        return [0] * (2 * nd)
    begins, ends = [], []
    for i in range(nd):
        size = x.shape[2 + i]
        out = -(-size // strides[i])
        total = max(0, (out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - size)
        small, big = total // 2, total - total // 2
        begins.append(small if auto == "SAME_UPPER" else big)
        ends.append(big if auto == "SAME_UPPER" else small)
    return begins + ends


def _pad_spatial(x, pads: list[int], value: float):
    """Explicit padding of the trailing spatial dims ([begins..., ends...] ONNX order)."""
    nd = len(pads) // 2
    flat = []
    for i in reversed(range(nd)):  # torch order: last dim first
        flat += [pads[i], pads[i + nd]]
    return sc.pad(x, flat, value=value)


@op("Conv")
def _conv(node, a):
    x, w, b = a[0], a[1], (a[2] if len(a) > 2 else None)
    nd = w.ndim - 2
    if nd not in (1, 2):
        raise _unsupported(node, f"{nd}-D convolution (1-D and 2-D are supported)")
    at = node.attrs
    kernel = list(at.get("kernel_shape", w.shape[2:]))
    strides = list(at.get("strides", [1] * nd))
    dil = list(at.get("dilations", [1] * nd))
    pads = _spatial_pads(node, x, kernel, strides, dil)
    if pads[:nd] != pads[nd:]:
        x, pads = _pad_spatial(x, pads, 0.0), [0] * (2 * nd)
    group = at.get("group", 1)
    if nd == 1:
        return sc.conv1d(x, w, b, strides[0], pads[0], dil[0], group)
    return sc.conv2d(x, w, b, tuple(strides), tuple(pads[:2]), tuple(dil), group)


def _pool(kind):
    def run(node, a):
        x = a[0]
        at = node.attrs
        kernel = list(at["kernel_shape"])
        nd = len(kernel)
        if nd not in (1, 2) or x.ndim != nd + 2:
            raise _unsupported(node, f"{nd}-D pooling of a rank-{x.ndim} input")
        if kind == "max" and node.n_out > 1:
            raise _unsupported(node, "the Indices output")
        strides = list(at.get("strides", [1] * nd))
        dil = list(at.get("dilations", [1] * nd))
        pads = _spatial_pads(node, x, kernel, strides, dil)
        ceil = bool(at.get("ceil_mode", 0))
        include = bool(at.get("count_include_pad", 0))
        if nd == 1:
            x = x.unsqueeze(2)
            kernel, strides, dil = [1] + kernel, [1] + strides, [1] + dil
            pads = [0, pads[0], 0, pads[1]]
        half = [k // 2 for k in kernel]
        if pads[:2] != pads[2:] or any(p > h for p, h in zip(pads[:2], half)):
            if kind == "avg" and not include and any(pads):
                raise _unsupported(node, f"asymmetric pads {pads} with count_include_pad=0")
            x, pads = _pad_spatial(x, pads, -math.inf if kind == "max" else 0.0), [0] * 4
        if kind == "max":
            y = sc.max_pool2d(x, tuple(kernel), tuple(strides), tuple(pads[:2]), tuple(dil), ceil)
        else:
            if dil != [1, 1]:
                raise _unsupported(node, f"dilations {dil}")
            y = sc.avg_pool2d(x, tuple(kernel), tuple(strides), tuple(pads[:2]), ceil, include)
        return y.squeeze(2) if nd == 1 else y

    return run


OPS["MaxPool"] = _pool("max")
OPS["AveragePool"] = _pool("avg")


@op("GlobalAveragePool")
def _global_avg_pool(node, a):
    return a[0].mean(tuple(range(2, a[0].ndim)), True)


@op("GlobalMaxPool")
def _global_max_pool(node, a):
    return a[0].amax(tuple(range(2, a[0].ndim)), True)


# ---------------------------------------------------------------------------- shapes
@op("Shape")
def _shape(node, a):
    dims = list(a[0].shape)
    start, end = node.attrs.get("start", 0), node.attrs.get("end", len(dims))
    return sc.tensor(np.asarray(dims[start:end], dtype=np.int64), device=a[0].device)


@op("Size")
def _size(node, a):
    return sc.tensor(np.asarray(a[0].numel, dtype=np.int64), device=a[0].device)


@op("Reshape")
def _reshape(node, a):
    x, shape = a[0], _ints(a[1])
    if not node.attrs.get("allowzero", 0):
        shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return x.reshape(tuple(shape))


@op("Flatten")
def _flatten(node, a):
    x = a[0]
    axis = _axis(node.attrs.get("axis", 1), x.ndim)
    lead = int(np.prod(x.shape[:axis], dtype=np.int64))
    return x.reshape(lead, int(np.prod(x.shape[axis:], dtype=np.int64)))


@op("Transpose")
def _transpose(node, a):
    perm = node.attrs.get("perm") or list(reversed(range(a[0].ndim)))
    return a[0].permute(tuple(perm))


def _axes(node, a, since: int) -> list[int] | None:
    """Axes from the attribute (opset < since) or the second input; None when absent."""
    if node.opset < since:
        axes = node.attrs.get("axes")
        return None if axes is None else list(axes)
    return None if len(a) < 2 or a[1] is None else _ints(a[1])


@op("Squeeze")
def _squeeze(node, a):
    axes = _axes(node, a, 13)
    x = a[0]
    if axes is None:
        return x.squeeze()
    axes = [_axis(i, x.ndim) for i in axes]
    return x.reshape(tuple(d for i, d in enumerate(x.shape) if i not in axes))


@op("Unsqueeze")
def _unsqueeze(node, a):
    x = a[0]
    axes = _axes(node, a, 13) or []
    rank = x.ndim + len(axes)
    for ax in sorted(_axis(i, rank) for i in axes):
        x = x.unsqueeze(ax)
    return x


@op("Concat")
def _concat(node, a):
    parts = [t for t in a if t is not None]
    return sc.cat(parts, node.attrs["axis"])


@op("Split")
def _split(node, a):
    x = a[0]
    axis = _axis(node.attrs.get("axis", 0), x.ndim)
    sizes = node.attrs.get("split") if node.opset < 13 else (_ints(a[1]) if len(a) > 1 and
                                                              a[1] is not None else None)
    if not sizes:
        n = node.attrs.get("num_outputs", node.n_out)
        each = -(-x.shape[axis] // n)
        sizes = [min(each, x.shape[axis] - i * each) for i in range(n)]
    outs, start = [], 0
    for s in sizes:
        outs.append(x.narrow(axis, start, s))
        start += s
    return outs


@op("Slice")
def _slice(node, a):
    x = a[0]
    if node.opset < 10:
        starts, ends = list(node.attrs["starts"]), list(node.attrs["ends"])
        axes, steps = node.attrs.get("axes"), None
    else:
        starts, ends = _ints(a[1]), _ints(a[2])
        axes = _ints(a[3]) if len(a) > 3 and a[3] is not None else None
        steps = _ints(a[4]) if len(a) > 4 and a[4] is not None else None
    axes = list(range(len(starts))) if axes is None else axes
    steps = steps or [1] * len(starts)
    for s, e, ax, st in zip(starts, ends, axes, steps):
        ax = _axis(ax, x.ndim)
        idx = range(*slice(s, e, st).indices(x.shape[ax]))
        if st > 0:
            x = sc.slice_dim(x, ax, idx.start, max(idx.stop, idx.start), st)
        else:
            x = sc.index_select(x, ax, sc.tensor(np.asarray(idx, dtype=np.int64),
                                                 device=x.device))  # fmt: skip
    return x


@op("Gather")
def _gather(node, a):
    """ONNX Gather is ``take`` along ``axis``: out = data[..., indices, ...] (negative
    indices count from the end), shape data[:axis] + indices.shape + data[axis+1:]."""
    data, indices = a
    axis = _axis(node.attrs.get("axis", 0), data.ndim)
    size = data.shape[axis]
    idx = indices.to(sc.i64).reshape(-1)
    if idx.numel and bool((idx < 0).any().item()):
        idx = sc.where(idx < 0, idx + size, idx)
    out = sc.index_select(data, axis, idx)
    return out.reshape(data.shape[:axis] + indices.shape + data.shape[axis + 1:])


@op("Expand")
def _expand(node, a):
    shape = np.broadcast_shapes(tuple(a[0].shape), tuple(_ints(a[1])))
    return a[0].expand(tuple(int(d) for d in shape))


@op("Tile")
def _tile(node, a):
    return a[0].repeat(*_ints(a[1]))


@op("Constant")
def _constant(node, a):
    return node.attrs["__value__"]


@op("ConstantOfShape")
def _constant_of_shape(node, a):
    value = node.attrs.get("value")
    fill = 0.0 if value is None else value.numpy().reshape(-1)[0].item()
    dtype = sc.f32 if value is None else value.dtype
    return sc.full(tuple(_ints(a[0])), fill_value=fill, dtype=dtype, device=node.device)


@op("Range")
def _range(node, a):
    start, limit, delta = (_scalar(t) for t in a)
    return sc.arange(start, limit, delta, dtype=a[0].dtype, device=a[0].device)


@op("Trilu")
def _trilu(node, a):
    k = int(_scalar(a[1])) if len(a) > 1 and a[1] is not None else 0
    return (sc.triu if node.attrs.get("upper", 1) else sc.tril)(a[0], diagonal=k)


# ---------------------------------------------------------------------------- reductions
def _reduce(kind, since: int):
    def run(node, a):
        x = a[0]
        axes = _axes(node, a, since)
        keep = bool(node.attrs.get("keepdims", 1))
        if not axes:
            if node.attrs.get("noop_with_empty_axes", 0):
                return x
            axes = list(range(x.ndim))
        dims = tuple(_axis(i, x.ndim) for i in axes)
        if kind == "mean":
            return x.mean(dims, keep)
        if kind == "sum":
            return x.sum(dims, keep)
        if kind == "prod":
            return x.prod(dims, keep)
        if kind == "sum_square":
            return (x * x).sum(dims, keep)
        if kind == "l2":
            return sc.sqrt((x * x).sum(dims, keep))
        if kind == "log_sum_exp":
            return sc.logsumexp(x, dims, keep)
        return (x.amax if kind == "max" else x.amin)(dims, keep)

    return run


OPS["ReduceSum"] = _reduce("sum", 13)
for _n, _k in [("ReduceMean", "mean"), ("ReduceMax", "max"), ("ReduceMin", "min"),
               ("ReduceProd", "prod"), ("ReduceSumSquare", "sum_square"), ("ReduceL2", "l2"),
               ("ReduceLogSumExp", "log_sum_exp")]:  # fmt: skip
    OPS[_n] = _reduce(_k, 18)


def _arg(kind):
    def run(node, a):
        if node.attrs.get("select_last_index", 0):
            raise _unsupported(node, "select_last_index=1")
        x = a[0]
        axis = _axis(node.attrs.get("axis", 0), x.ndim)
        return getattr(x, kind)(axis, bool(node.attrs.get("keepdims", 1)))

    return run


OPS["ArgMax"] = _arg("argmax")
OPS["ArgMin"] = _arg("argmin")

from ._import_rnn import RNN_OPS  # noqa: E402 - the recurrent ops live beside

OPS.update(RNN_OPS)
