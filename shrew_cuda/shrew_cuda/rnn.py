"""Fused LSTM and GRU cell steps (forward and backward): one thread per (batch, hidden)
element computes every gate of that unit, so a step is one kernel instead of a dozen
elementwise ops. Same maths and gate orders as ``shrew_core.fused_defaults`` (PyTorch's).
The GRU input part ``xg`` is read through its layout (one time step of the projected
sequence, any strides).
"""

from __future__ import annotations

import functools

from numba import cuda

from . import _access as A
from . import _runtime, memory
from ._intrinsics import math_for
from .layouts import storage_dtype


def _out(n, dtype):
    return memory.empty(n, storage_dtype(dtype))


def _setup(dtype):
    acc = A.acc_name(dtype)
    return acc, A.load_kind(dtype), A.store_kind(dtype, acc)


@functools.cache
def _fns(acc: str):
    M = math_for(A.np_acc(acc))
    T = A.ACC_TYPES[acc]
    exp, tanh = M.exp, M.tanh
    one = T(1.0)

    from ._intrinsics import device_fn

    @device_fn
    def sigmoid(x):
        return one / (one + exp(-x))

    return sigmoid, tanh


@_runtime.kernel_factory
def lstm_fwd_kernel(acc: str, sk: int):
    load, store = A.loader(acc), A.storer(sk, acc)
    sigmoid, tanh = _fns(acc)

    @cuda.jit(cache=True)
    def fwd(gates, cp, B, H, h, c, act, tc, kind):
        for e in range(cuda.grid(1), B * H, cuda.gridsize(1)):
            b = e // H
            j = e - b * H
            g0 = b * 4 * H + j
            i_ = sigmoid(load(gates, g0, kind))
            f_ = sigmoid(load(gates, g0 + H, kind))
            gg = tanh(load(gates, g0 + 2 * H, kind))
            o_ = sigmoid(load(gates, g0 + 3 * H, kind))
            cn = f_ * load(cp, e, kind) + i_ * gg
            t = tanh(cn)
            store(h, e, o_ * t)
            store(c, e, cn)
            store(tc, e, t)
            store(act, g0, i_)
            store(act, g0 + H, f_)
            store(act, g0 + 2 * H, gg)
            store(act, g0 + 3 * H, o_)

    return fwd


def lstm_forward(gates, c_prev, dtype, batch, hidden):
    acc, kind, sk = _setup(dtype)
    n = batch * hidden
    h, c, act, tc = _out(n, dtype), _out(n, dtype), _out(4 * n, dtype), _out(n, dtype)
    if n:
        blocks, threads = _runtime.grid(n)
        lstm_fwd_kernel(acc, sk)[blocks, threads](gates, c_prev, batch, hidden, h, c, act, tc,
                                                  kind)  # fmt: skip
    return h, c, act, tc


@_runtime.kernel_factory
def lstm_bwd_kernel(acc: str, sk: int):
    T = A.ACC_TYPES[acc]
    load, store = A.loader(acc), A.storer(sk, acc)
    one = T(1.0)

    @cuda.jit(cache=True)
    def bwd(dh, dc, act, cp, tc, B, H, dg, dcp, kind):
        for e in range(cuda.grid(1), B * H, cuda.gridsize(1)):
            b = e // H
            j = e - b * H
            g0 = b * 4 * H + j
            i_ = load(act, g0, kind)
            f_ = load(act, g0 + H, kind)
            gg = load(act, g0 + 2 * H, kind)
            o_ = load(act, g0 + 3 * H, kind)
            t = load(tc, e, kind)
            dhv = load(dh, e, kind)
            dct = load(dc, e, kind) + dhv * o_ * (one - t * t)
            store(dg, g0, dct * gg * i_ * (one - i_))
            store(dg, g0 + H, dct * load(cp, e, kind) * f_ * (one - f_))
            store(dg, g0 + 2 * H, dct * i_ * (one - gg * gg))
            store(dg, g0 + 3 * H, dhv * t * o_ * (one - o_))
            store(dcp, e, dct * f_)

    return bwd


def lstm_backward(dh, dc, act, c_prev, tanh_c, dtype, batch, hidden):
    acc, kind, sk = _setup(dtype)
    n = batch * hidden
    dg, dcp = _out(4 * n, dtype), _out(n, dtype)
    if n:
        blocks, threads = _runtime.grid(n)
        lstm_bwd_kernel(acc, sk)[blocks, threads](dh, dc, act, c_prev, tanh_c, batch, hidden,
                                                  dg, dcp, kind)  # fmt: skip
    return dg, dcp


@_runtime.kernel_factory
def gru_fwd_kernel(acc: str, sk: int):
    load, store = A.loader(acc), A.storer(sk, acc)
    sigmoid, tanh = _fns(acc)

    @cuda.jit(cache=True)
    def fwd(xg, xo, xs0, xs1, hg, hp, B, H, hn, rz, nn, kind):
        for e in range(cuda.grid(1), B * H, cuda.gridsize(1)):
            b = e // H
            j = e - b * H
            px = xo + b * xs0 + j * xs1
            ph = b * 3 * H + j
            r = sigmoid(load(xg, px, kind) + load(hg, ph, kind))
            z = sigmoid(load(xg, px + H * xs1, kind) + load(hg, ph + H, kind))
            n = tanh(load(xg, px + 2 * H * xs1, kind) + r * load(hg, ph + 2 * H, kind))
            store(hn, e, n + z * (load(hp, e, kind) - n))
            store(rz, b * 2 * H + j, r)
            store(rz, b * 2 * H + H + j, z)
            store(nn, e, n)

    return fwd


def gru_forward(xg, xg_layout, hg, h_prev, dtype, batch, hidden):
    acc, kind, sk = _setup(dtype)
    n = batch * hidden
    hn, rz, nn = _out(n, dtype), _out(2 * n, dtype), _out(n, dtype)
    if n:
        blocks, threads = _runtime.grid(n)
        gru_fwd_kernel(acc, sk)[blocks, threads](
            xg, xg_layout.offset, xg_layout.strides[0], xg_layout.strides[1], hg, h_prev,
            batch, hidden, hn, rz, nn, kind)  # fmt: skip
    return hn, rz, nn


@_runtime.kernel_factory
def gru_bwd_kernel(acc: str, sk: int):
    T = A.ACC_TYPES[acc]
    load, store = A.loader(acc), A.storer(sk, acc)
    one = T(1.0)

    @cuda.jit(cache=True)
    def bwd(dh, hp, hg, rz, nn, B, H, dxg, dhg, dhp, kind):
        for e in range(cuda.grid(1), B * H, cuda.gridsize(1)):
            b = e // H
            j = e - b * H
            r = load(rz, b * 2 * H + j, kind)
            z = load(rz, b * 2 * H + H + j, kind)
            n = load(nn, e, kind)
            dhv = load(dh, e, kind)
            ph = b * 3 * H + j
            dn = dhv * (one - z) * (one - n * n)
            dr = dn * load(hg, ph + 2 * H, kind) * r * (one - r)
            dz = dhv * (load(hp, e, kind) - n) * z * (one - z)
            store(dxg, ph, dr)
            store(dxg, ph + H, dz)
            store(dxg, ph + 2 * H, dn)
            store(dhg, ph, dr)
            store(dhg, ph + H, dz)
            store(dhg, ph + 2 * H, dn * r)
            store(dhp, e, dhv * z)

    return bwd


def gru_backward(dh, h_prev, hg, rz, n, dtype, batch, hidden):
    acc, kind, sk = _setup(dtype)
    m = batch * hidden
    dxg, dhg, dhp = _out(3 * m, dtype), _out(3 * m, dtype), _out(m, dtype)
    if m:
        blocks, threads = _runtime.grid(m)
        gru_bwd_kernel(acc, sk)[blocks, threads](dh, h_prev, hg, rz, n, batch, hidden, dxg,
                                                 dhg, dhp, kind)  # fmt: skip
    return dxg, dhg, dhp
