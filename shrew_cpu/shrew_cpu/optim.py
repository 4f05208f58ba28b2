"""Host side of the optimizer updates: dtype handling and the serial/parallel switch.

Storages are updated IN PLACE. f32/f64 storages are handed to the kernels directly;
f16/bf16 parameters/states are updated through f32 copies written back once.
"""

from __future__ import annotations

import math

import numpy as np

from . import _config
from .kernels import optim as K
from .threads import get_num_threads, parallel_for, ranges

_F32 = np.dtype(np.float32)


def _nch(n):
    if n < _config.PARALLEL_THRESHOLD:
        return 0
    per = 4 if n >= 64 * _config.MIN_CHUNK else 1
    return max(1, min(get_num_threads() * per, n // _config.MIN_CHUNK))


class _Half:
    """f32 working copies of half storages, written back on exit."""

    def __init__(self, *arrays):
        self.orig = arrays

    def __enter__(self):
        self.work = [None if a is None else a.astype(_F32) for a in self.orig]
        return self.work

    def __exit__(self, *exc):
        if exc[0] is None:
            for o, w in zip(self.orig, self.work):
                if o is not None:
                    o[...] = w.astype(o.dtype)


def _run(kernel, arrays, scalars, n):
    nch = _nch(n)
    if nch:
        parallel_for(kernel, [(*arrays, *scalars, lo, hi) for lo, hi in ranges(n, nch)])
    else:
        kernel(*arrays, *scalars, 0, n)


def _dummy(like):
    return np.zeros(1, like.dtype)


def sgd(n, param, grad, buf, *, lr, momentum, dampening, nesterov, weight_decay, maximize,
        first_step):  # fmt: skip
    def go(p, g, b):
        t = p.dtype.type
        common = (weight_decay != 0.0, t(-1.0 if maximize else 1.0), t(weight_decay), t(lr))
        if momentum != 0.0 and b is not None:
            _run(K.sgd_momentum, (p[:n], g[:n], b), (*common, bool(first_step), bool(nesterov),
                 t(momentum), t(1.0 - dampening)), n)  # fmt: skip
        else:
            _run(K.sgd, (p[:n], g[:n]), common, n)

    if param.dtype.itemsize == 2:
        with _Half(param, grad, buf) as w:
            go(*w)
    else:
        go(param, grad, buf)


def adam(n, param, grad, m, v, vmax, *, lr, beta1, beta2, eps, weight_decay, decoupled, step,
         maximize):  # fmt: skip
    bc1, bc2 = 1.0 - beta1**step, 1.0 - beta2**step

    def go(p, g, m_, v_, vm):
        t = p.dtype.type
        scalars = (weight_decay != 0.0 and not decoupled, t(-1.0 if maximize else 1.0),
                   t(1.0 - lr * weight_decay if decoupled else 1.0), t(weight_decay), t(beta1),
                   t(1.0 - beta1), t(beta2), t(1.0 - beta2), t(lr / bc1),
                   t(1.0 / math.sqrt(bc2)), t(eps))  # fmt: skip
        if vm is None:
            _run(K.adam, (p[:n], g[:n], m_, v_), scalars, n)
        else:
            _run(K.adam_amsgrad, (p[:n], g[:n], m_, v_, vm), scalars, n)

    if param.dtype.itemsize == 2:
        with _Half(param, grad, m, v, vmax) as w:
            go(*w)
    else:
        go(param, grad, m, v, vmax)


def radam(n, param, grad, m, v, *, lr, beta1, beta2, eps, weight_decay, decoupled, step,
          maximize=False):  # fmt: skip
    def go(p, g, m_, v_):
        _run(K.radam, (p[:n], g[:n], m_, v_),
             (float(lr), float(beta1), float(beta2), float(eps), float(weight_decay),
              bool(decoupled), float(step), bool(maximize)), n)  # fmt: skip

    if param.dtype.itemsize == 2:
        with _Half(param, grad, m, v) as w:
            go(*w)
    else:
        go(param, grad, m, v)


def rmsprop(n, param, grad, sq, buf, gavg, *, lr, alpha, eps, weight_decay, momentum, centered,
            maximize=False):  # fmt: skip
    def go(p, g, s, b, ga):
        has = b is not None
        _run(K.rmsprop,
             (p[:n], g[:n], s, b if has else _dummy(p), ga if ga is not None else _dummy(p)),
             (has, bool(centered), float(lr), float(alpha), float(eps), float(weight_decay),
              float(momentum), bool(maximize)), n)  # fmt: skip

    if param.dtype.itemsize == 2:
        with _Half(param, grad, sq, buf, gavg) as w:
            go(*w)
    else:
        go(param, grad, sq, buf, gavg)
