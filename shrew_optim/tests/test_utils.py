"""Clipping against torch.nn.utils; GradAccumulator and EMA against NumPy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import shrew_core as sc
import shrew_optim as so


def _pair(device, dtype, oracle, scale=1.0):
    init, (grads,) = oracle.problem(dtype, 1, seed=3)
    sp = oracle.params(init, device)
    store = oracle.store(sp, [g * scale for g in grads], device)
    tp = [torch.tensor(a, requires_grad=True) for a in init]
    for p, g in zip(tp, grads):
        p.grad = torch.tensor(g * scale)
    return sp, store, tp


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 1e4])  # clipping, and not
def test_clip_grad_norm_matches_torch(norm_type, max_norm, device, dtype, oracle):
    sp, store, tp = _pair(device, dtype, oracle)
    total = so.clip_grad_norm(store, max_norm, norm_type)
    want = torch.nn.utils.clip_grad_norm_(tp, max_norm, norm_type)
    np.testing.assert_allclose(total, want.item(), **oracle.tol[dtype])
    oracle.assert_close([store[p].numpy() for p in sp], [p.grad.numpy() for p in tp], dtype)
    np.testing.assert_allclose(so.grad_norm(store, norm_type=norm_type),
                               min(total, max_norm) if max_norm < total else total,
                               rtol=1e-4)  # fmt: skip


def test_clip_subset_and_value(device, dtype, oracle):
    sp, store, tp = _pair(device, dtype, oracle)
    before = store[sp[2]].numpy().copy()
    total = so.clip_grad_norm(store, 0.1, params=sp[:2])
    want = torch.nn.utils.clip_grad_norm_(tp[:2], 0.1)
    np.testing.assert_allclose(total, want.item(), **oracle.tol[dtype])
    np.testing.assert_array_equal(store[sp[2]].numpy(), before)  # not in params: untouched
    out = so.clip_grad_value(store, 0.05)
    torch.nn.utils.clip_grad_value_(tp, 0.05)
    assert out is store
    oracle.assert_close([store[p].numpy() for p in sp], [p.grad.numpy() for p in tp], dtype)


def test_clip_does_not_write_into_shared_gradient_tensors(device):
    w = sc.ones(3, device=device).requires_grad_()
    v = sc.ones(3, device=device).requires_grad_()
    g = sc.full((3,), 4.0, device=device)
    store = sc.GradStore()
    store[w], store[v] = g, g  # one tensor behind two entries
    assert so.clip_grad_norm(store, 1.0) == pytest.approx(math.sqrt(96))
    np.testing.assert_array_equal(g.numpy(), np.full(3, 4.0, np.float32))
    np.testing.assert_allclose(store[w].numpy(), np.full(3, 4 / math.sqrt(96)), rtol=1e-5)


def test_clip_errors(device):
    store = sc.GradStore()
    w = sc.ones(2, device=device).requires_grad_()
    store[w] = sc.tensor([np.inf, 1.0], device=device)
    with pytest.raises(ValueError, match="non-finite"):
        so.clip_grad_norm(store, 1.0, error_if_nonfinite=True)
    with pytest.raises(ValueError, match="max_norm must be >= 0"):
        so.clip_grad_norm(store, -1.0)
    with pytest.raises(ValueError, match="norm_type must be > 0"):
        so.grad_norm(store, norm_type=0)
    with pytest.raises(TypeError, match="expected a GradStore"):
        so.grad_norm({w: w})
    assert so.grad_norm(sc.GradStore()) == 0.0


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_grad_accumulator(reduction, device, oracle):
    init, grads = oracle.problem("f64", 6)
    sp = oracle.params(init, device)
    acc = so.GradAccumulator(3, reduction=reduction)
    released = []
    for k, gs in enumerate(grads):
        gs = [None if (i == 1 and k == 4) else g for i, g in enumerate(gs)]
        out = acc.step(oracle.store(sp, gs, device))
        assert (out is None) == (k % 3 != 2) and acc.current_step == (k + 1) % 3
        if out is not None:
            released.append(out)
    assert len(released) == 2
    for r, chunk in zip(released, (grads[:3], grads[3:])):
        for i, p in enumerate(sp):
            gs = [c[i] for k, c in enumerate(chunk) if not (r is released[1] and i == 1
                                                            and k == 1)]  # fmt: skip
            want = np.sum(gs, axis=0) / (3 if reduction == "mean" else 1)
            np.testing.assert_allclose(r[p].numpy(), want, rtol=1e-12)


def test_grad_accumulator_half_and_errors(device):
    w = sc.ones(2, dtype="bf16", device=device).requires_grad_()
    acc = so.GradAccumulator(4, reduction="sum")
    for _ in range(3):
        s = sc.GradStore()
        s[w] = sc.full((2,), 1 / 3, dtype="bf16", device=device)
        acc.add(s)
    assert not acc.ready
    out = acc.release()  # early release: what was added so far
    assert out[w].dtype == sc.bf16 and acc.current_step == 0
    np.testing.assert_allclose(out[w].to("f32").numpy(), [1.0, 1.0], rtol=1e-2)
    with pytest.raises(ValueError, match="accum_steps must be a positive integer"):
        so.GradAccumulator(0)
    with pytest.raises(ValueError, match="reduction must be"):
        so.GradAccumulator(2, reduction="max")


@pytest.mark.parametrize("warmup", [False, True])
def test_ema(warmup, device, oracle):
    init, grads = oracle.problem("f64", 8)
    sp = oracle.params(init, device)
    ema = so.EMA(sp, decay=0.9, warmup=warmup)
    opt = so.SGD(sp, lr=0.1)
    shadow = [a.copy() for a in init]
    for n, gs in enumerate(grads, start=1):
        opt.step(oracle.store(sp, gs, device))
        ema.update()
        d = min(0.9, (1 + n) / (10 + n)) if warmup else 0.9
        shadow = [d * s + (1 - d) * p.numpy() for s, p in zip(shadow, sp)]
    for s, want in zip(ema.shadow, shadow):
        np.testing.assert_allclose(s.numpy(), want, rtol=1e-12)
    live = [p.numpy().copy() for p in sp]
    with ema.average_parameters():
        for p, want in zip(sp, shadow):
            np.testing.assert_allclose(p.numpy(), want, rtol=1e-12)
    for p, want in zip(sp, live):
        np.testing.assert_array_equal(p.numpy(), want)
    sd = ema.state_dict()
    other = so.EMA(sp, decay=0.5)
    other.load_state_dict(sd)
    assert other.num_updates == 8 and other.decay == 0.9
    np.testing.assert_array_equal(other.shadow[0].numpy(), ema.shadow[0].numpy())


def test_ema_errors(device):
    w = sc.ones(2, device=device).requires_grad_()
    with pytest.raises(ValueError, match="Invalid decay value: 1.5"):
        so.EMA([w], decay=1.5)
    with pytest.raises(ValueError, match="empty parameter list"):
        so.EMA([])
    ema = so.EMA([w], decay=0.5)
    ema.restore()  # no backup: nothing happens
    np.testing.assert_array_equal(w.numpy(), np.ones(2, np.float32))
    with pytest.raises(sc.ShapeError, match=r"parameter 0 has shape \(3,\)"):
        ema.update([sc.ones(3, device=device)])
    with pytest.raises(ValueError, match=r"shadow 0 has shape \(3,\), expected \(2,\)"):
        ema.load_state_dict({"decay": 0.1, "num_updates": 4, "shadow": [sc.ones(3)]})
    assert ema.decay == 0.5 and ema.num_updates == 0
