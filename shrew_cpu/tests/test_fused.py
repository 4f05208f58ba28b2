"""Fused kernels against the default compositions of ``shrew_core.fused_defaults`` (run on
this backend's primitives) and against torch: softmax / log_softmax (+ backward),
layer_norm / rms_norm (+ backward), cross_entropy (+ backward), unary_backward, the
fused elementwise tape, and the optimizer updates."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from shrew_core import dtypes as D
from shrew_core import fused_defaults as FD
from shrew_core.errors import IndexOutOfRangeError
from shrew_core.layout import Layout
from shrew_cpu import _config
from shrew_cpu.testing import check, storage_of

DTYPES = [D.f32, D.f64, D.bf16, D.f16]


def _c(shape):
    return Layout.contiguous(tuple(shape))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("shape,dim", [((7, 33), 1), ((7, 33), 0), ((3, 4, 5), 1), ((1,), 0),
                                       ((130, 1023), 1)])  # fmt: skip
def test_softmax_fwd_bwd(cpu, path, dtype, log, shape, dim):
    rng = np.random.default_rng(40)
    x = (rng.standard_normal(shape) * 3).astype(dtype.np_dtype)
    lay = _c(shape)
    fn = cpu.log_softmax if log else cpu.softmax
    y = fn(x.reshape(-1), lay, dtype, dim)
    ref = (FD.log_softmax if log else FD.softmax)(cpu, x.reshape(-1), lay, dtype, dim)
    check(y, ref, dtype)
    t = torch.from_numpy(x.astype(np.float64)).requires_grad_()
    ty = (F.log_softmax if log else F.softmax)(t, dim)
    check(y, ty.detach().numpy().astype(dtype.np_dtype), dtype)
    g = rng.standard_normal(shape).astype(dtype.np_dtype)
    ty.backward(torch.from_numpy(g.astype(np.float64)))
    gx = cpu.softmax_backward(y, g.reshape(-1), shape, dtype, dim, log)
    check(gx, FD.softmax_backward(cpu, y, g.reshape(-1), shape, dtype, dim, log), dtype)
    check(gx, t.grad.numpy().astype(dtype.np_dtype), dtype, atol=0.05 if dtype is D.bf16 else None)


def test_softmax_strided_input(cpu):
    vals = np.random.default_rng(41).standard_normal((6, 9))
    for kind in ("transposed", "narrow", "bcast_row", "offset"):
        s, lay, logical = storage_of(vals, kind)
        ref = F.softmax(torch.from_numpy(np.ascontiguousarray(logical)), 1).numpy()
        check(cpu.softmax(s, lay, D.f64, 1), ref, D.f64)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("shape,nd", [((6, 17), 1), ((2, 3, 4, 5), 2), ((64, 1025), 1)])
def test_layer_norm(cpu, path, dtype, affine, shape, nd):
    rng = np.random.default_rng(42)
    x = (rng.standard_normal(shape) * 2 + 1).astype(dtype.np_dtype)
    wshape = shape[-nd:]
    w = rng.standard_normal(wshape).astype(dtype.np_dtype).reshape(-1) if affine else None
    b = rng.standard_normal(wshape).astype(dtype.np_dtype).reshape(-1) if affine else None
    lay = _c(shape)
    y, mean, rstd = cpu.layer_norm(x.reshape(-1), lay, w, b, dtype, nd, 1e-5)
    ry, rmean, rrstd = FD.layer_norm(cpu, x.reshape(-1), lay, w, b, dtype, nd, 1e-5)
    check(y, ry, dtype)
    stat = D.f32 if dtype.itemsize == 2 else dtype
    check(mean, rmean, stat, rtol=1e-4 if stat is D.f32 else None, atol=1e-5)
    check(rstd, rrstd, stat, rtol=1e-4 if stat is D.f32 else None)
    g = rng.standard_normal(shape).astype(dtype.np_dtype).reshape(-1)
    got = cpu.layer_norm_backward(g, x.reshape(-1), shape, w, mean, rstd, dtype, nd)
    ref = FD.layer_norm_backward(cpu, g, x.reshape(-1), shape, w, rmean, rrstd, dtype, nd)
    for a, r in zip(got, ref):
        assert (a is None) == (r is None)
        if a is not None:
            check(a, r, dtype, rtol=3e-4 if dtype is D.f32 else None, atol=1e-4
                  if dtype is D.f32 else None)  # fmt: skip
    # torch as a second oracle (f64 only: exact comparison of all three gradients)
    if dtype is D.f64 and affine:
        tx = torch.from_numpy(x).requires_grad_()
        tw = torch.from_numpy(w.reshape(wshape)).requires_grad_()
        tb = torch.from_numpy(b.reshape(wshape)).requires_grad_()
        F.layer_norm(tx, wshape, tw, tb, 1e-5).backward(torch.from_numpy(g.reshape(shape)))
        for a, t in zip(got, (tx, tw, tb)):
            check(a, t.grad.numpy(), D.f64, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("shape,nd", [((6, 17), 1), ((2, 3, 4, 5), 2), ((64, 1025), 1)])
def test_rms_norm(cpu, path, dtype, affine, shape, nd):
    rng = np.random.default_rng(43)
    x = rng.standard_normal(shape).astype(dtype.np_dtype)
    w = rng.standard_normal(shape[-nd:]).astype(dtype.np_dtype).reshape(-1) if affine else None
    lay = _c(shape)
    y, rstd = cpu.rms_norm(x.reshape(-1), lay, w, dtype, nd, 1e-6)
    ry, rrstd = FD.rms_norm(cpu, x.reshape(-1), lay, w, dtype, nd, 1e-6)
    check(y, ry, dtype)
    stat = D.f32 if dtype.itemsize == 2 else dtype
    check(rstd, rrstd, stat, rtol=1e-4 if stat is D.f32 else None)
    g = rng.standard_normal(shape).astype(dtype.np_dtype).reshape(-1)
    got = cpu.rms_norm_backward(g, x.reshape(-1), shape, w, rstd, dtype, nd)
    ref = FD.rms_norm_backward(cpu, g, x.reshape(-1), shape, w, rrstd, dtype, nd)
    for a, r in zip(got, ref):
        assert (a is None) == (r is None)
        if a is not None:
            check(a, r, dtype, rtol=3e-4 if dtype is D.f32 else None, atol=1e-4
                  if dtype is D.f32 else None)  # fmt: skip


@pytest.fixture(params=["numpy", "serial", "parallel"])
def ce_path(request, monkeypatch):
    """Cross-entropy's three host paths: NumPy (below COMPILE_FREE_BELOW), the serial row
    kernel, the row kernel on the worker threads."""
    if request.param != "numpy":
        monkeypatch.setattr(_config, "COMPILE_FREE_BELOW", 0)
    if request.param == "parallel":
        monkeypatch.setattr(_config, "REDUCE_THRESHOLD", 1)
    else:
        monkeypatch.setattr(_config, "REDUCE_THRESHOLD", 1 << 40)
    if request.param == "numpy":
        monkeypatch.setattr(_config, "COMPILE_FREE_BELOW", 1 << 40)
    return request.param


@pytest.mark.parametrize("dtype", [D.f32, D.f64, D.bf16])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("n,c", [(9, 7), (300, 1000)])
def test_cross_entropy(cpu, ce_path, dtype, smoothing, n, c):
    rng = np.random.default_rng(44)
    x = (rng.standard_normal((n, c)) * 2).astype(dtype.np_dtype)
    tgt = rng.integers(0, c, size=n).astype(np.int64)
    tgt[::4] = -100
    lay = _c((n, c))
    loss, lse = cpu.cross_entropy(x.reshape(-1), lay, tgt, dtype, -100, smoothing)
    rl, rlse = FD.cross_entropy(cpu, x.reshape(-1), lay, tgt, dtype, -100, smoothing)
    check(loss, rl, dtype)
    tx = torch.from_numpy(x.astype(np.float64)).requires_grad_()
    tl = F.cross_entropy(tx, torch.from_numpy(tgt), reduction="none", ignore_index=-100,
                         label_smoothing=smoothing)  # fmt: skip
    check(loss, tl.detach().numpy().astype(dtype.np_dtype), dtype)
    g = rng.standard_normal(n).astype(dtype.np_dtype)
    tl.backward(torch.from_numpy(g.astype(np.float64)))
    gx = cpu.cross_entropy_backward(g, x.reshape(-1), (n, c), tgt, lse, dtype, -100, smoothing)
    ref = FD.cross_entropy_backward(cpu, g, x.reshape(-1), (n, c), tgt, rlse, dtype, -100,
                                    smoothing)  # fmt: skip
    check(gx, ref, dtype)
    check(gx, tx.grad.numpy().astype(dtype.np_dtype), dtype)


def test_cross_entropy_bad_target_raises(cpu, ce_path):
    x = np.zeros(12, np.float32)
    with pytest.raises(IndexOutOfRangeError, match="target 4 is out of range for 3 classes"):
        cpu.cross_entropy(x, _c((4, 3)), np.array([0, 4, 1, 2], np.int64), D.f32, -100, 0.0)
    with pytest.raises(IndexOutOfRangeError, match="target -2 is out of range"):
        cpu.cross_entropy(x, _c((4, 3)), np.array([0, 1, -100, -2], np.int64), D.f32, -100, 0.0)


def test_cross_entropy_nonfinite_rows_match_torch(cpu, ce_path):
    """A NaN logit makes its row NaN, an all -inf row NaN, a +inf logit NaN (as torch)."""
    x = np.array([[1.0, np.nan, 0.0], [-np.inf, -np.inf, -np.inf], [np.inf, 0.0, 1.0],
                  [0.5, -1.0, 2.0]], np.float32)  # fmt: skip
    tgt = np.array([0, 1, 2, 2], np.int64)
    loss, _ = cpu.cross_entropy(x.reshape(-1), _c((4, 3)), tgt, D.f32, -100, 0.0)
    ref = F.cross_entropy(torch.from_numpy(x), torch.from_numpy(tgt), reduction="none")
    np.testing.assert_allclose(loss, ref.numpy(), rtol=1e-6, equal_nan=True)


@pytest.mark.parametrize("op", ["gelu", "gelu_tanh", "silu", "sigmoid", "tanh"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_unary_backward(cpu, path, op, dtype):
    rng = np.random.default_rng(45)
    x = (rng.standard_normal(1023) * 3).astype(dtype.np_dtype)
    g = rng.standard_normal(1023).astype(dtype.np_dtype)
    got = cpu.unary_backward(op, x, g, (1023,), dtype)
    check(got, FD.unary_backward(cpu, op, x, g, (1023,), dtype), dtype)


@pytest.mark.parametrize("dtype", [D.f32, D.f64, D.bf16])
def test_fused_elementwise(cpu, path, dtype):
    rng = np.random.default_rng(46)
    shape = (37, 29)
    a = rng.standard_normal(shape).astype(dtype.np_dtype)
    b = rng.standard_normal((1, 29)).astype(dtype.np_dtype)  # broadcast row
    c = np.array([0.5], dtype.np_dtype)  # a scalar input
    inputs = [(a.reshape(-1), _c(shape), dtype), (b.reshape(-1), Layout(shape, (0, 1), 0), dtype),
              (c, Layout(shape, (0, 0), 0), dtype)]  # fmt: skip
    # y = gelu(a * b + c) - exp(-|a|) * 2
    prog = (("mul", 0, 1), ("add", 3, 2), ("gelu", 4), ("abs", 0), ("neg", 6), ("exp", 7),
            ("const", 2.0), ("mul", 8, 9), ("sub", 5, 10))  # fmt: skip
    got = cpu.fused_elementwise(prog, inputs, shape, dtype)
    ref = FD.fused_elementwise(cpu, prog, inputs, shape, dtype)
    check(got, ref, dtype, rtol=1e-4 if dtype is D.f32 else None,
          atol=1e-5 if dtype is D.f32 else None)  # fmt: skip


def _opt_case(rng, n, dtype):
    p = rng.standard_normal(n).astype(dtype.np_dtype)
    g = rng.standard_normal(n).astype(dtype.np_dtype)
    s1 = (rng.standard_normal(n) * 0.1).astype(dtype.np_dtype)
    s2 = np.abs(rng.standard_normal(n) * 0.1).astype(dtype.np_dtype)
    s3 = np.abs(rng.standard_normal(n) * 0.1).astype(dtype.np_dtype)
    return p, g, s1, s2, s3


def _both(fused, default, arrays):
    """Run the fused kernel on copies, and the default composition in f64 (the oracle:
    an f32 composition rounds every intermediate, the fused kernel only once)."""
    mine = [a.copy() for a in arrays]
    ref = [a.astype(np.float64) for a in arrays]
    fused(mine)
    default(ref)
    return mine, [r.astype(a.dtype) for r, a in zip(ref, arrays)]


@pytest.mark.parametrize("dtype", [D.f32, D.f64, D.bf16])
@pytest.mark.parametrize("n", [7, 300001])
def test_optimizer_updates_match_defaults(cpu, dtype, n):
    rng = np.random.default_rng(47)
    arrays = _opt_case(rng, n, dtype)
    kw_adam = dict(lr=1e-2, beta1=0.9, beta2=0.99, eps=1e-8, weight_decay=0.1, step=3,
                   maximize=False)  # fmt: skip
    cases = []
    for decoupled, ams, mx, wd in ((False, False, False, 0.1), (False, True, True, 0.1),
                                   (True, False, True, 0.1), (True, True, False, 0.1),
                                   (False, False, True, 0.0), (False, True, False, 0.0)):
        kw_a = dict(kw_adam, maximize=mx, weight_decay=wd)
        cases.append((
            lambda a, d=decoupled, m=ams, kw=kw_a: cpu.adam_update(n, a[0], a[1], a[2], a[3],
                a[4] if m else None, dtype, decoupled=d, **kw),
            lambda a, d=decoupled, m=ams, kw=kw_a: FD.adam_update(cpu, n, a[0], a[1], a[2], a[3],
                a[4] if m else None, D.f64, decoupled=d, **kw)))  # fmt: skip
    for step, dec, mx in ((2, False, False), (10, False, True), (10, True, False), (3, True, True)):
        kw = dict(lr=1e-2, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01, decoupled=dec,
                  step=step, maximize=mx)  # fmt: skip
        cases.append((lambda a, kw=kw: cpu.radam_update(n, *a[:4], dtype, **kw),
                      lambda a, kw=kw: FD.radam_update(cpu, n, *a[:4], D.f64, **kw)))
    for centered, mom, wd, mx in ((False, 0.0, 0.01, False), (True, 0.9, 0.01, True),
                                  (False, 0.9, 0.0, True), (True, 0.0, 0.0, False)):
        kw = dict(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=wd, momentum=mom,
                  centered=centered, maximize=mx)  # fmt: skip
        cases.append((
            lambda a, kw=kw: cpu.rmsprop_update(n, a[0], a[1], a[3], a[2] if kw["momentum"]
                else None, a[4] if kw["centered"] else None, dtype, **kw),
            lambda a, kw=kw: FD.rmsprop_update(cpu, n, a[0], a[1], a[3], a[2] if kw["momentum"]
                else None, a[4] if kw["centered"] else None, D.f64, **kw)))  # fmt: skip
    for nesterov, first, mom, wd, mx in ((False, True, 0.9, 0.01, False),
                                         (True, False, 0.9, 0.01, True),
                                         (True, True, 0.9, 0.0, False),
                                         (False, False, 0.9, 0.0, True),
                                         (False, False, 0.0, 0.01, True),
                                         (False, False, 0.0, 0.0, False)):
        kw = dict(lr=0.1, momentum=mom, dampening=0.1, nesterov=nesterov, weight_decay=wd,
                  maximize=mx, first_step=first)  # fmt: skip
        cases.append((lambda a, kw=kw: cpu.sgd_update(n, a[0], a[1], a[2], dtype, **kw),
                      lambda a, kw=kw: FD.sgd_update(cpu, n, a[0], a[1], a[2], D.f64, **kw)))
    for fused, default in cases:
        mine, ref = _both(fused, default, arrays)
        for a, r in zip(mine, ref):
            check(a, r, dtype, rtol=1e-5 if dtype is D.f32 else None,
                  atol=1e-6 if dtype is D.f32 else None)  # fmt: skip


def test_adam_matches_torch(cpu):
    rng = np.random.default_rng(48)
    p, g, *_ = _opt_case(rng, 50, D.f64)
    tp = torch.from_numpy(p.copy()).requires_grad_()
    opt = torch.optim.AdamW([tp], lr=1e-2, betas=(0.9, 0.99), weight_decay=0.1, amsgrad=True)
    m, v, vm = np.zeros(50), np.zeros(50), np.zeros(50)
    for step in range(1, 4):
        tp.grad = torch.from_numpy(g * step)
        opt.step()
        cpu.adam_update(50, p, g * step, m, v, vm, D.f64, lr=1e-2, beta1=0.9, beta2=0.99,
                        eps=1e-8, weight_decay=0.1, decoupled=True, step=step, maximize=False)
    check(p, tp.detach().numpy(), D.f64, rtol=1e-10)


def _update_calls(cpu, rng):
    """(arrays, update) pairs of mixed rules, dtypes and sizes (a bf16 one: run at once)."""
    adam = dict(lr=1e-2, beta1=0.9, beta2=0.99, eps=1e-8, weight_decay=0.1, decoupled=False,
                step=3, maximize=False)  # fmt: skip
    calls = []
    for n, dtype, rule in ((600_001, D.f32, "adam"), (7, D.f32, "adam"), (1000, D.f64, "sgd"),
                           (300_001, D.f32, "rmsprop"), (65_537, D.f64, "radam"),
                           (40_000, D.bf16, "adam"), (250_000, D.f32, "ams")):  # fmt: skip
        a = list(_opt_case(rng, n, dtype))
        if rule == "adam":
            fn = lambda a, n=n, t=dtype: cpu.adam_update(n, *a[:4], None, t, **adam)  # noqa: E731
        elif rule == "ams":
            fn = lambda a, n=n, t=dtype: cpu.adam_update(n, *a[:5], t, **adam)  # noqa: E731
        elif rule == "sgd":
            fn = lambda a, n=n, t=dtype: cpu.sgd_update(  # noqa: E731
                n, *a[:3], t, lr=0.1, momentum=0.9, dampening=0.0, nesterov=True,
                weight_decay=0.01, maximize=False, first_step=False)
        elif rule == "rmsprop":
            a[4][:] = 0  # the running mean of the gradient: keeps sq - mean**2 positive
            fn = lambda a, n=n, t=dtype: cpu.rmsprop_update(  # noqa: E731
                n, a[0], a[1], a[3], a[2], a[4], t, lr=1e-2, alpha=0.99, eps=1e-8,
                weight_decay=0.0, momentum=0.9, centered=True)
        else:
            fn = lambda a, n=n, t=dtype: cpu.radam_update(  # noqa: E731
                n, *a[:4], t, lr=1e-2, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01,
                decoupled=True, step=10)
        calls.append((a, fn))
    return calls


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_batched_updates_run_once_on_exit_and_equal_immediate(cpu, threads, monkeypatch):
    """Inside ``batched_updates()`` f32/f64 updates wait for the exit and then run as one
    parallel region; the results are bit-identical to running each update at once. Half
    updates (written back through f32 copies) run at once."""
    from shrew_cpu import optim as host
    from shrew_cpu import threads as th

    monkeypatch.setattr(th, "_num_threads", threads)
    rng = np.random.default_rng(49)
    now = _update_calls(cpu, rng)
    later = [([x.copy() for x in a], fn) for a, fn in now]
    for a, fn in now:
        fn(a)
    regions = []
    monkeypatch.setattr(host, "parallel_for", lambda f, c: regions.append(len(c)) or
                        th.parallel_for(f, c))  # fmt: skip
    with cpu.batched_updates():
        before = [[x.copy() for x in a] for a, _ in later]
        for a, fn in later:
            fn(a)
        for (a, _), b in zip(later, before):
            half = a[0].dtype.itemsize == 2
            assert np.array_equal(a[0], b[0]) != half  # queued, except the bf16 one
    assert len(regions) == (1 if threads > 1 else 0)
    for (a, _), (b, _) in zip(later, now):
        for x, y in zip(a, b):
            assert not np.isnan(x.astype(np.float64)).any()
            assert np.array_equal(x.view(np.uint8), y.view(np.uint8))


def test_batched_updates_of_one_storage_run_in_order(cpu):
    """Two updates of the same storage (two parameters viewing it) are not run side by side."""
    rng = np.random.default_rng(50)
    p, g, m, v, _ = _opt_case(rng, 700_000, D.f32)
    kw = dict(lr=1e-2, beta1=0.9, beta2=0.99, eps=1e-8, weight_decay=0.0, decoupled=False,
              maximize=False)  # fmt: skip
    ref = [p.copy(), m.copy(), v.copy()]
    for step in (1, 2):
        cpu.adam_update(p.size, ref[0], g, ref[1], ref[2], None, D.f32, step=step, **kw)
    with cpu.batched_updates():
        for step in (1, 2):
            cpu.adam_update(p.size, p, g, m, v, None, D.f32, step=step, **kw)
    for x, y in zip((p, m, v), ref):
        assert np.array_equal(x, y)


def test_batched_updates_run_when_the_body_raises(cpu):
    rng = np.random.default_rng(51)
    p, g, buf, *_ = _opt_case(rng, 1000, D.f64)
    ref = p - 0.1 * g
    with pytest.raises(RuntimeError, match="boom"), cpu.batched_updates():
        cpu.sgd_update(1000, p, g, None, D.f64, lr=0.1, momentum=0.0, dampening=0.0,
                       nesterov=False, weight_decay=0.0, maximize=False, first_step=True)
        raise RuntimeError("boom")
    np.testing.assert_allclose(p, ref, rtol=1e-14)  # the kernel fuses the multiply-add
