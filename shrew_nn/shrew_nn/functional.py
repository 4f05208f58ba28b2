"""Stateless neural-network functions: activations, losses, normalisation, convolution,
pooling, dropout, embedding and attention. Modules are thin wrappers around these.

Everything is built from shrew_core ops (which call the backend's kernels, fused where the
backend fuses: softmax, log_softmax, layer_norm, rms_norm, cross_entropy, conv, pooling).
"""

from __future__ import annotations

import inspect
import math

import shrew_core as sc
from shrew_core import Tensor
from shrew_core.autocast import fp32_op

# Re-exported core kernels with PyTorch's names and signatures.
linear = sc.linear
softmax = sc.softmax
log_softmax = sc.log_softmax
layer_norm = sc.layer_norm
max_pool2d = sc.max_pool2d
adaptive_avg_pool2d = sc.adaptive_avg_pool2d
one_hot = sc.one_hot

_REDUCTIONS = ("none", "mean", "sum")


def bilinear(x1: Tensor, x2: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``y[..., o] = x1[..., i] W[o, i, j] x2[..., j] + b[o]`` for ``x1`` [*, I1], ``x2``
    [*, I2] and ``weight`` [O, I1, I2]: one GEMM ``x1 @ W`` then a row-wise product."""
    if weight.ndim != 3:
        raise sc.ShapeError(f"bilinear: weight must be [out, in1, in2], got {weight.shape}")
    o, i1, i2 = weight.shape
    if x1.shape[-1:] != (i1,) or x2.shape[-1:] != (i2,) or x1.shape[:-1] != x2.shape[:-1]:
        raise sc.ShapeError(f"bilinear: expected inputs [*, {i1}] and [*, {i2}] with the same "
                            f"leading dims, got {x1.shape} and {x2.shape}")  # fmt: skip
    lead = x1.shape[:-1]
    a = x1.reshape(-1, i1) @ weight.permute(1, 0, 2).reshape(i1, o * i2)  # [M, O*I2]
    y = (a.reshape(-1, o, i2) * x2.reshape(-1, 1, i2)).sum(dim=-1)
    if bias is not None:
        y = y + bias
    return y.reshape(lead + (o,))


# ---------------------------------------------------------------------------- activations
def relu(x: Tensor) -> Tensor:
    return sc.relu(x)


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """GELU, exact (``"none"``, erf) or the ``"tanh"`` approximation."""
    return sc.gelu(x, approximate=approximate)


def silu(x: Tensor) -> Tensor:
    return sc.silu(x)


def sigmoid(x: Tensor) -> Tensor:
    return sc.sigmoid(x)


def tanh(x: Tensor) -> Tensor:
    return sc.tanh(x)


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    """``x`` where positive, ``negative_slope * x`` elsewhere."""
    return sc.where(x > 0, x, x * negative_slope)


elu = sc.elu  # one implementation, in shrew_core (torch's gradients at 0 and NaN)


class _LogSigmoid(sc.Function):
    """``log(sigmoid(x))`` in the stable form ``min(x, 0) - log1p(exp(-|x|))`` with the exact
    gradient ``sigmoid(-x)`` everywhere (composing abs/min would give a wrong one at 0)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return sc.clamp(x, max=0.0) - sc.log1p(sc.exp(-sc.abs(x)))

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return (g * sc.sigmoid(-x),)


def logsigmoid(x: Tensor) -> Tensor:
    """``log(sigmoid(x))``, stable for any magnitude."""
    return _LogSigmoid.apply(x)


def softplus(x: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """``log(1 + exp(beta x)) / beta``, linear where ``beta x > threshold`` (stable form)."""
    bx = x * beta if beta != 1.0 else x
    soft = -logsigmoid(-bx)
    if beta != 1.0:
        soft = soft / beta
    return sc.where(bx > threshold, x, soft)


def mish(x: Tensor) -> Tensor:
    """``x * tanh(softplus(x))``."""
    return x * sc.tanh(softplus(x))


hardtanh = sc.hardtanh  # in shrew_core: gradient 1 strictly inside, 0 on and beyond the ends


# ---------------------------------------------------------------------------- regularisation
def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero each element with probability ``p``, scale the rest by ``1/(1-p)``; identity when
    not training. Masks come from shrew's seeded generator (``manual_seed``)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    return sc.dropout(x, p, training)


def embedding(indices: Tensor, weight: Tensor, padding_idx: int | None = None) -> Tensor:
    """Rows of ``weight`` [num, dim] for integer ``indices`` of any shape; the row
    ``padding_idx`` receives no gradient."""
    if indices.dtype.is_float:
        raise sc.DTypeError(f"embedding: indices must be integers, got {indices.dtype}")
    if weight.ndim != 2:
        raise sc.ShapeError(f"embedding: weight must be [num, dim], got {weight.shape}")
    if padding_idx is not None:  # negative counts from the end, like torch
        if not -weight.shape[0] <= padding_idx < weight.shape[0]:
            raise sc.IndexOutOfRangeError(
                f"embedding: padding_idx {padding_idx} is out of range for {weight.shape[0]} rows"
            )
        padding_idx %= weight.shape[0]
    if padding_idx is None or not weight.requires_grad or not sc.is_grad_enabled():
        return sc.embedding(weight, indices)
    return _PaddedEmbedding.apply(weight, indices, padding_idx)


class _PaddedEmbedding(sc.Function):
    @staticmethod
    def forward(ctx, weight, indices, padding_idx):
        ctx.meta = (weight.shape, padding_idx)
        ctx.save_for_backward(indices)
        return sc.embedding(weight, indices)

    @staticmethod
    def backward(ctx, g):
        (indices,) = ctx.saved_tensors
        shape, pad = ctx.meta
        idx = indices.reshape(-1)
        rows = g.reshape(-1, shape[1]) * (idx != pad).unsqueeze(1).to(g.dtype)
        gw = sc.zeros(*shape, dtype=g.dtype, device=g.device).index_add(0, idx, rows)
        return gw, None


# ---------------------------------------------------------------------------- normalisation
def rms_norm(x: Tensor, normalized_shape, weight: Tensor | None = None,
             eps: float | None = None) -> Tensor:  # fmt: skip
    """``x / sqrt(mean(x²) + eps) * weight``; ``eps=None`` is the dtype's machine epsilon."""
    if eps is None:
        eps = _EPS.get(x.dtype.name, 1.1920928955078125e-07)
    return sc.rms_norm(x, normalized_shape, weight, eps)


_EPS = {"float64": 2.220446049250313e-16, "float32": 1.1920928955078125e-07,
        "float16": 0.0009765625, "bfloat16": 0.0078125}  # fmt: skip


@fp32_op
def group_norm(x: Tensor, num_groups: int, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:  # fmt: skip
    """Normalise ``[N, C, *]`` over each group of ``C / num_groups`` channels (and space)."""
    if x.ndim < 2:
        raise sc.ShapeError(f"group_norm: expected input [N, C, *], got {x.shape}")
    n, c = x.shape[:2]
    if c % num_groups:
        raise sc.ShapeError(f"group_norm: {c} channels are not divisible by {num_groups} groups")
    g = x.reshape(n, num_groups, x.numel // max(n * num_groups, 1))  # explicit: n may be 0
    y = sc.layer_norm(g, (g.shape[-1],), None, None, eps).reshape(x.shape)
    view = (1, c) + (1,) * (x.ndim - 2)
    if weight is not None:
        y = y * weight.reshape(view)
    if bias is not None:
        y = y + bias.reshape(view)
    return y


@fp32_op
def batch_norm(x: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None,
               training: bool = False, momentum: float | None = 0.1, eps: float = 1e-5,
               num_batches_tracked: Tensor | None = None) -> Tensor:  # fmt: skip
    """Batch normalisation over ``[N, C, *]``: batch statistics when ``training`` (updating
    the running buffers in place, under no_grad), running statistics otherwise.

    ``momentum=None`` keeps a cumulative average (uses ``num_batches_tracked``). An empty
    input gives an empty result (torch accepts a 1-D ``(0,)`` input too)."""
    if x.ndim == 1 and x.numel == 0:
        return x * 1.0 if x.dtype.is_float else x
    if x.ndim < 2:
        raise sc.ShapeError(f"batch_norm: expected input [N, C, *], got {x.shape}")
    c = x.shape[1]
    view = (1, c) + (1,) * (x.ndim - 2)
    if x.numel == 0:  # nothing to normalise; torch leaves the running statistics alone
        y = x * 1.0  # (weight and bias still join the graph: their gradients are zeros)
    elif training or running_mean is None:
        dims = (0,) + tuple(range(2, x.ndim))
        count = x.numel // c
        if count == 1:
            raise ValueError(
                f"batch_norm: expected more than 1 value per channel when training, got input "
                f"of shape {x.shape}"
            )
        mean = x.mean(dim=dims, keepdim=True)
        xc = x - mean
        var = (xc * xc).mean(dim=dims, keepdim=True)
        y = xc * sc.rsqrt(var + eps)
        if training and running_mean is not None:
            with sc.no_grad():
                if num_batches_tracked is not None:
                    num_batches_tracked.add_(1)
                m = momentum
                if m is None:
                    m = 1.0 / float(num_batches_tracked.item()) if num_batches_tracked is not None \
                        else 0.0
                bm = mean.detach().reshape(c).to(running_mean.dtype)
                bv = (var.detach().reshape(c) * (count / (count - 1))).to(running_var.dtype)
                running_mean.copy_(running_mean * (1.0 - m) + bm * m)
                running_var.copy_(running_var * (1.0 - m) + bv * m)
    else:
        scale = sc.rsqrt(running_var.to(x.dtype) + eps).reshape(view)
        y = (x - running_mean.to(x.dtype).reshape(view)) * scale
    if weight is not None:
        y = y * weight.reshape(view)
    if bias is not None:
        y = y + bias.reshape(view)
    return y


# ---------------------------------------------------------------------------- convolution
def _same_pad(x: Tensor, weight: Tensor, dilation, nd: int):
    """Explicit (possibly asymmetric) zero padding for ``padding="same"``, PyTorch's split:
    the extra element goes to the end."""
    dil = (dilation,) * nd if isinstance(dilation, int) else tuple(dilation)
    pads: list[int] = []
    sym = []
    for k, d in zip(weight.shape[2:], dil):
        total = d * (k - 1)
        lo = total // 2
        sym.append(lo)
        pads = [lo, total - lo] + pads  # torch's pad order: last dim first
    if all(pads[i] == pads[i + 1] for i in range(0, len(pads), 2)):
        return x, tuple(sym)
    return sc.pad(x, pads), (0,) * nd


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
           dilation=1, groups: int = 1) -> Tensor:  # fmt: skip
    """2-D convolution of ``[N, C, H, W]`` (or ``[C, H, W]``) with ``weight`` [O, C/g, kH, kW].

    ``padding`` is an int, a pair, ``"valid"`` or ``"same"`` (even kernels pad asymmetrically,
    like PyTorch)."""
    if x.ndim not in (3, 4):
        raise sc.ShapeError(f"conv2d: expected input [N, C, H, W] or [C, H, W], got {x.shape}")
    if padding == "same":
        x, padding = _same_pad(x, weight, dilation, 2)
    return sc.conv2d(x, weight, bias, stride, padding, dilation, groups)


def conv1d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
           dilation=1, groups: int = 1) -> Tensor:  # fmt: skip
    """1-D convolution of ``[N, C, L]`` (or ``[C, L]``) with ``weight`` [O, C/g, K]."""
    if x.ndim not in (2, 3):
        raise sc.ShapeError(f"conv1d: expected input [N, C, L] or [C, L], got {x.shape}")
    if padding == "same":
        x, padding = _same_pad(x, weight, dilation, 1)
        padding = padding[0]
    return sc.conv1d(x, weight, bias, stride, padding, dilation, groups)


# ---------------------------------------------------------------------------- pooling
_CORE_DIVISOR = "divisor_override" in inspect.signature(sc.avg_pool2d).parameters


def avg_pool2d(x: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    """Mean over ``kernel_size`` windows of ``[N, C, H, W]`` (or ``[C, H, W]``); stride
    defaults to the kernel. ``divisor_override`` divides each window's sum by that number
    instead of the window size (``count_include_pad`` is then irrelevant)."""
    if divisor_override is None:
        return sc.avg_pool2d(x, kernel_size, stride, padding, ceil_mode, count_include_pad)
    if isinstance(divisor_override, bool) or not isinstance(divisor_override, int) or \
            divisor_override == 0:  # fmt: skip
        raise ValueError(f"avg_pool2d: divisor_override must be a non-zero integer, got "
                         f"{divisor_override!r}")  # fmt: skip
    if _CORE_DIVISOR:
        return sc.avg_pool2d(x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                             divisor_override=divisor_override)  # fmt: skip
    return _window_sums(x, kernel_size, stride, padding, ceil_mode) / float(divisor_override)


def _pair(v, name: str) -> tuple[int, int]:
    v = (v, v) if isinstance(v, int) else tuple(v)
    if len(v) != 2:
        raise ValueError(f"avg_pool2d: {name} must be an int or a pair, got {v}")
    return v


def _window_sums(x: Tensor, kernel_size, stride, padding, ceil_mode: bool) -> Tensor:
    """Exact sums over PyTorch's pooling windows (zero padding; ``ceil_mode`` windows cut at
    the edge): a depthwise convolution with a ones kernel over the padded input."""
    if x.ndim not in (3, 4):
        raise sc.ShapeError(f"avg_pool2d: expected input [N, C, H, W] or [C, H, W], got "
                            f"{x.shape}")  # fmt: skip
    unbatched = x.ndim == 3
    if unbatched:
        x = x.unsqueeze(0)
    k = _pair(kernel_size, "kernel_size")
    s = k if stride is None else _pair(stride, "stride")
    p = _pair(padding, "padding")
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise ValueError(f"avg_pool2d: padding {p} must be at most half the kernel size {k}")
    n, c, h, w = x.shape
    out, pads = [], []
    for size, kk, ss, pp in zip((h, w), k, s, p):
        num = size + 2 * pp - kk
        o = (-(-num // ss) if ceil_mode else num // ss) + 1
        if ceil_mode and (o - 1) * ss >= size + pp:
            o -= 1
        if num < 0 or o <= 0:
            raise sc.ShapeError(f"avg_pool2d: kernel {k} is larger than the padded input "
                                f"{(h, w)}")  # fmt: skip
        out.append(o)
        pads.append((pp, max(pp, (o - 1) * ss + kk - size - pp)))  # the end covers every window
    (top, bottom), (left, right) = pads
    xp = sc.pad(x, [left, right, top, bottom]) if top or bottom or left or right else x
    ones = sc.ones(c, 1, k[0], k[1], dtype=x.dtype, device=x.device)
    y = sc.conv2d(xp, ones, None, s, 0, 1, c)
    if y.shape[2:] != tuple(out):
        y = y[:, :, : out[0], : out[1]]
    return y.squeeze(0) if unbatched else y


def flatten(x: Tensor, start_dim: int = 1, end_dim: int = -1) -> Tensor:
    return sc.flatten(x, start_dim, end_dim)


# ---------------------------------------------------------------------------- losses
def _reduce(loss: Tensor, reduction: str, op: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{op}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _check_pair(op: str, input: Tensor, target: Tensor) -> None:
    if input.shape != target.shape:
        raise sc.ShapeError(
            f"{op}: input shape {input.shape} != target shape {target.shape}"
        )


@fp32_op
def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Mean squared error ``(input - target)²``."""
    _check_pair("mse_loss", input, target)
    d = input - target
    return _reduce(d * d, reduction, "mse_loss")


@fp32_op
def l1_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Mean absolute error ``|input - target|``."""
    _check_pair("l1_loss", input, target)
    return _reduce(sc.abs(input - target), reduction, "l1_loss")


@fp32_op
def smooth_l1_loss(input: Tensor, target: Tensor, reduction: str = "mean",
                   beta: float = 1.0) -> Tensor:  # fmt: skip
    """``0.5 d² / beta`` where ``|d| < beta``, else ``|d| - 0.5 beta`` (``beta=0``: L1)."""
    _check_pair("smooth_l1_loss", input, target)
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be non-negative, got {beta}")
    d = input - target
    ad = sc.abs(d)
    if beta == 0.0:
        return _reduce(ad, reduction, "smooth_l1_loss")
    loss = sc.where(ad < beta, d * d * (0.5 / beta), ad - 0.5 * beta)
    return _reduce(loss, reduction, "smooth_l1_loss")


@fp32_op
def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean",
               delta: float = 1.0) -> Tensor:  # fmt: skip
    """``0.5 d²`` where ``|d| < delta``, else ``delta (|d| - 0.5 delta)``."""
    _check_pair("huber_loss", input, target)
    d = input - target
    ad = sc.abs(d)
    loss = sc.where(ad < delta, d * d * 0.5, (ad - 0.5 * delta) * delta)
    return _reduce(loss, reduction, "huber_loss")


@fp32_op
def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                         reduction: str = "mean") -> Tensor:  # fmt: skip
    """BCE on probabilities in [0, 1]; each log is clamped to >= -100 like PyTorch."""
    _check_pair("bce_loss", input, target)
    if input.numel and (float(input.min().item()) < 0.0 or float(input.max().item()) > 1.0):
        raise ValueError("bce_loss: all elements of input should be between 0 and 1")
    logp = sc.clamp(sc.log(input), min=-100.0)
    log1mp = sc.clamp(sc.log(1.0 - input), min=-100.0)
    loss = -(target * logp + (1.0 - target) * log1mp)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "bce_loss")


@fp32_op
def binary_cross_entropy_with_logits(input: Tensor, target: Tensor,
                                     weight: Tensor | None = None, reduction: str = "mean",
                                     pos_weight: Tensor | None = None) -> Tensor:  # fmt: skip
    """BCE on logits, stable for any magnitude: ``(1-t) x - w_t logsigmoid(x)`` with
    ``w_t = 1 + (pos_weight - 1) t``."""
    _check_pair("bce_with_logits_loss", input, target)
    sp_neg = -logsigmoid(input)  # softplus(-x)
    if pos_weight is not None:
        log_weight = (pos_weight - 1.0) * target + 1.0
        loss = (1.0 - target) * input + log_weight * sp_neg
    else:
        loss = (1.0 - target) * input + sp_neg
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "bce_with_logits_loss")


def _mean_over(total: Tensor, denom: Tensor) -> Tensor:
    """``total / denom`` for a "mean" over the non-ignored targets. When every target is
    ignored (``denom`` is 0) the value is NaN and the gradients are zeros, as in torch."""
    nonzero = denom != 0
    value = total / sc.where(nonzero, denom, 1.0).to(total.dtype)
    return value + sc.where(nonzero, 0.0, math.nan).to(total.dtype)


def _class_last(op: str, input: Tensor, target: Tensor, prob_target: bool):
    """``[N, C, d1, ...]`` -> rows ``[N*d1*..., C]`` and matching targets; ``[C]`` -> ``[1, C]``."""
    if input.ndim == 1:
        return input.unsqueeze(0), target.unsqueeze(0), ()
    if input.ndim < 1:
        raise sc.ShapeError(f"{op}: input must have a class dim, got shape {input.shape}")
    n, c = input.shape[:2]
    extra = input.shape[2:]
    want = input.shape if prob_target else (n,) + extra
    if target.shape != want:
        raise sc.ShapeError(
            f"{op}: target shape {target.shape} does not match input {input.shape} "
            f"(expected {want})"
        )
    if not extra:
        return input, target, ()
    perm = (0,) + tuple(range(2, input.ndim)) + (1,)
    rows = input.permute(perm).reshape(-1, c)
    tgt = target.permute(perm).reshape(-1, c) if prob_target else target.reshape(-1)
    return rows, tgt, (n,) + extra


def _finish_rows(loss: Tensor, shape: tuple, reduction: str, op: str) -> Tensor:
    if reduction == "none" and shape:
        return loss.reshape(shape)
    if reduction == "none" and loss.shape[0] == 1 and not shape:
        return loss
    return _reduce(loss, reduction, op)


@fp32_op
def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None,
             ignore_index: int = -100, reduction: str = "mean") -> Tensor:  # fmt: skip
    """Negative log-likelihood of log-probabilities ``[N, C, *]`` at class indices ``[N, *]``;
    a ``weight`` [C] makes ``mean`` a weighted mean over the non-ignored targets."""
    if reduction not in _REDUCTIONS:
        raise ValueError(f"nll_loss: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if target.dtype.is_float:
        raise sc.DTypeError(f"nll_loss: target must hold class indices, got {target.dtype}")
    unbatched = input.ndim == 1
    rows, tgt, shape = _class_last("nll_loss", input, target, False)
    c = rows.shape[1]
    keep = tgt != ignore_index
    safe = sc.where(keep, tgt, 0).to(sc.i64)
    if tgt.numel:
        lo, hi = int(safe.min().item()), int(safe.max().item())
        if lo < 0 or hi >= c:
            raise IndexError(f"nll_loss: target {lo if lo < 0 else hi} is out of range for "
                             f"{c} classes")  # fmt: skip
    picked = rows.gather(1, safe.unsqueeze(1)).reshape(-1)
    w = keep.to(rows.dtype)
    if weight is not None:
        w = w * weight.to(rows.dtype).index_select(0, safe)
    loss = -picked * w
    if reduction == "mean":
        return _mean_over(loss.sum(), w.sum())
    if unbatched and reduction == "none":
        return loss.reshape(())
    return _finish_rows(loss, shape, reduction, "nll_loss")


@fp32_op
def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                  ignore_index: int = -100, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:  # fmt: skip
    """Cross-entropy of logits ``[N, C, *]`` (or ``[C]``) against class indices ``[N, *]`` or
    class probabilities (same shape as input), computed with log-sum-exp.

    Class indices without ``weight`` use the backend's fused per-row kernel.

    Args:
        weight: per-class rescaling [C].
        ignore_index: class-index targets equal to it contribute nothing (nor to the mean).
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.
        label_smoothing: mixes the target with the uniform distribution, in [0, 1].
    """
    if reduction not in _REDUCTIONS:
        raise ValueError(f"cross_entropy: reduction must be one of {_REDUCTIONS}, "
                         f"got {reduction!r}")  # fmt: skip
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    prob = target.dtype.is_float
    unbatched = input.ndim == 1
    rows, tgt, shape = _class_last("cross_entropy", input, target, prob)
    c = rows.shape[1]
    if prob:
        logp = sc.log_softmax(rows, dim=1)
        t = tgt.to(rows.dtype)
        if label_smoothing > 0:
            t = t * (1.0 - label_smoothing) + label_smoothing / c
        if weight is not None:
            t = t * weight.to(rows.dtype)
        loss = -(t * logp).sum(dim=1)
        if unbatched and reduction == "none":
            return loss.reshape(())
        return _finish_rows(loss, shape, reduction, "cross_entropy")
    if weight is None:
        loss = sc.cross_entropy_rows(rows, tgt, ignore_index, label_smoothing)
        if reduction == "mean":
            count = (tgt != ignore_index).to(rows.dtype).sum()
            return _mean_over(loss.sum(), count)
        if unbatched and reduction == "none":
            return loss.reshape(())
        return _finish_rows(loss, shape, reduction, "cross_entropy")
    logp = sc.log_softmax(rows, dim=1)
    keep = tgt != ignore_index
    safe = sc.where(keep, tgt, 0).to(sc.i64)
    w = weight.to(rows.dtype)
    wt = keep.to(rows.dtype) * w.index_select(0, safe)
    nll = -logp.gather(1, safe.unsqueeze(1)).reshape(-1) * wt
    loss = nll
    if label_smoothing > 0:
        smooth = -(logp * w).sum(dim=1) * keep.to(rows.dtype) / c
        loss = nll * (1.0 - label_smoothing) + smooth * label_smoothing
    if reduction == "mean":
        return _mean_over(loss.sum(), wt.sum())
    if unbatched and reduction == "none":
        return loss.reshape(())
    return _finish_rows(loss, shape, reduction, "cross_entropy")


# Seed spellings.
cross_entropy_loss = cross_entropy
bce_loss = binary_cross_entropy
bce_with_logits_loss = binary_cross_entropy_with_logits


# ---------------------------------------------------------------------------- attention
def _additive_mask(mask: Tensor | None, dtype, op: str) -> Tensor | None:
    """Bool masks (True = masked out, PyTorch's convention) -> 0 / -inf floats."""
    if mask is None:
        return None
    if mask.dtype.is_float:
        return mask.to(dtype)
    return sc.where(mask, -math.inf, 0.0).to(dtype)


def scaled_dot_product_attention(q: Tensor, k: Tensor, v: Tensor,
                                 attn_mask: Tensor | None = None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale: float | None = None,
                                 training: bool = True) -> tuple[Tensor, Tensor]:  # fmt: skip
    """``softmax(q kᵀ * scale + mask) v`` over ``[..., L, E]`` queries and ``[..., S, E]`` keys.

    ``attn_mask`` is bool (True = masked out) or additive float, broadcastable to
    ``[..., L, S]``; ``is_causal`` adds the upper-triangular mask. All masks are folded into
    one additive tensor before the (fused) softmax. Returns ``(output, weights)``."""
    L, S, E = q.shape[-2], k.shape[-2], q.shape[-1]
    scale = 1.0 / math.sqrt(E) if scale is None else scale
    mask = causal_mask(L, S, q.dtype, q.device) if is_causal else None
    extra = _additive_mask(attn_mask, q.dtype, "attention")
    if extra is not None:
        mask = extra if mask is None else mask + extra
    weights = masked_softmax(q @ k.transpose(-2, -1), mask, scale)
    if dropout_p > 0.0 and training:
        weights = sc.dropout(weights, dropout_p, True)
    return weights @ v, weights


def causal_mask(L: int, S: int | None = None, dtype=sc.f32, device=None) -> Tensor:
    """Additive ``[L, S]`` mask: ``-inf`` above the diagonal (position i sees keys <= i)."""
    S = L if S is None else S
    upper = sc.triu(sc.ones(L, S, dtype=dtype, device=device), diagonal=1)
    return sc.where(upper > 0, -math.inf, 0.0).to(dtype)


def masked_softmax(scores: Tensor, mask: Tensor | None = None, scale: float = 1.0) -> Tensor:
    """``softmax(scores * scale + mask)`` over the last dim in one fused backend pass; the
    additive ``mask`` broadcasts to ``scores`` and receives a gradient if it requires one."""
    return _MaskedSoftmax.apply(scores, mask, float(scale))


class _MaskedSoftmax(sc.Function):
    """``softmax(scores * scale + mask)`` over the last dim through the backend's fused
    ``masked_softmax`` (one pass; the mask is read through its broadcast layout, never
    expanded). Gradients for the scores and, when it requires grad, the additive mask."""

    @staticmethod
    def forward(ctx, scores, mask, scale):
        be, dt, shape = scores._backend, scores.dtype, scores.shape
        m_storage = m_layout = None
        if mask is not None:
            mb = mask.expand(shape)
            m_storage, m_layout = mb._storage, mb.layout
        y = be.masked_softmax(scores._storage, scores.layout, m_storage, m_layout, dt,
                              len(shape) - 1, scale)  # fmt: skip
        ctx.state = (y, scale)
        return Tensor._make(y, sc.Layout.contiguous(shape), dt, be)

    @staticmethod
    def backward(ctx, g):
        y, scale = ctx.state
        be, dt, shape = g._backend, g.dtype, g.shape
        gs = _storage(g)
        dim = len(shape) - 1
        if len(ctx.needs_input_grad) == 1 or not ctx.needs_input_grad[1]:
            dx = be.masked_softmax_backward(y, gs, shape, dt, dim, scale)
            grads = (_wrap(dx, shape, g),)
            return grads if len(ctx.needs_input_grad) == 1 else grads + (None,)
        d_pre = _wrap(be.masked_softmax_backward(y, gs, shape, dt, dim, 1.0), shape, g)
        return d_pre * scale, d_pre  # autograd sums d_pre down to the mask's shape


def _storage(t: Tensor):
    if t.layout.offset == 0 and t.layout.is_contiguous():
        return t._storage
    return t._backend.copy(t._storage, t.layout, t.dtype)


def _wrap(storage, shape, like: Tensor) -> Tensor:
    return Tensor._make(storage, sc.Layout.contiguous(tuple(shape)), like.dtype, like._backend)
