"""ONNX converters of the feed-forward shrew_nn layers: dense, convolution, pooling,
normalisation, embedding, dropout, activations and ``Sequential``.

Each converter emits the nodes computing what the layer's ``forward`` computes in eval
mode, for any batch size; ``activation`` is shared with the transformer block and the
``.sw`` exporter.
"""

from __future__ import annotations

import math

import numpy as np

import shrew_core as sc
import shrew_nn as nn

from . import dtypes
from .export_module import ModuleExporter, Value, register_converter

SQRT2 = math.sqrt(2.0)


def _pair(v, n: int) -> list[int]:
    return [int(v)] * n if isinstance(v, int) else [int(i) for i in v]


def channel_view(E: ModuleExporter, name: str, ndim: int) -> str:
    """A per-channel ``[C]`` tensor reshaped to broadcast over ``[N, C, *]`` (``[C, 1, ..]``)."""
    return E.op("Reshape", name, E.ints([-1] + [1] * (ndim - 2)))


# ---------------------------------------------------------------------------- activations
def gelu(E: ModuleExporter, x: str, dtype, approximate: str = "none") -> str:
    """``x * 0.5 * (1 + erf(x / √2))`` or the tanh form (ONNX has no Gelu before opset 20)."""
    c = lambda v: E.const(v, dtype)  # noqa: E731
    if approximate == "tanh":
        cube = E.op("Mul", E.op("Mul", x, x), x)
        inner = E.op("Add", x, E.op("Mul", cube, c(0.044715)))
        t = E.op("Tanh", E.op("Mul", inner, c(math.sqrt(2.0 / math.pi))))
    else:
        u = E.op("Div", x, c(SQRT2))
        if dtype == sc.f32:
            t = E.op("Erf", u)
        else:  # onnxruntime implements Erf for float only
            f32, back = dtypes.to_onnx(sc.f32), dtypes.to_onnx(dtype)
            t = E.op("Cast", E.op("Erf", E.op("Cast", u, to=f32)), to=back)
    return E.op("Mul", E.op("Mul", x, E.op("Add", t, c(1.0))), c(0.5))


def softplus(E: ModuleExporter, x: str, dtype, beta: float = 1.0,
             threshold: float = 20.0) -> str:  # fmt: skip
    """torch's softplus: ``log(1 + exp(βx)) / β``, and ``x`` where ``βx > threshold``."""
    bx = x if beta == 1.0 else E.op("Mul", x, E.const(beta, dtype))
    soft = E.op("Softplus", bx)
    if beta != 1.0:
        soft = E.op("Div", soft, E.const(beta, dtype))
    return E.op("Where", E.op("Greater", bx, E.const(threshold, dtype)), x, soft)


def activation(E: ModuleExporter, kind: str, x: str, dtype, **kw) -> str:
    """The named activation applied to value ``x`` of ``dtype``."""
    if kind == "relu":
        return E.op("Relu", x)
    if kind in ("gelu", "gelu_tanh"):
        return gelu(E, x, dtype, "tanh" if kind == "gelu_tanh" else kw.get("approximate", "none"))
    if kind == "silu":
        return E.op("Mul", x, E.op("Sigmoid", x))
    if kind == "sigmoid":
        return E.op("Sigmoid", x)
    if kind == "tanh":
        return E.op("Tanh", x)
    if kind == "leaky_relu":
        return E.op("LeakyRelu", x, alpha=float(kw.get("negative_slope", 0.01)))
    if kind == "elu":
        return E.op("Elu", x, alpha=float(kw.get("alpha", 1.0)))
    if kind == "softplus":
        return softplus(E, x, dtype, float(kw.get("beta", 1.0)), float(kw.get("threshold", 20.0)))
    if kind == "mish":
        return E.op("Mul", x, E.op("Tanh", softplus(E, x, dtype)))
    raise E.unsupported(f"activation {kind!r}")


_ACTIVATION_KINDS = {
    nn.ReLU: ("relu", {}),
    nn.GELU: ("gelu", {"approximate": "approximate"}),
    nn.SiLU: ("silu", {}),
    nn.Sigmoid: ("sigmoid", {}),
    nn.Tanh: ("tanh", {}),
    nn.LeakyReLU: ("leaky_relu", {"negative_slope": "negative_slope"}),
    nn.ELU: ("elu", {"alpha": "alpha"}),
    nn.Softplus: ("softplus", {"beta": "beta", "threshold": "threshold"}),
    nn.Mish: ("mish", {}),
}


@register_converter(*_ACTIVATION_KINDS)
def _activation(E: ModuleExporter, m, x: Value) -> Value:
    kind, attrs = _ACTIVATION_KINDS[type(m)]
    kw = {k: getattr(m, a) for k, a in attrs.items()}
    return E.value(activation(E, kind, x.name, x.dtype, **kw), E.run(m, x))


@register_converter(nn.Softmax, nn.LogSoftmax)
def _softmax(E: ModuleExporter, m, x: Value) -> Value:
    op = "LogSoftmax" if isinstance(m, nn.LogSoftmax) else "Softmax"
    return E.value(E.op(op, x, axis=int(m.dim)), E.run(m, x))


# ---------------------------------------------------------------------------- dense
@register_converter(nn.Linear)
def _linear(E: ModuleExporter, m, x: Value) -> Value:
    return E.value(linear(E, x, m.weight, m.bias), E.run(m, x))


def linear(E: ModuleExporter, x: Value, weight, bias) -> str:
    """``x Wᵀ + b``: one Gemm for 2-D inputs, else MatMul (+ Add) over leading dims."""
    w = E.param(weight)
    b = None if bias is None else E.param(bias)
    if x.ndim == 2:
        return E.op("Gemm", x, w, b, transB=1)
    y = E.op("MatMul", x, E.op("Transpose", w, perm=[1, 0]))
    return y if b is None else E.op("Add", y, b)


@register_converter(nn.Identity)
def _identity(E: ModuleExporter, m, x: Value, *args, **kwargs) -> Value:
    return E.value(E.op("Identity", x), x.example)


@register_converter(nn.Dropout)
def _dropout(E: ModuleExporter, m, x: Value) -> Value:
    # inference: the identity; the ratio is kept for readers of the file
    return E.value(E.op("Dropout", x, E.const(float(m.p), x.dtype)), x.example)


def flatten(E: ModuleExporter, x: str, nd: int, start: int, end: int) -> str:
    """Merge dims ``start..end`` of the rank-``nd`` value ``x`` (other dims from ``Shape``)."""
    start, end = start % nd, end % nd
    if start == 0 and end == nd - 1:
        return E.op("Reshape", x, E.ints([-1]))
    if end == nd - 1 and start >= 1:
        return E.op("Reshape", x, E.ints([0] * start + [-1]))
    shape = E.op("Shape", x)
    parts = [E.op("Slice", shape, E.ints([0]), E.ints([start])), E.ints([-1]),
             E.op("Slice", shape, E.ints([end + 1]), E.ints([nd]))]  # fmt: skip
    return E.op("Reshape", x, E.op("Concat", *parts, axis=0))


@register_converter(nn.Flatten)
def _flatten(E: ModuleExporter, m, x: Value) -> Value:
    return E.value(flatten(E, x.name, x.ndim, m.start_dim, m.end_dim), E.run(m, x))


@register_converter(nn.Unflatten)
def _unflatten(E: ModuleExporter, m, x: Value) -> Value:
    nd, d = x.ndim, m.dim % x.ndim
    shape = E.op("Shape", x)
    parts = [E.op("Slice", shape, E.ints([0]), E.ints([d])), E.ints(m.unflattened_size),
             E.op("Slice", shape, E.ints([d + 1]), E.ints([nd]))]  # fmt: skip
    return E.value(E.op("Reshape", x, E.op("Concat", *parts, axis=0)), E.run(m, x))


@register_converter(nn.Embedding)
def _embedding(E: ModuleExporter, m, indices: Value) -> Value:
    return E.value(E.op("Gather", E.param(m.weight), indices, axis=0), E.run(m, indices))


@register_converter(nn.Sequential)
def _sequential(E: ModuleExporter, m, x):
    for name, child in m._modules.items():
        if child is not None:
            x = E.call(child, name, x)
    return x


# ---------------------------------------------------------------------------- conv / pool
def _batched(E: ModuleExporter, x: Value, nd: int, body) -> str:
    """Run ``body(name)`` on ``[N, C, *]``; an unbatched ``[C, *]`` input gets N = 1."""
    if x.ndim == nd + 1:
        return E.op("Squeeze", body(E.op("Unsqueeze", x, E.ints([0]))), E.ints([0]))
    return body(x.name)


@register_converter(nn.Conv1d, nn.Conv2d)
def _conv(E: ModuleExporter, m, x: Value) -> Value:
    nd = m._nd
    k, d = list(m.kernel_size), list(m.dilation)
    if m.padding == "valid":
        pads = [0] * (2 * nd)
    elif m.padding == "same":
        total = [di * (ki - 1) for ki, di in zip(k, d)]
        pads = [t // 2 for t in total] + [t - t // 2 for t in total]
    else:
        pads = list(m.padding) * 2
    w = E.param(m.weight)
    b = None if m.bias is None else E.param(m.bias)
    y = _batched(E, x, nd, lambda v: E.op("Conv", v, w, b, kernel_shape=k, strides=list(m.stride),
                                          pads=pads, dilations=d, group=int(m.groups)))
    return E.value(y, E.run(m, x))


@register_converter(nn.MaxPool2d, nn.AvgPool2d)
def _pool2d(E: ModuleExporter, m, x: Value) -> Value:
    k = _pair(m.kernel_size, 2)
    s = k if m.stride is None else _pair(m.stride, 2)
    p = _pair(m.padding, 2) * 2
    if isinstance(m, nn.MaxPool2d):
        if m.return_indices:
            raise E.unsupported("MaxPool2d(return_indices=True): ONNX indices are flattened "
                                "over N*C*H*W, not H*W")
        attrs = {"dilations": _pair(m.dilation, 2)}
        op = "MaxPool"
    else:
        attrs = {"count_include_pad": int(m.count_include_pad)}
        op = "AveragePool"
    y = _batched(E, x, 2, lambda v: E.op(op, v, kernel_shape=k, strides=s, pads=p,
                                         ceil_mode=int(m.ceil_mode), **attrs))
    return E.value(y, E.run(m, x))


@register_converter(nn.AdaptiveAvgPool2d)
def _adaptive_avg_pool2d(E: ModuleExporter, m, x: Value) -> Value:
    out = E.run(m, x)
    h, w = x.example.shape[-2:]
    size = [m.output_size] * 2 if isinstance(m.output_size, int) or m.output_size is None \
        else list(m.output_size)
    size = [h if size[0] is None else size[0], w if size[1] is None else size[1]]
    if size == [1, 1]:
        return E.value(_batched(E, x, 2, lambda v: E.op("GlobalAveragePool", v)), out)
    if h % size[0] or w % size[1]:
        raise E.unsupported(f"AdaptiveAvgPool2d to {tuple(size)} from {h}x{w}: ONNX pooling "
                            "needs the input size to be a multiple of the output size")
    k = [h // size[0], w // size[1]]
    return E.value(_batched(E, x, 2, lambda v: E.op("AveragePool", v, kernel_shape=k,
                                                    strides=k)), out)  # fmt: skip


# ---------------------------------------------------------------------------- normalisation
def _ones(E: ModuleExporter, shape, dtype) -> str:
    return E.const(np.ones(shape, dtype=dtype.np_dtype))


def normalize(E: ModuleExporter, x: str, axes: list[int], eps: float, dtype) -> str:
    """``(x - mean) / sqrt(var + eps)`` over ``axes`` (biased variance)."""
    mean = E.op("ReduceMean", x, axes=axes, keepdims=1)
    d = E.op("Sub", x, mean)
    var = E.op("ReduceMean", E.op("Mul", d, d), axes=axes, keepdims=1)
    return E.op("Div", d, E.op("Sqrt", E.op("Add", var, E.const(float(eps), dtype))))


@register_converter(nn.BatchNorm1d, nn.BatchNorm2d)
def _batch_norm(E: ModuleExporter, m, x: Value) -> Value:
    out = E.run(m, x)
    c, dt = m.num_features, x.dtype
    scale = E.param(m.weight) if m.affine else _ones(E, (c,), dt)
    bias = E.param(m.bias) if m.affine else E.const(np.zeros(c, dtype=dt.np_dtype))
    if m.track_running_stats:
        y = E.op("BatchNormalization", x, scale, bias, E.param(m.running_mean),
                 E.param(m.running_var), epsilon=float(m.eps))  # fmt: skip
    else:  # batch statistics even in eval mode
        n = normalize(E, x.name, [0] + list(range(2, x.ndim)), m.eps, dt)
        y = E.op("Add", E.op("Mul", n, channel_view(E, scale, x.ndim)),
                 channel_view(E, bias, x.ndim))  # fmt: skip
    return E.value(y, out)


@register_converter(nn.LayerNorm)
def _layer_norm(E: ModuleExporter, m, x: Value) -> Value:
    return E.value(layer_norm(E, m, x), E.run(m, x))


def layer_norm(E: ModuleExporter, m, x: Value) -> str:
    shape = m.normalized_shape
    scale = E.param(m.weight) if m.weight is not None else _ones(E, shape, x.dtype)
    bias = None if m.bias is None else E.param(m.bias)
    return E.op("LayerNormalization", x, scale, bias, axis=-len(shape), epsilon=float(m.eps))


@register_converter(nn.GroupNorm)
def _group_norm(E: ModuleExporter, m, x: Value) -> Value:
    g = E.op("Reshape", x, E.ints([0, int(m.num_groups), -1]))
    y = E.op("Reshape", normalize(E, g, [2], m.eps, x.dtype), E.op("Shape", x))
    if m.weight is not None:
        y = E.op("Mul", y, channel_view(E, E.param(m.weight), x.ndim))
    if m.bias is not None:
        y = E.op("Add", y, channel_view(E, E.param(m.bias), x.ndim))
    return E.value(y, E.run(m, x))


@register_converter(nn.RMSNorm)
def _rms_norm(E: ModuleExporter, m, x: Value) -> Value:
    eps = m.eps if m.eps is not None else float(np.finfo(x.dtype.np_dtype).eps)
    axes = list(range(-len(m.normalized_shape), 0))
    ms = E.op("ReduceMean", E.op("Mul", x, x), axes=axes, keepdims=1)
    y = E.op("Div", x, E.op("Sqrt", E.op("Add", ms, E.const(float(eps), x.dtype))))
    if m.weight is not None:
        y = E.op("Mul", y, E.param(m.weight))
    return E.value(y, E.run(m, x))
