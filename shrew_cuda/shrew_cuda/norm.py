"""Fused row kernels: softmax / log_softmax / masked softmax, layer_norm / rms_norm,
cross_entropy, and their backwards. One block per row, grid-stride over rows.

Rows are read in place: the softmax dim is the row (any stride), the other dims are
enumerated through a canonical (offset, strides) tuple, and a broadcast additive mask is a
third strided view. Softmax makes one online (max, sum) pass — each thread rescales its
running sum when its max grows, then (max, sum) pairs merge in a shared-memory tree — and
one writing pass. Norms take shifted sums (shifted by the row's first element, for
accuracy) in one pass, then write; their weight/bias gradients are column sums, one
thread per column. f16/bf16 compute in f32; statistics are f32 for half inputs.
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda

from shrew_core.dtypes import f32, f64
from shrew_core.errors import IndexOutOfRangeError
from shrew_core.layout import Layout

from . import _access as A
from . import _runtime, memory
from ._intrinsics import math_for
from .layouts import canonical, coalesce, contiguous_strides, storage_dtype


def _block() -> int:
    return _runtime.threads()


def _launch_rows(nrows: int) -> tuple[int, int]:
    block = _block()
    return max(1, min(nrows, _runtime.grid(nrows * block, block)[0])), block


def _rows(layout, dim, *extra_strides):
    """(rshape, [row strides...], L, [elem strides...], nrows) for ``layout`` (and other
    stride lists of the same shape) with ``dim`` as the row."""
    shape = list(layout.shape) or [1]
    lists = [list(layout.strides) or [1]] + [list(s) or [1] for s in extra_strides]
    dim = dim if layout.shape else 0
    L = shape.pop(dim)
    es = [s.pop(dim) for s in lists]
    rs, rst = canonical(shape, *lists)
    return rs, rst, L, es, math.prod(shape)


# ----------------------------------------------------------------------------- softmax
@_runtime.kernel_factory
def softmax_kernel(acc: str, store_kind: int, block: int):
    T = A.ACC_TYPES[acc]
    M = math_for(A.np_acc(acc))
    exp, log = M.exp, M.log
    load, store = A.loader(acc), A.storer(store_kind, acc)
    NEG_INF, Z, ONE = T(-np.inf), T(0.0), T(1.0)

    @cuda.jit(cache=True)
    def softmax(x, xo, mk, mo, rs, rx, rm, rout, L, ex, em, eo, nrows, out, has_mask, scale,
                log_out, kind):  # fmt: skip
        bm = cuda.shared.array(block, T)
        bs = cuda.shared.array(block, T)
        tid = cuda.threadIdx.x
        for row in range(cuda.blockIdx.x, nrows, cuda.gridDim.x):
            rem = row
            px, pm, po = xo, mo, 0
            for d in range(len(rs) - 1, -1, -1):
                q = rem // rs[d]
                k = rem - q * rs[d]
                rem = q
                px += k * rx[d]
                pm += k * rm[d]
                po += k * rout[d]
            m = NEG_INF
            s = Z
            for j in range(tid, L, block):
                v = load(x, px + j * ex, kind) * scale
                if has_mask:
                    v += load(mk, pm + j * em, kind)
                if v > m:
                    s = s * exp(m - v) + ONE
                    m = v
                elif v == v:
                    if v != NEG_INF:
                        s += exp(v - m)
                else:
                    s += v
            bm[tid] = m
            bs[tid] = s
            cuda.syncthreads()
            h = block // 2
            while h > 0:
                if tid < h:
                    m1, m2 = bm[tid], bm[tid + h]
                    mx = m1 if (m1 > m2 or m1 != m1) else m2
                    e1 = ONE if m1 == mx else exp(m1 - mx)
                    e2 = ONE if m2 == mx else exp(m2 - mx)
                    bs[tid] = bs[tid] * e1 + bs[tid + h] * e2
                    bm[tid] = mx
                cuda.syncthreads()
                h //= 2
            m = bm[0]
            s = bs[0]
            ls = log(s)
            for j in range(tid, L, block):
                v = load(x, px + j * ex, kind) * scale
                if has_mask:
                    v += load(mk, pm + j * em, kind)
                if log_out:
                    store(out, po + j * eo, v - m - ls)
                else:
                    store(out, po + j * eo, exp(v - m) / s)
            cuda.syncthreads()

    return softmax


def softmax(x, layout, mask, mask_layout, dtype, dim, scale, log):
    n = layout.numel
    out = memory.empty(n, storage_dtype(dtype))
    if n == 0:
        return out
    ost = contiguous_strides(layout.shape)
    mst = mask_layout.strides if mask is not None else (0,) * len(layout.shape)
    rs, (rx, rm, ro), L, (ex, em, eo), nrows = _rows(layout, dim, mst, ost)
    acc = A.acc_name(dtype)
    blocks, block = _launch_rows(nrows)
    mk = mask if mask is not None else x
    softmax_kernel(acc, A.store_kind(dtype, acc), block)[blocks, block](
        x, layout.offset, mk, mask_layout.offset if mask is not None else 0, rs, rx, rm, ro, L,
        ex, em, eo, nrows, out, mask is not None, A.np_acc(acc)(scale), bool(log),
        A.load_kind(dtype))  # fmt: skip
    return out


@_runtime.kernel_factory
def softmax_bwd_kernel(acc: str, store_kind: int, block: int):
    T = A.ACC_TYPES[acc]
    exp = math_for(A.np_acc(acc)).exp
    load, store = A.loader(acc), A.storer(store_kind, acc)
    Z = T(0.0)

    @cuda.jit(cache=True)
    def bwd(y, g, rs, rst, L, es, nrows, out, log, scale, kind):
        buf = cuda.shared.array(block, T)
        tid = cuda.threadIdx.x
        for row in range(cuda.blockIdx.x, nrows, cuda.gridDim.x):
            rem = row
            p = 0
            for d in range(len(rs) - 1, -1, -1):
                q = rem // rs[d]
                p += (rem - q * rs[d]) * rst[d]
                rem = q
            s = Z
            for j in range(tid, L, block):
                gv = load(g, p + j * es, kind)
                s += gv if log else gv * load(y, p + j * es, kind)
            buf[tid] = s
            cuda.syncthreads()
            h = block // 2
            while h > 0:
                if tid < h:
                    buf[tid] += buf[tid + h]
                cuda.syncthreads()
                h //= 2
            s = buf[0]
            for j in range(tid, L, block):
                yv = load(y, p + j * es, kind)
                gv = load(g, p + j * es, kind)
                if log:
                    store(out, p + j * es, gv - exp(yv) * s)
                else:
                    store(out, p + j * es, scale * yv * (gv - s))
            cuda.syncthreads()

    return bwd


def softmax_backward(y, grad, shape, dtype, dim, scale, log):
    lay = Layout.contiguous(shape)
    out = memory.empty(lay.numel, storage_dtype(dtype))
    if lay.numel == 0:
        return out
    rs, (rst,), L, (es,), nrows = _rows(lay, dim)
    acc = A.acc_name(dtype)
    blocks, block = _launch_rows(nrows)
    softmax_bwd_kernel(acc, A.store_kind(dtype, acc), block)[blocks, block](
        y, grad, rs, rst, L, es, nrows, out, bool(log), A.np_acc(acc)(scale), A.load_kind(dtype))
    return out


# ----------------------------------------------------------------------------- norms
def _stat_dtype(dtype):
    return f32 if dtype.itemsize < 4 else dtype


@_runtime.kernel_factory
def norm_kernel(acc: str, store_kind: int, block: int):
    T = A.ACC_TYPES[acc]
    rsqrt = math_for(A.np_acc(acc)).rsqrt
    load, store = A.loader(acc), A.storer(store_kind, acc)
    Z = T(0.0)

    @cuda.jit(cache=True)
    def norm(x, xo, rs, rst, L, es, nrows, w, b, has_w, has_b, eps, rms, out, mean, rstd,
             kind):  # fmt: skip
        s1 = cuda.shared.array(block, T)
        s2 = cuda.shared.array(block, T)
        tid = cuda.threadIdx.x
        for row in range(cuda.blockIdx.x, nrows, cuda.gridDim.x):
            rem = row
            p = xo
            for d in range(len(rs) - 1, -1, -1):
                q = rem // rs[d]
                p += (rem - q * rs[d]) * rst[d]
                rem = q
            shift = Z if rms else load(x, p, kind)
            a1 = Z
            a2 = Z
            for j in range(tid, L, block):
                v = load(x, p + j * es, kind) - shift
                a1 += v
                a2 += v * v
            s1[tid] = a1
            s2[tid] = a2
            cuda.syncthreads()
            h = block // 2
            while h > 0:
                if tid < h:
                    s1[tid] += s1[tid + h]
                    s2[tid] += s2[tid + h]
                cuda.syncthreads()
                h //= 2
            n = T(L)
            if rms:
                mu = Z
                var = s2[0] / n
            else:
                d1 = s1[0] / n
                mu = shift + d1
                var = s2[0] / n - d1 * d1
                if var < Z:
                    var = Z
            r = rsqrt(var + eps)
            if tid == 0:
                mean[row] = mu
                rstd[row] = r
            for j in range(tid, L, block):
                v = (load(x, p + j * es, kind) - mu) * r
                if has_w:
                    v = v * load(w, j, kind)
                if has_b:
                    v = v + load(b, j, kind)
                store(out, row * L + j, v)
            cuda.syncthreads()

    return norm


def _trailing_rows(backend, x, layout, normalized_ndim, dtype):
    """(x, Layout) whose trailing ``normalized_ndim`` dims form one strided run (a copy
    to contiguous only when they do not)."""
    nd = len(layout.shape)
    tail, (tst,) = coalesce(layout.shape[nd - normalized_ndim :],
                            layout.strides[nd - normalized_ndim :])  # fmt: skip
    if len(tail) > 1:
        return backend.copy(x, layout, dtype), Layout.contiguous(layout.shape)
    return x, layout


def layer_norm(backend, x, layout, weight, bias, dtype, normalized_ndim, eps, rms):
    shape = layout.shape
    nd = len(shape)
    L = math.prod(shape[nd - normalized_ndim :])
    lead = shape[: nd - normalized_ndim]
    nrows = math.prod(lead)
    sdt = _stat_dtype(dtype)
    out = memory.empty(nrows * L, storage_dtype(dtype))
    mean = memory.empty(nrows, storage_dtype(sdt))
    rstd = memory.empty(nrows, storage_dtype(sdt))
    if nrows * L == 0:
        return out, mean, rstd
    x, layout = _trailing_rows(backend, x, layout, normalized_ndim, dtype)
    tail_st = [s for d, s in zip(shape[nd - normalized_ndim :],
                                 layout.strides[nd - normalized_ndim :]) if d != 1]  # fmt: skip
    es = tail_st[-1] if tail_st else 1
    rs, (rst,) = canonical(lead, layout.strides[: nd - normalized_ndim])
    acc = A.acc_name(dtype)
    blocks, block = _launch_rows(nrows)
    T = A.np_acc(acc)
    norm_kernel(acc, A.store_kind(dtype, acc), block)[blocks, block](
        x, layout.offset, rs, rst, L, es, nrows, weight if weight is not None else x,
        bias if bias is not None else x, weight is not None, bias is not None, T(eps),
        bool(rms), out, mean, rstd, A.load_kind(dtype))  # fmt: skip
    return out, mean, rstd


@_runtime.kernel_factory
def norm_bwd_kernel(acc: str, store_kind: int, block: int):
    T = A.ACC_TYPES[acc]
    load, store = A.loader(acc), A.storer(store_kind, acc)
    Z = T(0.0)

    @cuda.jit(cache=True)
    def bwd(g, x, L, nrows, w, has_w, mean, rstd, rms, out, kind):
        s1 = cuda.shared.array(block, T)
        s2 = cuda.shared.array(block, T)
        tid = cuda.threadIdx.x
        for row in range(cuda.blockIdx.x, nrows, cuda.gridDim.x):
            mu = Z if rms else T(mean[row])
            r = T(rstd[row])
            a1 = Z
            a2 = Z
            p = row * L
            for j in range(tid, L, block):
                gv = load(g, p + j, kind)
                if has_w:
                    gv = gv * load(w, j, kind)
                xh = (load(x, p + j, kind) - mu) * r
                a1 += gv
                a2 += gv * xh
            s1[tid] = a1
            s2[tid] = a2
            cuda.syncthreads()
            h = block // 2
            while h > 0:
                if tid < h:
                    s1[tid] += s1[tid + h]
                    s2[tid] += s2[tid + h]
                cuda.syncthreads()
                h //= 2
            n = T(L)
            mg = Z if rms else s1[0] / n
            mgx = s2[0] / n
            for j in range(tid, L, block):
                gv = load(g, p + j, kind)
                if has_w:
                    gv = gv * load(w, j, kind)
                xh = (load(x, p + j, kind) - mu) * r
                store(out, p + j, r * (gv - mg - xh * mgx))
            cuda.syncthreads()

    return bwd


@_runtime.kernel_factory
def norm_param_grad_kernel(acc: str, store_kind: int):
    T = A.ACC_TYPES[acc]
    load, store = A.loader(acc), A.storer(store_kind, acc)
    Z = T(0.0)

    @cuda.jit(cache=True)
    def pgrad(g, x, L, nrows, mean, rstd, rms, has_b, gw, gb, kind):
        for j in range(cuda.grid(1), L, cuda.gridsize(1)):
            aw = Z
            ab = Z
            for row in range(nrows):
                gv = load(g, row * L + j, kind)
                mu = Z if rms else T(mean[row])
                aw += gv * (load(x, row * L + j, kind) - mu) * T(rstd[row])
                ab += gv
            store(gw, j, aw)
            if has_b:
                store(gb, j, ab)

    return pgrad


def layer_norm_backward(grad, x, shape, weight, mean, rstd, dtype, normalized_ndim, rms):
    nd = len(shape)
    L = math.prod(shape[nd - normalized_ndim :])
    nrows = math.prod(shape[: nd - normalized_ndim])
    out = memory.empty(nrows * L, storage_dtype(dtype))
    gw = gb = None
    if weight is not None:
        gw = memory.empty(L, storage_dtype(dtype))
        gb = None if rms else memory.empty(L, storage_dtype(dtype))
    if nrows * L == 0:
        if weight is not None:
            from .elementwise import fill

            gw = fill((L,), 0, dtype)
            gb = None if rms else fill((L,), 0, dtype)
        return out, gw, gb
    acc = A.acc_name(dtype)
    sk, kind = A.store_kind(dtype, acc), A.load_kind(dtype)
    mean_arr = mean if mean is not None else rstd
    blocks, block = _launch_rows(nrows)
    norm_bwd_kernel(acc, sk, block)[blocks, block](
        grad, x, L, nrows, weight if weight is not None else x, weight is not None, mean_arr,
        rstd, bool(rms), out, kind)  # fmt: skip
    if weight is not None:
        b2, t2 = _runtime.grid(L)
        norm_param_grad_kernel(acc, sk)[b2, t2](grad, x, L, nrows, mean_arr, rstd, bool(rms),
                                                not rms, gw, gb if gb is not None else gw,
                                                kind)  # fmt: skip
    return out, gw, gb


# ----------------------------------------------------------------------------- cross entropy
@_runtime.kernel_factory
def ce_kernel(acc: str, store_kind: int, block: int):
    T = A.ACC_TYPES[acc]
    M = math_for(A.np_acc(acc))
    exp, log = M.exp, M.log
    load, store = A.loader(acc), A.storer(store_kind, acc)
    NEG_INF, Z, ONE = T(-np.inf), T(0.0), T(1.0)

    @cuda.jit(cache=True)
    def ce(x, xo, s0, s1, N, C, tgt, ignore, ls, loss, lse_out, bad, kind):
        bm = cuda.shared.array(block, T)
        bs = cuda.shared.array(block, T)
        bt = cuda.shared.array(block, T)
        tid = cuda.threadIdx.x
        for row in range(cuda.blockIdx.x, N, cuda.gridDim.x):
            p = xo + row * s0
            m = NEG_INF
            s = Z
            tot = Z
            for j in range(tid, C, block):
                v = load(x, p + j * s1, kind)
                tot += v
                if v > m:
                    s = s * exp(m - v) + ONE
                    m = v
                elif v == v:
                    if v != NEG_INF:
                        s += exp(v - m)
                else:
                    s += v
            bm[tid] = m
            bs[tid] = s
            bt[tid] = tot
            cuda.syncthreads()
            h = block // 2
            while h > 0:
                if tid < h:
                    m1, m2 = bm[tid], bm[tid + h]
                    mx = m1 if (m1 > m2 or m1 != m1) else m2
                    e1 = ONE if m1 == mx else exp(m1 - mx)
                    e2 = ONE if m2 == mx else exp(m2 - mx)
                    bs[tid] = bs[tid] * e1 + bs[tid + h] * e2
                    bm[tid] = mx
                    bt[tid] += bt[tid + h]
                cuda.syncthreads()
                h //= 2
            if tid == 0:
                lse = bm[0] + log(bs[0])
                lse_out[row] = lse
                t = tgt[row]
                if t == ignore:
                    store(loss, row, Z)
                elif t < 0 or t >= C:
                    bad[0] = 1
                    bad[1] = t
                    store(loss, row, Z)
                else:
                    nll = lse - load(x, p + t * s1, kind)
                    if ls > Z:
                        nll = (ONE - ls) * nll + ls * (lse - bt[0] / T(C))
                    store(loss, row, nll)
            cuda.syncthreads()

    return ce


def cross_entropy(backend, logits, layout, target, dtype, ignore_index, label_smoothing):
    N, C = layout.shape
    acc = A.acc_name(dtype)
    acc_dt = {"f32": f32, "f64": f64}[acc]
    loss = memory.empty(N, storage_dtype(dtype))
    lse = memory.empty(N, storage_dtype(acc_dt))
    if N == 0:
        return loss, lse
    bad = _runtime.cuda().to_device(np.zeros(2, np.int64))
    blocks, block = _launch_rows(N)
    ce_kernel(acc, A.store_kind(dtype, acc), block)[blocks, block](
        logits, layout.offset, layout.strides[0], layout.strides[1], N, C, target,
        int(ignore_index), A.np_acc(acc)(label_smoothing), loss, lse, bad, A.load_kind(dtype))
    flag = bad.copy_to_host()
    if flag[0]:
        raise IndexOutOfRangeError(
            f"cross_entropy: target {int(flag[1])} is out of range for {C} classes")
    return loss, lse


@_runtime.kernel_factory
def ce_bwd_kernel(acc: str, store_kind: int):
    T = A.ACC_TYPES[acc]
    exp = math_for(A.np_acc(acc)).exp
    load, store = A.loader(acc), A.storer(store_kind, acc)
    Z, ONE = T(0.0), T(1.0)

    @cuda.jit(cache=True)
    def ceb(g, x, N, C, tgt, lse, ignore, ls, out, kind):
        for i in range(cuda.grid(1), N * C, cuda.gridsize(1)):
            row = i // C
            c = i - row * C
            t = tgt[row]
            if t == ignore:
                store(out, i, Z)
                continue
            p = exp(load(x, i, kind) - T(lse[row]))
            want = ls / T(C)
            if c == t:
                want += ONE - ls
            store(out, i, (p - want) * load(g, row, kind))

    return ceb


def cross_entropy_backward(grad_rows, logits, shape, target, lse, dtype, ignore_index,
                           label_smoothing):  # fmt: skip
    N, C = shape
    out = memory.empty(N * C, storage_dtype(dtype))
    if N * C == 0:
        return out
    acc = A.acc_name(dtype)
    blocks, threads = _runtime.grid(N * C)
    ce_bwd_kernel(acc, A.store_kind(dtype, acc))[blocks, threads](
        grad_rows, logits, N, C, target, lse, int(ignore_index),
        A.np_acc(acc)(label_smoothing), out, A.load_kind(dtype))  # fmt: skip
    return out
