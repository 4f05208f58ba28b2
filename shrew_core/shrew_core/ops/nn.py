"""Neural-network primitives that map onto backend kernels (fused where the backend fuses):
softmax/log_softmax, layer_norm/rms_norm, cross_entropy, conv1d/conv2d, pooling, dropout."""

from __future__ import annotations

import numpy as np

from .. import autocast as _ac
from ..autograd import record
from ..dtypes import i64
from ..errors import DTypeError, ShapeError, fmt_shape
from ..tensor import Tensor
from . import elementwise as ew
from . import shape as sh
from ._base import dense, norm_dim, require_float, wrap


def _pair(v, name: str) -> tuple[int, int]:
    """An int, a 1-tuple or a pair -> a pair (like torch's ``_pair``)."""
    if isinstance(v, int):
        return (v, v)
    v = tuple(int(x) for x in v)
    if len(v) == 1:
        return (v[0], v[0])
    if len(v) != 2:
        raise ValueError(f"{name}: expected an int or a pair, got {v}")
    return v


def softmax(x: Tensor, dim: int = -1, dtype=None) -> Tensor:
    """Softmax along ``dim``; ``dtype`` casts the input first (like torch)."""
    if dtype is not None:
        x = ew.cast(x, dtype)
    require_float("softmax", x)
    x = _ac.to_f32(x)
    d = norm_dim(dim, x.ndim, "softmax")
    if x.ndim == 0:
        return x * 0.0 + 1.0
    out = wrap(x._backend.softmax(x._storage, x.layout, x.dtype, d), x.shape, x.dtype, x._backend)
    return record("softmax", out, (x,), (d, out.detach())) if x._requires_grad else out


def log_softmax(x: Tensor, dim: int = -1, dtype=None) -> Tensor:
    """Log-softmax along ``dim``; ``dtype`` casts the input first (like torch)."""
    if dtype is not None:
        x = ew.cast(x, dtype)
    require_float("log_softmax", x)
    x = _ac.to_f32(x)
    d = norm_dim(dim, x.ndim, "log_softmax")
    if x.ndim == 0:
        return x * 0.0
    storage = x._backend.log_softmax(x._storage, x.layout, x.dtype, d)
    out = wrap(storage, x.shape, x.dtype, x._backend)
    return record("log_softmax", out, (x,), (d, out.detach())) if x._requires_grad else out


def _trailing(op: str, x: Tensor, normalized_shape) -> int:
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if x.shape[x.ndim - len(shape) :] != shape or len(shape) > x.ndim:
        raise ShapeError(
            f"{op}: normalized_shape {shape} does not match the trailing dims of input "
            f"{fmt_shape(x.shape)}"
        )
    return len(shape)


def _param(op: str, p: Tensor | None, x: Tensor, shape, name: str):
    if p is None:
        return None
    if p.shape != shape:
        raise ShapeError(f"{op}: {name} shape {fmt_shape(p.shape)} != {fmt_shape(shape)}")
    return dense(ew.cast(p, x.dtype))


def layer_norm(
    x: Tensor,
    normalized_shape,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """torch.nn.functional.layer_norm (biased variance over the trailing dims)."""
    require_float("layer_norm", x)
    x = _ac.to_f32(x)
    k = _trailing("layer_norm", x, normalized_shape)
    wshape = x.shape[x.ndim - k :]
    w = _param("layer_norm", weight, x, wshape, "weight")
    b = _param("layer_norm", bias, x, wshape, "bias")
    y, mean, rstd = x._backend.layer_norm(
        x._storage,
        x.layout,
        None if w is None else w._storage,
        None if b is None else b._storage,
        x.dtype,
        k,
        float(eps),
    )
    out = wrap(y, x.shape, x.dtype, x._backend)
    return record("layer_norm", out, (x, w, b), (k, mean, rstd))


_MACHINE_EPS = {"float64": 2.220446049250313e-16, "float32": 1.1920928955078125e-07,
                "float16": 0.0009765625, "bfloat16": 0.0078125}  # fmt: skip


def rms_norm(
    x: Tensor, normalized_shape, weight: Tensor | None = None, eps: float | None = None
) -> Tensor:
    """``x / sqrt(mean(x^2) + eps) * weight`` over the trailing dims; ``eps=None`` is the
    dtype's machine epsilon, like torch."""
    require_float("rms_norm", x)
    x = _ac.to_f32(x)
    if eps is None:
        eps = _MACHINE_EPS[x.dtype.name]
    k = _trailing("rms_norm", x, normalized_shape)
    w = _param("rms_norm", weight, x, x.shape[x.ndim - k :], "weight")
    y, rstd = x._backend.rms_norm(
        x._storage, x.layout, None if w is None else w._storage, x.dtype, k, float(eps)
    )
    out = wrap(y, x.shape, x.dtype, x._backend)
    return record("rms_norm", out, (x, w), (k, rstd))


def cross_entropy_rows(
    logits: Tensor, target: Tensor, ignore_index: int = -100, label_smoothing: float = 0.0
) -> Tensor:
    """Per-row cross-entropy of logits [N, C] against class indices [N] (fused kernel);
    rows whose target is ``ignore_index`` give 0. Reductions live in shrew_nn."""
    require_float("cross_entropy", logits)
    logits = _ac.to_f32(logits)
    if logits.ndim != 2:
        raise ShapeError(f"cross_entropy: logits must be [N, C], got {fmt_shape(logits.shape)}")
    if target.dtype.is_float:
        raise DTypeError(f"cross_entropy: class-index target must be integer, got {target.dtype}")
    n, c = logits.shape
    if target.shape != (n,):
        raise ShapeError(
            f"cross_entropy: target shape {fmt_shape(target.shape)} != ({n},) for logits "
            f"{fmt_shape(logits.shape)}"
        )
    target = dense(ew.cast(target, i64))  # the backend raises on out-of-range classes
    loss, lse = logits._backend.cross_entropy(
        logits._storage,
        logits.layout,
        target._storage,
        logits.dtype,
        ignore_index,
        float(label_smoothing),
    )
    out = wrap(loss, (n,), logits.dtype, logits._backend)
    return record(
        "cross_entropy", out, (logits,), (target, lse, ignore_index, float(label_smoothing))
    )


def conv2d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride=1,
    padding=0,
    dilation=1,
    groups: int = 1,
) -> Tensor:
    """torch.nn.functional.conv2d on NCHW input (or CHW). ``padding`` may be ``"same"``."""
    require_float("conv2d", x)
    if _ac.state.dtype is not None:
        x, weight, bias = _ac.to_low(x), _ac.to_low(weight), _ac.to_low(bias)
    unbatched = x.ndim == 3
    if unbatched:
        x = sh.unsqueeze(x, 0)
    if x.ndim != 4 or weight.ndim != 4:
        raise ShapeError(
            f"conv2d: expected input [N, C, H, W] and weight [O, C/groups, kH, kW], got "
            f"{fmt_shape(x.shape)} and {fmt_shape(weight.shape)}"
        )
    n, c, h, w = x.shape
    o, cg, kh, kw = weight.shape
    stride, dilation = _pair(stride, "stride"), _pair(dilation, "dilation")
    if isinstance(padding, str):
        padding, extra = _same_padding(padding, (kh, kw), dilation, stride)
        if extra != (0, 0):  # an even effective kernel: the odd cell goes right/bottom
            x = sh.pad(x, (0, extra[1], 0, extra[0]))
            n, c, h, w = x.shape
    padding = _pair(padding, "padding")
    if groups < 1 or c % groups or o % groups or cg != c // groups:
        raise ShapeError(
            f"conv2d: input has {c} channels and weight {fmt_shape(weight.shape)} with "
            f"groups={groups}: need weight.shape[1] == C/groups and O divisible by groups"
        )
    oh = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    if oh <= 0 or ow <= 0:
        raise ShapeError(
            f"conv2d: kernel {kh}x{kw} (dilation {dilation}) is larger than the padded input "
            f"{h + 2 * padding[0]}x{w + 2 * padding[1]}"
        )
    weight = ew.cast(weight, x.dtype)
    storage = x._backend.conv2d(
        x._storage,
        x.layout,
        weight._storage,
        weight.layout,
        x.dtype,
        stride,
        padding,
        dilation,
        groups,
    )
    out = wrap(storage, (n, o, oh, ow), x.dtype, x._backend)
    out = record("conv2d", out, (x, weight), (stride, padding, dilation, groups))
    if bias is not None:
        out = out + sh.reshape(bias, (1, o, 1, 1))
    return sh.squeeze(out, 0) if unbatched else out


def _same_padding(mode: str, kernel, dilation, stride):
    """(symmetric padding, extra cells on the right/bottom) for ``"same"``/``"valid"``."""
    if mode == "valid":
        return (0, 0), (0, 0)
    if mode != "same":
        raise ValueError(f"conv: padding must be an int, a pair, 'same' or 'valid', got {mode!r}")
    if stride != (1, 1):
        raise ValueError("conv: padding='same' is not supported for strided convolutions")
    totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
    return tuple(t // 2 for t in totals), tuple(t % 2 for t in totals)


def conv1d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride=1,
    padding=0,
    dilation=1,
    groups: int = 1,
) -> Tensor:
    """torch.nn.functional.conv1d on NCL input, computed as a conv2d with H = 1."""
    unbatched = x.ndim == 2
    if unbatched:
        x = sh.unsqueeze(x, 0)
    if x.ndim != 3 or weight.ndim != 3:
        raise ShapeError(
            f"conv1d: expected input [N, C, L] and weight [O, C/groups, K], got "
            f"{fmt_shape(x.shape)} and {fmt_shape(weight.shape)}"
        )

    def as_int(v):
        return v if isinstance(v, (int, str)) else v[0]

    pad = as_int(padding)
    pad2 = pad if isinstance(pad, str) else (0, pad)
    out = conv2d(
        sh.unsqueeze(x, 2),
        sh.unsqueeze(weight, 2),
        bias,
        (1, as_int(stride)),
        pad2,
        (1, as_int(dilation)),
        groups,
    )
    out = sh.squeeze(out, 2)
    return sh.squeeze(out, 0) if unbatched else out


def _pool_input(op: str, x: Tensor):
    require_float(op, x)
    if x.ndim == 3:
        return sh.unsqueeze(x, 0), True
    if x.ndim != 4:
        raise ShapeError(
            f"{op}: expected input [N, C, H, W] or [C, H, W], got {fmt_shape(x.shape)}"
        )
    return x, False


def _pool_out(op, h, w, k, s, p, d, ceil_mode):
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise ValueError(f"{op}: padding {p} must be at most half the kernel size {k}")
    dims = []
    for size, kk, ss, pp, dd in zip((h, w), k, s, p, d):
        eff = dd * (kk - 1) + 1
        num = size + 2 * pp - eff
        o = (-(-num // ss) if ceil_mode else num // ss) + 1
        if ceil_mode and (o - 1) * ss >= size + pp:
            o -= 1
        if num < 0 or o <= 0:
            raise ShapeError(f"{op}: kernel {k} is larger than the padded input {(h, w)}")
        dims.append(o)
    return tuple(dims)


def max_pool2d(
    x: Tensor,
    kernel_size,
    stride=None,
    padding=0,
    dilation=1,
    ceil_mode: bool = False,
    return_indices: bool = False,
):
    """torch.nn.functional.max_pool2d; stride defaults to the kernel size."""
    x, unbatched = _pool_input("max_pool2d", x)
    k = _pair(kernel_size, "kernel_size")
    s = k if stride is None else _pair(stride, "stride")
    p, d = _pair(padding, "padding"), _pair(dilation, "dilation")
    n, c, h, w = x.shape
    oh, ow = _pool_out("max_pool2d", h, w, k, s, p, d, ceil_mode)
    vals, idx = x._backend.max_pool2d(x._storage, x.layout, x.dtype, k, s, p, d, ceil_mode)
    out = wrap(vals, (n, c, oh, ow), x.dtype, x._backend)
    indices = wrap(idx, (n, c, oh, ow), i64, x._backend)
    out = record("max_pool2d", out, (x,), (indices, x.shape))
    if unbatched:
        out, indices = sh.squeeze(out, 0), sh.squeeze(indices, 0)
    return (out, indices) if return_indices else out


def avg_pool2d(
    x: Tensor,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> Tensor:
    """torch.nn.functional.avg_pool2d; stride defaults to the kernel size. With
    ``divisor_override`` each window's sum is divided by it instead of the cell count."""
    x, unbatched = _pool_input("avg_pool2d", x)
    k = _pair(kernel_size, "kernel_size")
    s = k if stride is None or stride == () else _pair(stride, "stride")
    p = _pair(padding, "padding")
    n, c, h, w = x.shape
    oh, ow = _pool_out("avg_pool2d", h, w, k, s, p, (1, 1), ceil_mode)
    cip = count_include_pad and divisor_override is None
    storage = x._backend.avg_pool2d(x._storage, x.layout, x.dtype, k, s, p, ceil_mode, cip)
    out = wrap(storage, (n, c, oh, ow), x.dtype, x._backend)
    out = record("avg_pool2d", out, (x,), (x.shape, k, s, p, ceil_mode, cip))
    if divisor_override is not None:  # mean over the real cells -> their sum / divisor
        if divisor_override == 0:
            raise ValueError("avg_pool2d: divisor_override must be non-zero")
        counts = _window_cells(h, k[0], s[0], p[0], oh)[:, None] * _window_cells(
            w, k[1], s[1], p[1], ow
        )[None, :]
        from .creation import tensor

        out = out * tensor(counts / divisor_override, dtype=x.dtype, device=x.device)
    return sh.squeeze(out, 0) if unbatched else out


def _window_cells(size: int, k: int, s: int, p: int, out: int) -> np.ndarray:
    """How many input cells (not padding) each pooling window covers along one dim."""
    start = np.arange(out) * s - p
    return np.minimum(start + k, size) - np.maximum(start, 0)


def adaptive_avg_pool2d(x: Tensor, output_size) -> Tensor:
    x, unbatched = _pool_input("adaptive_avg_pool2d", x)
    n, c, h, w = x.shape
    size = (output_size,) * 2 if isinstance(output_size, int) else tuple(output_size)
    if len(size) == 1:
        size = size * 2
    if len(size) != 2:
        raise ValueError(f"adaptive_avg_pool2d: expected an int or a pair, got {output_size}")
    size = (h if size[0] is None else int(size[0]), w if size[1] is None else int(size[1]))
    if size[0] <= 0 or size[1] <= 0:
        raise ValueError(f"adaptive_avg_pool2d: output_size must be positive, got {size}")
    storage = x._backend.adaptive_avg_pool2d(x._storage, x.layout, x.dtype, size)
    out = wrap(storage, (n, c) + size, x.dtype, x._backend)
    out = record("adaptive_avg_pool2d", out, (x,), x.shape)
    return sh.squeeze(out, 0) if unbatched else out


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p) (seeded)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    from .creation import bernoulli

    mask = bernoulli(x.shape, 1.0 - p, dtype=x.dtype, device=x.device)
    return x * mask * (1.0 / (1.0 - p))
