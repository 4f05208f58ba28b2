"""Fused optimizer updates, IN PLACE: one grid-stride pass over a parameter and its state
per step (torch.optim semantics, the same maths as ``shrew_core.fused_defaults``).
f16/bf16 parameters and states compute in f32 and are rounded once per step.
"""

from __future__ import annotations

import math

from numba import cuda

from . import _access as A
from . import _runtime
from ._intrinsics import math_for


def _setup(dtype):
    acc = A.acc_name(dtype)
    return acc, A.np_acc(acc), A.load_kind(dtype), A.store_kind(dtype, acc)


@_runtime.kernel_factory
def sgd_kernel(acc: str, sk: int):
    T = A.ACC_TYPES[acc]
    load, store = A.loader(acc), A.storer(sk, acc)

    @cuda.jit(cache=True)
    def sgd(n, p, g, buf, has_buf, lr, mom, damp, nesterov, wd, maximize, first, kind):
        for i in range(cuda.grid(1), n, cuda.gridsize(1)):
            gv = load(g, i, kind)
            pv = load(p, i, kind)
            if maximize:
                gv = -gv
            if wd != T(0.0):
                gv = gv + wd * pv
            if has_buf:
                b = gv if first else load(buf, i, kind) * mom + (T(1.0) - damp) * gv
                store(buf, i, b)
                gv = gv + mom * b if nesterov else b
            store(p, i, pv - lr * gv)

    return sgd


def sgd(numel, param, grad, momentum_buf, dtype, *, lr, momentum, dampening, nesterov,
        weight_decay, maximize, first_step):  # fmt: skip
    if numel == 0:
        return
    acc, T, kind, sk = _setup(dtype)
    has_buf = bool(momentum) and momentum_buf is not None
    blocks, threads = _runtime.grid(numel)
    sgd_kernel(acc, sk)[blocks, threads](
        numel, param, grad, momentum_buf if has_buf else param, has_buf, T(lr), T(momentum),
        T(dampening), bool(nesterov), T(weight_decay), bool(maximize), bool(first_step), kind)


@_runtime.kernel_factory
def adam_kernel(acc: str, sk: int):
    """Adam/AdamW (amsgrad with ``has_max``) and RAdam (``radam``: ``rect`` > 0 takes the
    adaptive step scaled by ``rect``, else the plain momentum step)."""
    T = A.ACC_TYPES[acc]
    sqrt = math_for(A.np_acc(acc)).sqrt
    load, store = A.loader(acc), A.storer(sk, acc)

    @cuda.jit(cache=True)
    def adam(n, p, g, m, v, vmax, has_max, lr, b1, b2, eps, wd, decoupled, maximize, bc1,
             sqrt_bc2, radam, rect, kind):  # fmt: skip
        one = T(1.0)
        for i in range(cuda.grid(1), n, cuda.gridsize(1)):
            gv = load(g, i, kind)
            pv = load(p, i, kind)
            if maximize:
                gv = -gv
            if wd != T(0.0):
                if decoupled:
                    pv = pv * (one - lr * wd)
                else:
                    gv = gv + wd * pv
            mv = load(m, i, kind) * b1 + (one - b1) * gv
            vv = load(v, i, kind) * b2 + (one - b2) * gv * gv
            store(m, i, mv)
            store(v, i, vv)
            if radam:
                mh = mv / bc1
                if rect > T(0.0):
                    pv = pv - lr * rect * mh * (sqrt_bc2 / (sqrt(vv) + eps))
                else:
                    pv = pv - lr * mh
            else:
                if has_max:
                    vm = load(vmax, i, kind)
                    vv = vm if vm > vv else vv
                    store(vmax, i, vv)
                denom = sqrt(vv) / sqrt_bc2 + eps
                pv = pv - (lr / bc1) * mv / denom
            store(p, i, pv)

    return adam


def adam(numel, param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, dtype, *, lr, beta1, beta2,
         eps, weight_decay, decoupled, step, maximize):  # fmt: skip
    if numel == 0:
        return
    acc, T, kind, sk = _setup(dtype)
    has_max = max_exp_avg_sq is not None
    bc1, bc2 = 1.0 - beta1**step, 1.0 - beta2**step
    blocks, threads = _runtime.grid(numel)
    adam_kernel(acc, sk)[blocks, threads](
        numel, param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq if has_max else exp_avg_sq,
        has_max, T(lr), T(beta1), T(beta2), T(eps), T(weight_decay), bool(decoupled),
        bool(maximize), T(bc1), T(math.sqrt(bc2)), False, T(0.0), kind)  # fmt: skip


def radam(numel, param, grad, exp_avg, exp_avg_sq, dtype, *, lr, beta1, beta2, eps,
          weight_decay, decoupled, step, maximize=False):  # fmt: skip
    if numel == 0:
        return
    acc, T, kind, sk = _setup(dtype)
    bc1, bc2 = 1.0 - beta1**step, 1.0 - beta2**step
    rho_inf = 2.0 / (1.0 - beta2) - 1.0
    rho_t = rho_inf - 2.0 * step * (beta2**step) / bc2
    rect = 0.0
    if rho_t > 5.0:
        rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf
                         / ((rho_inf - 4) * (rho_inf - 2) * rho_t))  # fmt: skip
    blocks, threads = _runtime.grid(numel)
    adam_kernel(acc, sk)[blocks, threads](
        numel, param, grad, exp_avg, exp_avg_sq, exp_avg_sq, False, T(lr), T(beta1), T(beta2),
        T(eps), T(weight_decay), bool(decoupled), bool(maximize), T(bc1), T(math.sqrt(bc2)),
        True, T(rect), kind)  # fmt: skip


@_runtime.kernel_factory
def rmsprop_kernel(acc: str, sk: int):
    T = A.ACC_TYPES[acc]
    sqrt = math_for(A.np_acc(acc)).sqrt
    load, store = A.loader(acc), A.storer(sk, acc)

    @cuda.jit(cache=True)
    def rmsprop(n, p, g, sq, buf, gavg, has_buf, centered, lr, alpha, eps, wd, mom, maximize,
                kind):  # fmt: skip
        one = T(1.0)
        for i in range(cuda.grid(1), n, cuda.gridsize(1)):
            gv = load(g, i, kind)
            pv = load(p, i, kind)
            if maximize:
                gv = -gv
            if wd != T(0.0):
                gv = gv + wd * pv
            s = load(sq, i, kind) * alpha + (one - alpha) * gv * gv
            store(sq, i, s)
            if centered:
                ga = load(gavg, i, kind) * alpha + (one - alpha) * gv
                store(gavg, i, ga)
                avg = sqrt(s - ga * ga) + eps
            else:
                avg = sqrt(s) + eps
            if has_buf:
                b = load(buf, i, kind) * mom + gv / avg
                store(buf, i, b)
                pv = pv - lr * b
            else:
                pv = pv - lr * gv / avg
            store(p, i, pv)

    return rmsprop


def rmsprop(numel, param, grad, square_avg, momentum_buf, grad_avg, dtype, *, lr, alpha, eps,
            weight_decay, momentum, centered, maximize=False):  # fmt: skip
    if numel == 0:
        return
    acc, T, kind, sk = _setup(dtype)
    has_buf = momentum > 0 and momentum_buf is not None
    centered = bool(centered) and grad_avg is not None
    blocks, threads = _runtime.grid(numel)
    rmsprop_kernel(acc, sk)[blocks, threads](
        numel, param, grad, square_avg, momentum_buf if has_buf else square_avg,
        grad_avg if centered else square_avg, has_buf, centered, T(lr), T(alpha), T(eps),
        T(weight_decay), T(momentum), bool(maximize), kind)  # fmt: skip
