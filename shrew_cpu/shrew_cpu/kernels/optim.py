"""Optimizer update kernels: one fused pass per parameter per step, IN PLACE.

Each rule reads param, grad and its state once and writes param and state once, with
the exact formulas of ``shrew_core.fused_defaults`` (PyTorch's SGD, Adam/AdamW with
amsgrad, RAdam, RMSprop). The serial kernel updates an index range; the ``*_par``
wrappers split the range over ``prange`` chunks. Hyperparameters arrive as f64 scalars,
so the arithmetic runs in f64 and rounds once into the storage dtype.
"""

from __future__ import annotations

import math

from numba import njit, prange


@njit(cache=True, error_model="numpy")
def sgd(p, g, buf, has_buf, lr, momentum, dampening, nesterov, wd, maximize, first, lo, hi):
    for i in range(lo, hi):
        gi = -g[i] if maximize else g[i] * 1.0
        if wd != 0.0:
            gi = gi + wd * p[i]
        if momentum != 0.0 and has_buf:
            b = gi if first else buf[i] * momentum + (1.0 - dampening) * gi
            buf[i] = b
            gi = gi + momentum * b if nesterov else b
        p[i] = p[i] - lr * gi


@njit(cache=True, error_model="numpy")
def adam(p, g, m, v, vmax, amsgrad, lr, b1, b2, eps, wd, decoupled, step, maximize, lo, hi):
    bc1 = 1.0 - b1**step
    bc2 = 1.0 - b2**step
    sbc2 = math.sqrt(bc2)
    for i in range(lo, hi):
        gi = -g[i] if maximize else g[i] * 1.0
        pi = p[i] * 1.0
        if wd != 0.0:
            if decoupled:
                pi = pi * (1.0 - lr * wd)
            else:
                gi = gi + wd * pi
        mi = m[i] * b1 + (1.0 - b1) * gi
        vi = v[i] * b2 + (1.0 - b2) * gi * gi
        m[i] = mi
        v[i] = vi
        if amsgrad:
            vi = max(vmax[i], vi)
            vmax[i] = vi
        denom = math.sqrt(vi) / sbc2 + eps
        p[i] = pi - (lr / bc1) * mi / denom


@njit(cache=True, error_model="numpy")
def radam(p, g, m, v, lr, b1, b2, eps, wd, decoupled, step, lo, hi):
    bc1 = 1.0 - b1**step
    bc2 = 1.0 - b2**step
    rho_inf = 2.0 / (1.0 - b2) - 1.0
    rho_t = rho_inf - 2.0 * step * (b2**step) / bc2
    rect = 0.0
    if rho_t > 5.0:
        rect = math.sqrt(
            (rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
        )
    for i in range(lo, hi):
        gi = g[i] * 1.0
        pi = p[i] * 1.0
        if wd != 0.0:
            if decoupled:
                pi = pi * (1.0 - lr * wd)
            else:
                gi = gi + wd * pi
        mi = m[i] * b1 + (1.0 - b1) * gi
        vi = v[i] * b2 + (1.0 - b2) * gi * gi
        m[i] = mi
        v[i] = vi
        m_hat = mi / bc1
        if rho_t > 5.0:
            p[i] = pi - lr * rect * m_hat * (math.sqrt(bc2) / (math.sqrt(vi) + eps))
        else:
            p[i] = pi - lr * m_hat


@njit(cache=True, error_model="numpy")
def rmsprop(p, g, sq, buf, gavg, has_buf, centered, lr, alpha, eps, wd, momentum, lo, hi):
    for i in range(lo, hi):
        gi = g[i] * 1.0
        pi = p[i] * 1.0
        if wd != 0.0:
            gi = gi + wd * pi
        s = sq[i] * alpha + (1.0 - alpha) * gi * gi
        sq[i] = s
        if centered:
            ga = gavg[i] * alpha + (1.0 - alpha) * gi
            gavg[i] = ga
            avg = math.sqrt(s - ga * ga) + eps
        else:
            avg = math.sqrt(s) + eps
        if momentum > 0 and has_buf:
            b = buf[i] * momentum + gi / avg
            buf[i] = b
            p[i] = pi - lr * b
        else:
            p[i] = pi - lr * gi / avg


@njit(cache=True, parallel=True, error_model="numpy")
def sgd_par(p, g, buf, has_buf, lr, momentum, dampening, nesterov, wd, maximize, first, nch):
    n = p.size
    step = (n + nch - 1) // nch
    for c in prange(nch):
        sgd(p, g, buf, has_buf, lr, momentum, dampening, nesterov, wd, maximize, first,
            c * step, min(n, (c + 1) * step))  # fmt: skip


@njit(cache=True, parallel=True, error_model="numpy")
def adam_par(p, g, m, v, vmax, amsgrad, lr, b1, b2, eps, wd, decoupled, step_, maximize, nch):
    n = p.size
    step = (n + nch - 1) // nch
    for c in prange(nch):
        adam(p, g, m, v, vmax, amsgrad, lr, b1, b2, eps, wd, decoupled, step_, maximize,
             c * step, min(n, (c + 1) * step))  # fmt: skip


@njit(cache=True, parallel=True, error_model="numpy")
def radam_par(p, g, m, v, lr, b1, b2, eps, wd, decoupled, step_, nch):
    n = p.size
    step = (n + nch - 1) // nch
    for c in prange(nch):
        radam(p, g, m, v, lr, b1, b2, eps, wd, decoupled, step_, c * step,
              min(n, (c + 1) * step))  # fmt: skip


@njit(cache=True, parallel=True, error_model="numpy")
def rmsprop_par(p, g, sq, buf, gavg, has_buf, centered, lr, alpha, eps, wd, momentum, nch):
    n = p.size
    step = (n + nch - 1) // nch
    for c in prange(nch):
        rmsprop(p, g, sq, buf, gavg, has_buf, centered, lr, alpha, eps, wd, momentum,
                c * step, min(n, (c + 1) * step))  # fmt: skip
