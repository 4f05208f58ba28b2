"""Optimizer update kernels: one fused pass per parameter per step, IN PLACE.

Each rule reads param, grad and its state once and writes param and state once, with
the formulas of ``shrew_core.fused_defaults`` (PyTorch's SGD, Adam/AdamW with amsgrad,
RAdam, RMSprop). Each kernel updates an index range ``[lo, hi)`` without the GIL; the
host splits large parameters into ranges over the worker threads (``threads.py``).

Arithmetic runs in the storage dtype (f32 or f64; halves arrive as f32 copies), like
``torch.optim``'s fused kernels: hyperparameters and bias corrections are computed once
per call in f64, then rounded to the dtype (for SGD and Adam by the host, which passes
them in). The inner loops are branch-free so LLVM vectorises them: ``maximize`` is a sign
factor (exact), decoupled weight decay a scale factor on the parameter (1 when off:
exact), and loop-invariant options read inside the loop (L2 weight decay, first momentum
step, Nesterov) become vector selects. Options that change what the loop reads or writes
(momentum buffer, amsgrad's running max) are separate kernels, compiled only when used,
so a first step compiles one loop; RAdam and RMSprop pick among a few loop variants
outside the loop (an ``inline='always'`` loop body called with constant flags). Loops
index slices from 0 (``range(lo, hi)`` over the full arrays makes Numba emit
negative-index wraparound checks that block SIMD).
"""

from __future__ import annotations

import math

from numba import njit


# ------------------------------------------------------------------------------ SGD
@njit(inline="always", error_model="numpy")
def _sgd_loop(p, g, buf, lo, hi, MOM, l2, first, nesterov, sgn, wd, lr, mom, omd):
    p = p[lo:hi]
    g = g[lo:hi]
    buf = buf[lo:hi]
    for i in range(hi - lo):
        gi = g[i] * sgn
        if l2:
            gi = gi + wd * p[i]
        if MOM:
            b = gi if first else buf[i] * mom + omd * gi
            buf[i] = b
            gi = gi + mom * b if nesterov else b
        p[i] = p[i] - lr * gi


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def sgd(p, g, l2, sgn, wd, lr, lo, hi):
    """Plain SGD on [lo, hi): p -= lr * (sgn * g [+ wd * p])."""
    _sgd_loop(p, g, g, lo, hi, False, l2, False, False, sgn, wd, lr, lr, lr)


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def sgd_momentum(p, g, buf, l2, sgn, wd, lr, first, nesterov, mom, omd, lo, hi):
    """SGD with a momentum buffer (``first``: the buffer starts as the gradient)."""
    _sgd_loop(p, g, buf, lo, hi, True, l2, first, nesterov, sgn, wd, lr, mom, omd)


# ------------------------------------------------------------------------------ Adam
@njit(inline="always", error_model="numpy")
def _adam_loop(p, g, m, v, vmax, lo, hi, AMS, l2, sgn, pscale, wd, b1, omb1, b2, omb2,
               step_size, inv_sbc2, eps):  # fmt: skip
    p = p[lo:hi]
    g = g[lo:hi]
    m = m[lo:hi]
    v = v[lo:hi]
    vmax = vmax[lo:hi]
    for i in range(hi - lo):
        gi = g[i] * sgn
        pi = p[i] * pscale
        if l2:
            gi = gi + wd * pi
        mi = m[i] * b1 + omb1 * gi
        vi = v[i] * b2 + omb2 * gi * gi
        m[i] = mi
        v[i] = vi
        if AMS:
            vi = max(vmax[i], vi)
            vmax[i] = vi
        p[i] = pi - step_size * mi / (math.sqrt(vi) * inv_sbc2 + eps)


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def adam(p, g, m, v, l2, sgn, pscale, wd, b1, omb1, b2, omb2, step_size, inv_sbc2, eps, lo, hi):
    """Adam/AdamW on [lo, hi) with the per-call scalars of ``shrew_cpu.optim.adam``."""
    _adam_loop(p, g, m, v, v, lo, hi, False, l2, sgn, pscale, wd, b1, omb1, b2, omb2,
               step_size, inv_sbc2, eps)  # fmt: skip


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def adam_amsgrad(p, g, m, v, vmax, l2, sgn, pscale, wd, b1, omb1, b2, omb2, step_size, inv_sbc2,
                 eps, lo, hi):  # fmt: skip
    """Adam/AdamW with amsgrad (the running max of the second moment in ``vmax``)."""
    _adam_loop(p, g, m, v, vmax, lo, hi, True, l2, sgn, pscale, wd, b1, omb1, b2, omb2,
               step_size, inv_sbc2, eps)  # fmt: skip


# ------------------------------------------------------------------------------ RAdam
@njit(inline="always", error_model="numpy")
def _radam_loop(p, g, m, v, lo, hi, L2, RECT, sgn, pscale, wd, b1, omb1, b2, omb2, inv_bc1,
                rect_lr, sbc2, eps, lr):  # fmt: skip
    p = p[lo:hi]
    g = g[lo:hi]
    m = m[lo:hi]
    v = v[lo:hi]
    for i in range(hi - lo):
        gi = g[i] * sgn
        pi = p[i] * pscale
        if L2:
            gi = gi + wd * pi
        mi = m[i] * b1 + omb1 * gi
        vi = v[i] * b2 + omb2 * gi * gi
        m[i] = mi
        v[i] = vi
        m_hat = mi * inv_bc1
        if RECT:
            p[i] = pi - rect_lr * m_hat * (sbc2 / (math.sqrt(vi) + eps))
        else:
            p[i] = pi - lr * m_hat


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def radam(p, g, m, v, lr, b1, b2, eps, wd, decoupled, step, maximize, lo, hi):
    t = p.dtype.type
    bc1 = 1.0 - b1**step
    bc2 = 1.0 - b2**step
    rho_inf = 2.0 / (1.0 - b2) - 1.0
    rho_t = rho_inf - 2.0 * step * (b2**step) / bc2
    rect = 0.0
    if rho_t > 5.0:
        rect = math.sqrt(
            (rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
        )
    sgn = t(-1.0 if maximize else 1.0)
    pscale = t(1.0 - lr * wd if decoupled else 1.0)
    l2 = wd != 0.0 and not decoupled
    wd_, b1_, omb1, b2_, omb2 = t(wd), t(b1), t(1.0 - b1), t(b2), t(1.0 - b2)
    ibc1, rl, sbc2, eps_, lr_ = t(1.0 / bc1), t(lr * rect), t(math.sqrt(bc2)), t(eps), t(lr)
    if rho_t > 5.0:
        if l2:
            _radam_loop(p, g, m, v, lo, hi, True, True, sgn, pscale, wd_, b1_, omb1, b2_,
                        omb2, ibc1, rl, sbc2, eps_, lr_)
        else:
            _radam_loop(p, g, m, v, lo, hi, False, True, sgn, pscale, wd_, b1_, omb1, b2_,
                        omb2, ibc1, rl, sbc2, eps_, lr_)
    elif l2:
        _radam_loop(p, g, m, v, lo, hi, True, False, sgn, pscale, wd_, b1_, omb1, b2_,
                    omb2, ibc1, rl, sbc2, eps_, lr_)
    else:
        _radam_loop(p, g, m, v, lo, hi, False, False, sgn, pscale, wd_, b1_, omb1, b2_,
                    omb2, ibc1, rl, sbc2, eps_, lr_)


# ------------------------------------------------------------------------------ RMSprop
@njit(inline="always", error_model="numpy")
def _rmsprop_loop(p, g, sq, buf, gavg, lo, hi, L2, CENTERED, MOM, sgn, wd, alpha, oma, eps,
                  mom, lr):  # fmt: skip
    p = p[lo:hi]
    g = g[lo:hi]
    sq = sq[lo:hi]
    buf = buf[lo:hi]
    gavg = gavg[lo:hi]
    for i in range(hi - lo):
        gi = g[i] * sgn
        pi = p[i]
        if L2:
            gi = gi + wd * pi
        s = sq[i] * alpha + oma * gi * gi
        sq[i] = s
        if CENTERED:
            ga = gavg[i] * alpha + oma * gi
            gavg[i] = ga
            avg = math.sqrt(s - ga * ga) + eps
        else:
            avg = math.sqrt(s) + eps
        if MOM:
            b = buf[i] * mom + gi / avg
            buf[i] = b
            p[i] = pi - lr * b
        else:
            p[i] = pi - lr * gi / avg


@njit(cache=True, nogil=True, error_model="numpy")  # no FMA contraction: sq - grad_avg**2 cancels
def rmsprop(p, g, sq, buf, gavg, has_buf, centered, lr, alpha, eps, wd, momentum, maximize,
            lo, hi):  # fmt: skip
    """Plain RMSprop computes in the storage dtype; centered RMSprop in f64 (like the
    f64 oracle), because ``sq - grad_avg**2`` cancels badly in f32 when the gradient's
    variance is small relative to its square."""
    t = p.dtype.type
    sgn, wd_, al, oma = t(-1.0 if maximize else 1.0), t(wd), t(alpha), t(1.0 - alpha)
    eps_, mo, lr_ = t(eps), t(momentum), t(lr)
    s64 = -1.0 if maximize else 1.0
    oma64 = 1.0 - alpha
    mom = momentum > 0 and has_buf
    l2 = wd != 0.0
    if centered:  # f64 scalars: the loop computes in f64
        if mom:
            _rmsprop_loop(p, g, sq, buf, gavg, lo, hi, l2, True, True, s64, wd, alpha, oma64,
                          eps, momentum, lr)  # fmt: skip
        else:
            _rmsprop_loop(p, g, sq, buf, gavg, lo, hi, l2, True, False, s64, wd, alpha, oma64,
                          eps, momentum, lr)  # fmt: skip
    elif l2:
        if mom:
            _rmsprop_loop(p, g, sq, buf, gavg, lo, hi, True, False, True, sgn, wd_, al, oma,
                          eps_, mo, lr_)  # fmt: skip
        else:
            _rmsprop_loop(p, g, sq, buf, gavg, lo, hi, True, False, False, sgn, wd_, al, oma,
                          eps_, mo, lr_)  # fmt: skip
    elif mom:
        _rmsprop_loop(p, g, sq, buf, gavg, lo, hi, False, False, True, sgn, wd_, al, oma,
                      eps_, mo, lr_)  # fmt: skip
    else:
        _rmsprop_loop(p, g, sq, buf, gavg, lo, hi, False, False, False, sgn, wd_, al, oma,
                      eps_, mo, lr_)  # fmt: skip
