"""Default implementations of the Backend's optional fused kernels.

Each function composes required primitives by wrapping storages in no-grad
tensors and calling ordinary tensor ops, then returns contiguous storage. A
backend that overrides none of its optional methods (like the reference backend
in the tests) runs entirely on these.
"""

from __future__ import annotations

import math

from .autograd import no_grad
from .dtypes import f32, i64
from .errors import IndexOutOfRangeError
from .layout import Layout


def _t(backend, storage, layout_or_shape, dtype):
    from .tensor import Tensor

    layout = (
        layout_or_shape
        if isinstance(layout_or_shape, Layout)
        else Layout.contiguous(tuple(layout_or_shape))
    )
    return Tensor._make(storage, layout, dtype, backend)


def _s(t):
    """Contiguous storage of ``t`` (a freshly computed tensor is already contiguous)."""
    if t.layout.offset == 0 and t.layout.is_contiguous():
        return t._storage
    return t._backend.copy(t._storage, t.layout, t.dtype)


def _acc(t):
    """Compute in f32 at least (half dtypes accumulate in f32)."""
    return t.to(f32) if t.dtype.itemsize < 4 else t


def softmax(b, x, layout, dtype, dim):
    with no_grad():
        t = _acc(_t(b, x, layout, dtype))
        if t.numel == 0:
            return _s(t.to(dtype))
        e = (t - t.amax(dim, keepdim=True)).exp()
        return _s((e / e.sum(dim, keepdim=True)).to(dtype))


def log_softmax(b, x, layout, dtype, dim):
    with no_grad():
        t = _acc(_t(b, x, layout, dtype))
        if t.numel == 0:
            return _s(t.to(dtype))
        shifted = t - t.amax(dim, keepdim=True)
        return _s((shifted - shifted.exp().sum(dim, keepdim=True).log()).to(dtype))


def softmax_backward(b, y, grad, shape, dtype, dim, log):
    with no_grad():
        yt, gt = _acc(_t(b, y, shape, dtype)), _acc(_t(b, grad, shape, dtype))
        if log:
            out = gt - yt.exp() * gt.sum(dim, keepdim=True)
        else:
            out = yt * (gt - (gt * yt).sum(dim, keepdim=True))
        return _s(out.to(dtype))


def _norm_dims(shape, normalized_ndim):
    return tuple(range(len(shape) - normalized_ndim, len(shape)))


def layer_norm(b, x, layout, weight, bias, dtype, normalized_ndim, eps):
    with no_grad():
        t = _acc(_t(b, x, layout, dtype))
        dims = _norm_dims(t.shape, normalized_ndim)
        wshape = t.shape[-normalized_ndim:]
        mean = t.mean(dims, keepdim=True)
        var = ((t - mean) ** 2).mean(dims, keepdim=True)
        rstd = (var + eps).rsqrt()
        y = (t - mean) * rstd
        if weight is not None:
            y = y * _t(b, weight, wshape, dtype).to(y.dtype)
        if bias is not None:
            y = y + _t(b, bias, wshape, dtype).to(y.dtype)
        stat_dtype = f32 if dtype.itemsize < 4 else dtype
        return (
            _s(y.to(dtype)),
            _s(mean.reshape(-1).to(stat_dtype)),
            _s(rstd.reshape(-1).to(stat_dtype)),
        )


def layer_norm_backward(b, grad, x, shape, weight, mean, rstd, dtype, normalized_ndim):
    with no_grad():
        g, t = _acc(_t(b, grad, shape, dtype)), _acc(_t(b, x, shape, dtype))
        dims = _norm_dims(shape, normalized_ndim)
        wshape = tuple(shape[-normalized_ndim:])
        stat_shape = tuple(shape[: len(shape) - normalized_ndim]) + (1,) * normalized_ndim
        stat_dtype = f32 if dtype.itemsize < 4 else dtype
        mu = _t(b, mean, stat_shape, stat_dtype).to(t.dtype)
        rs = _t(b, rstd, stat_shape, stat_dtype).to(t.dtype)
        xhat = (t - mu) * rs
        batch_dims = tuple(range(len(shape) - normalized_ndim))
        gw = gb = None
        if weight is not None:
            gw = (
                _s((g * xhat).sum(batch_dims).to(dtype)) if batch_dims else _s((g * xhat).to(dtype))
            )
            gb = _s(g.sum(batch_dims).to(dtype)) if batch_dims else _s(g.to(dtype))
            g = g * _t(b, weight, wshape, dtype).to(t.dtype)
        gx = rs * (g - g.mean(dims, keepdim=True) - xhat * (g * xhat).mean(dims, keepdim=True))
        return _s(gx.to(dtype)), gw, gb


def rms_norm(b, x, layout, weight, dtype, normalized_ndim, eps):
    with no_grad():
        t = _acc(_t(b, x, layout, dtype))
        dims = _norm_dims(t.shape, normalized_ndim)
        rstd = ((t * t).mean(dims, keepdim=True) + eps).rsqrt()
        y = t * rstd
        if weight is not None:
            y = y * _t(b, weight, t.shape[-normalized_ndim:], dtype).to(y.dtype)
        stat_dtype = f32 if dtype.itemsize < 4 else dtype
        return _s(y.to(dtype)), _s(rstd.reshape(-1).to(stat_dtype))


def rms_norm_backward(b, grad, x, shape, weight, rstd, dtype, normalized_ndim):
    with no_grad():
        g, t = _acc(_t(b, grad, shape, dtype)), _acc(_t(b, x, shape, dtype))
        dims = _norm_dims(shape, normalized_ndim)
        wshape = tuple(shape[-normalized_ndim:])
        stat_shape = tuple(shape[: len(shape) - normalized_ndim]) + (1,) * normalized_ndim
        stat_dtype = f32 if dtype.itemsize < 4 else dtype
        rs = _t(b, rstd, stat_shape, stat_dtype).to(t.dtype)
        xhat = t * rs
        gw = None
        if weight is not None:
            batch_dims = tuple(range(len(shape) - normalized_ndim))
            gw = (
                _s((g * xhat).sum(batch_dims).to(dtype)) if batch_dims else _s((g * xhat).to(dtype))
            )
            g = g * _t(b, weight, wshape, dtype).to(t.dtype)
        gx = rs * (g - xhat * (g * xhat).mean(dims, keepdim=True))
        return _s(gx.to(dtype)), gw


def _check_targets(tgt, valid, c: int) -> None:
    """Raise for a non-ignored class index outside [0, c) (one host read)."""
    bad = valid & ((tgt < 0) | (tgt >= c))
    if bad.any().item():
        value = tgt.masked_select(bad)[0].item()
        raise IndexOutOfRangeError(f"cross_entropy: target {value} is out of range for {c} classes")


def cross_entropy(b, logits, layout, target, dtype, ignore_index, label_smoothing):
    with no_grad():
        t = _acc(_t(b, logits, layout, dtype))
        tgt = _t(b, target, (t.shape[0],), i64)
        valid = tgt != ignore_index
        _check_targets(tgt, valid, t.shape[1])
        safe = tgt.where(valid, 0)
        lse = t.logsumexp(1)
        picked = t.gather(1, safe.unsqueeze(1)).squeeze(1)
        nll = lse - picked
        if label_smoothing > 0.0:
            smooth = lse - t.mean(1)
            nll = (1.0 - label_smoothing) * nll + label_smoothing * smooth
        loss = nll * valid.to(nll.dtype)
        return _s(loss.to(dtype)), _s(lse.to(t.dtype))


def cross_entropy_backward(
    b, grad_rows, logits, shape, target, lse, dtype, ignore_index, label_smoothing
):
    from . import ops

    with no_grad():
        t = _acc(_t(b, logits, shape, dtype))
        n, c = shape
        tgt = _t(b, target, (n,), i64)
        valid = (tgt != ignore_index).to(t.dtype)
        safe = tgt.where(tgt != ignore_index, 0)
        lse_t = _t(b, lse, (n,), t.dtype)
        p = (t - lse_t.unsqueeze(1)).exp()
        onehot = ops.one_hot(safe, c).to(t.dtype)
        target_dist = onehot * (1.0 - label_smoothing) + label_smoothing / c
        g = _t(b, grad_rows, (n,), dtype).to(t.dtype) * valid
        return _s(((p - target_dist) * g.unsqueeze(1)).to(dtype))


def unary_backward(b, op, x, grad, shape, dtype):
    with no_grad():
        t, g = _acc(_t(b, x, shape, dtype)), _acc(_t(b, grad, shape, dtype))
        if op == "gelu":
            cdf = 0.5 * (1.0 + (t * (1.0 / math.sqrt(2.0))).erf())
            pdf = (-0.5 * t * t).exp() * (1.0 / math.sqrt(2.0 * math.pi))
            d = cdf + t * pdf
        elif op == "gelu_tanh":
            k = math.sqrt(2.0 / math.pi)
            inner = k * (t + 0.044715 * t * t * t)
            th = inner.tanh()
            d = 0.5 * (1.0 + th) + 0.5 * t * (1.0 - th * th) * k * (1.0 + 3 * 0.044715 * t * t)
        elif op == "silu":
            s = t.sigmoid()
            d = s * (1.0 + t * (1.0 - s))
        elif op == "sigmoid":
            s = t.sigmoid()
            d = s * (1.0 - s)
        elif op == "tanh":
            th = t.tanh()
            d = 1.0 - th * th
        else:
            raise ValueError(f"unary_backward: no fused gradient for {op!r}")
        return _s((g * d).to(dtype))


def fused_elementwise(b, program, inputs, shape, dtype):
    from . import ops

    with no_grad():
        slots = [_t(b, s, lay, dt) for s, lay, dt in inputs]
        for op, *args in program:
            if op == "const":
                slots.append(args[0])
            elif len(args) == 1:
                slots.append(ops.unary(op, slots[args[0]]))
            else:
                slots.append(ops.binary(op, slots[args[0]], slots[args[1]]))
        out = slots[-1]
        return _s(ops.expand_to(out, shape).to(dtype).contiguous().clone())


# --- optimizer updates (in place) ---------------------------------------------------------
def _inplace(b, dst, value, dtype):
    n = value.numel
    b.copy_into(dst, Layout.contiguous((n,)), value._storage, value.layout, dtype)


def _flat(b, s, n, dtype):
    return _t(b, s, (n,), dtype)


def _state_views(b, param, grad, n, dtype, *states):
    return [_flat(b, param, n, dtype), _flat(b, grad, n, dtype)] + [
        None if s is None else _flat(b, s, n, dtype) for s in states
    ]


def sgd_update(
    b,
    n,
    param,
    grad,
    momentum_buf,
    dtype,
    *,
    lr,
    momentum,
    dampening,
    nesterov,
    weight_decay,
    maximize,
    first_step,
):
    with no_grad():
        p, g, buf = _state_views(b, param, grad, n, dtype, momentum_buf)
        if maximize:
            g = -g
        if weight_decay:
            g = g + weight_decay * p
        if momentum:
            new_buf = g if first_step else buf * momentum + (1.0 - dampening) * g
            _inplace(b, momentum_buf, new_buf, dtype)
            g = g + momentum * new_buf if nesterov else new_buf
        _inplace(b, param, p - lr * g, dtype)


def _adam_moments(
    b, p, g, m, v, exp_avg, exp_avg_sq, dtype, lr, beta1, beta2, weight_decay, decoupled, maximize
):
    """The part Adam, AdamW and RAdam share: weight decay (L2 or decoupled), the two moment
    updates written back in place; returns (param after decoupled decay, m, v)."""
    if maximize:
        g = -g
    if weight_decay:
        if decoupled:
            p = p * (1.0 - lr * weight_decay)
        else:
            g = g + weight_decay * p
    m = m * beta1 + (1.0 - beta1) * g
    v = v * beta2 + (1.0 - beta2) * g * g
    _inplace(b, exp_avg, m, dtype)
    _inplace(b, exp_avg_sq, v, dtype)
    return p, m, v


def adam_update(
    b,
    n,
    param,
    grad,
    exp_avg,
    exp_avg_sq,
    max_exp_avg_sq,
    dtype,
    *,
    lr,
    beta1,
    beta2,
    eps,
    weight_decay,
    decoupled,
    step,
    maximize,
):
    with no_grad():
        p, g, m, v, vmax = _state_views(
            b, param, grad, n, dtype, exp_avg, exp_avg_sq, max_exp_avg_sq
        )
        p, m, v = _adam_moments(
            b,
            p,
            g,
            m,
            v,
            exp_avg,
            exp_avg_sq,
            dtype,
            lr,
            beta1,
            beta2,
            weight_decay,
            decoupled,
            maximize,
        )
        if vmax is not None:
            v = vmax.maximum(v)
            _inplace(b, max_exp_avg_sq, v, dtype)
        bc1 = 1.0 - beta1**step
        bc2 = 1.0 - beta2**step
        denom = (v.sqrt() / math.sqrt(bc2)) + eps
        _inplace(b, param, p - (lr / bc1) * m / denom, dtype)


def radam_update(
    b,
    n,
    param,
    grad,
    exp_avg,
    exp_avg_sq,
    dtype,
    *,
    lr,
    beta1,
    beta2,
    eps,
    weight_decay,
    decoupled,
    step,
    maximize=False,
):
    with no_grad():
        p, g, m, v = _state_views(b, param, grad, n, dtype, exp_avg, exp_avg_sq)
        p, m, v = _adam_moments(
            b,
            p,
            g,
            m,
            v,
            exp_avg,
            exp_avg_sq,
            dtype,
            lr,
            beta1,
            beta2,
            weight_decay,
            decoupled,
            maximize,
        )
        bc1 = 1.0 - beta1**step
        bc2 = 1.0 - beta2**step
        rho_inf = 2.0 / (1.0 - beta2) - 1.0
        rho_t = rho_inf - 2.0 * step * (beta2**step) / bc2
        m_hat = m / bc1
        if rho_t > 5.0:
            rect = math.sqrt(
                (rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
            )
            adaptive = math.sqrt(bc2) / (v.sqrt() + eps)
            p = p - lr * rect * m_hat * adaptive
        else:
            p = p - lr * m_hat
        _inplace(b, param, p, dtype)


def rmsprop_update(
    b,
    n,
    param,
    grad,
    square_avg,
    momentum_buf,
    grad_avg,
    dtype,
    *,
    lr,
    alpha,
    eps,
    weight_decay,
    momentum,
    centered,
    maximize=False,
):
    with no_grad():
        p, g, sq, buf, gavg = _state_views(
            b, param, grad, n, dtype, square_avg, momentum_buf, grad_avg
        )
        if maximize:
            g = -g
        if weight_decay:
            g = g + weight_decay * p
        sq = sq * alpha + (1.0 - alpha) * g * g
        _inplace(b, square_avg, sq, dtype)
        if centered:
            gavg = gavg * alpha + (1.0 - alpha) * g
            _inplace(b, grad_avg, gavg, dtype)
            avg = (sq - gavg * gavg).sqrt() + eps
        else:
            avg = sq.sqrt() + eps
        if momentum > 0:
            buf = buf * momentum + g / avg
            _inplace(b, momentum_buf, buf, dtype)
            p = p - lr * buf
        else:
            p = p - lr * g / avg
        _inplace(b, param, p, dtype)


# --- recurrent cells and masked softmax ---------------------------------------------------
# The same maths shrew_nn's recurrent layers and attention used to compose themselves; a
# backend's fused kernels are tested against these.
def lstm_cell_forward(b, gates, c_prev, dtype, batch, hidden):
    from . import ops

    H = hidden
    with no_grad():
        g = _acc(_t(b, gates, (batch, 4 * H), dtype))
        c = _acc(_t(b, c_prev, (batch, H), dtype))
        a = g.sigmoid()
        gg = g[:, 2 * H : 3 * H].tanh()
        act = ops.cat([a[:, : 2 * H], gg, a[:, 3 * H :]], dim=1)
        c_new = a[:, H : 2 * H] * c + a[:, :H] * gg
        tc = c_new.tanh()
        h = a[:, 3 * H :] * tc
        return tuple(_s(t.to(dtype)) for t in (h, c_new, act, tc))


def lstm_cell_backward(b, dh, dc, act, c_prev, tanh_c, dtype, batch, hidden):
    from . import ops

    H = hidden
    with no_grad():
        dh_, dc_, cp, tc = (_acc(_t(b, s, (batch, H), dtype)) for s in (dh, dc, c_prev, tanh_c))
        a = _acc(_t(b, act, (batch, 4 * H), dtype))
        i, f, g, o = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :]
        dct = dc_ + dh_ * o * (1.0 - tc * tc)
        d_gates = ops.cat(
            [
                dct * g * i * (1.0 - i),
                dct * cp * f * (1.0 - f),
                dct * i * (1.0 - g * g),
                dh_ * tc * o * (1.0 - o),
            ],
            dim=1,
        )
        return _s(d_gates.to(dtype)), _s((dct * f).to(dtype))


def gru_cell_forward(b, xg, xg_layout, hg, h_prev, dtype, batch, hidden):
    H = hidden
    with no_grad():
        x = _acc(_t(b, xg, xg_layout, dtype))
        hgt = _acc(_t(b, hg, (batch, 3 * H), dtype))
        h = _acc(_t(b, h_prev, (batch, H), dtype))
        rz = (x[:, : 2 * H] + hgt[:, : 2 * H]).sigmoid()
        n = (x[:, 2 * H :] + rz[:, :H] * hgt[:, 2 * H :]).tanh()
        h_new = n + rz[:, H:] * (h - n)
        return tuple(_s(t.to(dtype)) for t in (h_new, rz, n))


def gru_cell_backward(b, dh, h_prev, hg, rz, n, dtype, batch, hidden):
    from . import ops

    H = hidden
    with no_grad():
        dh_, hp, nt = (_acc(_t(b, s, (batch, H), dtype)) for s in (dh, h_prev, n))
        hgt = _acc(_t(b, hg, (batch, 3 * H), dtype))
        rzt = _acc(_t(b, rz, (batch, 2 * H), dtype))
        r, z = rzt[:, :H], rzt[:, H:]
        dn = dh_ * (1.0 - z) * (1.0 - nt * nt)
        drz = ops.cat([dn * hgt[:, 2 * H :], dh_ * (hp - nt)], dim=1) * rzt * (1.0 - rzt)
        d_xg = ops.cat([drz, dn], dim=1)
        d_hg = ops.cat([drz, dn * r], dim=1)
        return _s(d_xg.to(dtype)), _s(d_hg.to(dtype)), _s((dh_ * z).to(dtype))


def masked_softmax(b, x, layout, mask, mask_layout, dtype, dim, scale):
    with no_grad():
        t = _acc(_t(b, x, layout, dtype))
        if scale != 1.0:
            t = t * scale
        if mask is not None:
            t = t + _acc(_t(b, mask, mask_layout, dtype))
        e = (t - t.amax(dim, keepdim=True)).exp()
        return _s((e / e.sum(dim, keepdim=True)).to(dtype))


def masked_softmax_backward(b, y, grad, shape, dtype, dim, scale):
    with no_grad():
        yt, gt = _acc(_t(b, y, shape, dtype)), _acc(_t(b, grad, shape, dtype))
        out = yt * (gt - (gt * yt).sum(dim, keepdim=True))
        if scale != 1.0:
            out = out * scale
        return _s(out.to(dtype))


def dequantize_weight(b, weight, scales, zero_points, bits, n, k, groups, dtype):
    """The float [N, K] weight of ``Backend.quantized_linear``'s integer operands, by tensor
    ops (u8 bytes -> signed integers -> (q - zp) * scale)."""
    from .dtypes import u8
    from .ops.shape import stack

    with no_grad():
        numel = n * k
        raw = _t(b, weight, (numel if bits == 8 else (numel + 1) // 2,), u8).to(dtype)
        if bits == 8:
            q = raw.where(raw < 128, raw - 256)
        else:
            hi = (raw / 16).floor()
            lo = raw - hi * 16
            q = (stack([lo, hi], 1).reshape(-1) - 8)[:numel]
        q = q.reshape(n, groups, k // groups if groups else 0)
        if zero_points is not None:
            q = q - _t(b, zero_points, (n, groups, 1), f32).to(dtype)
        return q * _t(b, scales, (n, groups, 1), f32).to(dtype)


def quantized_linear(b, x, x_layout, dtype, weight, scales, zero_points, bits, n, k, groups):
    with no_grad():
        calc = dtype if dtype.itemsize >= 4 else f32
        w = dequantize_weight(b, weight, scales, zero_points, bits, n, k, groups, calc)
        xt = _t(b, x, x_layout, dtype).to(calc)
        return _s((xt @ w.reshape(n, k).t()).to(dtype))
