"""Every optimizer against torch.optim over 50 steps, f32 and f64, on every backend."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import shrew_core as sc
import shrew_optim as so

# (id, shrew factory, torch factory): the same hyperparameters on both sides.
CASES = [
    ("sgd", lambda p: so.SGD(p, lr=0.1), lambda p: torch.optim.SGD(p, lr=0.1)),
    ("sgd-momentum-dampening-wd",
     lambda p: so.SGD(p, lr=0.05, momentum=0.9, dampening=0.2, weight_decay=0.05),
     lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, dampening=0.2, weight_decay=0.05)),
    ("sgd-nesterov-wd",
     lambda p: so.SGD(p, lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.1),
     lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.1)),
    ("sgd-maximize", lambda p: so.SGD(p, lr=0.05, momentum=0.5, maximize=True),
     lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.5, maximize=True)),
    ("adam", lambda p: so.Adam(p, lr=0.01), lambda p: torch.optim.Adam(p, lr=0.01)),
    ("adam-wd-amsgrad",
     lambda p: so.Adam(p, lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1, amsgrad=True),
     lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1,
                                amsgrad=True)),
    ("adam-maximize", lambda p: so.Adam(p, lr=0.01, maximize=True, weight_decay=0.01),
     lambda p: torch.optim.Adam(p, lr=0.01, maximize=True, weight_decay=0.01)),
    ("adamw", lambda p: so.AdamW(p, lr=0.01), lambda p: torch.optim.AdamW(p, lr=0.01)),
    ("adamw-amsgrad", lambda p: so.AdamW(p, lr=0.02, weight_decay=0.3, amsgrad=True),
     lambda p: torch.optim.AdamW(p, lr=0.02, weight_decay=0.3, amsgrad=True)),
    ("radam", lambda p: so.RAdam(p, lr=0.01), lambda p: torch.optim.RAdam(p, lr=0.01)),
    ("radam-l2", lambda p: so.RAdam(p, lr=0.01, weight_decay=0.1),
     lambda p: torch.optim.RAdam(p, lr=0.01, weight_decay=0.1)),
    ("radam-decoupled-maximize",
     lambda p: so.RAdam(p, lr=0.01, weight_decay=0.1, decoupled_weight_decay=True,
                        maximize=True),
     lambda p: torch.optim.RAdam(p, lr=0.01, weight_decay=0.1, decoupled_weight_decay=True,
                                 maximize=True)),
    ("rmsprop", lambda p: so.RMSprop(p), lambda p: torch.optim.RMSprop(p)),
    ("rmsprop-centered-momentum-wd",
     lambda p: so.RMSprop(p, lr=0.01, alpha=0.9, momentum=0.5, centered=True, weight_decay=0.1),
     lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9, momentum=0.5, centered=True,
                                   weight_decay=0.1)),
    ("rmsprop-maximize", lambda p: so.RMSProp(p, lr=0.01, momentum=0.3, maximize=True),
     lambda p: torch.optim.RMSprop(p, lr=0.01, momentum=0.3, maximize=True)),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_matches_torch(case, device, dtype, oracle):
    _, make_s, make_t = case
    got, want = oracle.run(make_s, make_t, device, dtype)
    oracle.assert_close(got, want, dtype)


def test_param_groups(device, dtype, oracle):
    def groups(p):
        return [{"params": p[:1]}, {"params": p[1:2], "lr": 0.003, "weight_decay": 0.2},
                {"params": p[2:], "betas": (0.5, 0.9), "amsgrad": True}]  # fmt: skip

    got, want = oracle.run(lambda p: so.Adam(groups(p), lr=0.01),
                           lambda p: torch.optim.Adam(groups(p), lr=0.01), device, dtype)
    oracle.assert_close(got, want, dtype)
    def sgd_groups(p):
        return [{"params": p[:2], "momentum": 0.9}, {"params": p[2:]}]

    got, want = oracle.run(lambda p: so.SGD(sgd_groups(p), lr=0.05),
                           lambda p: torch.optim.SGD(sgd_groups(p), lr=0.05), device, dtype)
    oracle.assert_close(got, want, dtype)


@pytest.mark.parametrize("name", ["SGD", "Adam", "RAdam", "RMSprop"])
def test_missing_gradients_skip_and_per_param_steps(name, device, oracle):
    """A parameter without a gradient is left alone and its own step count does not
    advance (torch's per-parameter 'step'), which bias correction depends on."""
    kw = {"SGD": dict(lr=0.1, momentum=0.9), "Adam": dict(lr=0.01),
          "RAdam": dict(lr=0.01), "RMSprop": dict(lr=0.01, momentum=0.2)}[name]  # fmt: skip

    def drop(k, i):  # param 1 misses every third step, param 2 the first ten
        return (i == 1 and k % 3 == 0) or (i == 2 and k < 10)

    got, want = oracle.run(lambda p: getattr(so, name)(p, **kw),
                           lambda p: getattr(torch.optim, name)(p, **kw), device, "f64",
                           drop=drop)  # fmt: skip
    oracle.assert_close(got, want, "f64")


def test_lr_property_and_setter_mid_run(device, oracle):
    init, grads = oracle.problem("f64", 20)
    sp = oracle.params(init, device)
    tp = [torch.tensor(a, requires_grad=True) for a in init]
    sopt, topt = so.Adam(sp, lr=0.01), torch.optim.Adam(tp, lr=0.01)
    for k, gs in enumerate(grads):
        if k == 10:
            sopt.lr = 0.05
            for g in topt.param_groups:
                g["lr"] = 0.05
        sopt.step(oracle.store(sp, gs, device))
        oracle.torch_step(topt, tp, gs)
    assert sopt.lr == 0.05 and all(g["lr"] == 0.05 for g in sopt.param_groups)
    oracle.assert_close([p.numpy() for p in sp], [p.detach().numpy() for p in tp], "f64")


def _layouts(device):
    """A transposed view (non-contiguous) and a narrowed view (storage offset)."""
    base = sc.tensor(np.arange(12.0).reshape(3, 4), dtype="f64", device=device)
    transposed = base.t().requires_grad_()
    rows = sc.tensor(np.arange(12.0).reshape(3, 4), dtype="f64", device=device)
    narrowed = rows.narrow(0, 1, 2).requires_grad_()
    return base, transposed, rows, narrowed


def test_views_are_updated_in_place(device, oracle):
    base, tr, rows, nr = _layouts(device)
    assert not tr.is_contiguous() and nr.layout.offset == 4
    tp = [torch.tensor(tr.numpy(), requires_grad=True), torch.tensor(nr.numpy(),
                                                                      requires_grad=True)]
    sopt = so.SGD([tr, nr], lr=0.1, momentum=0.9)
    topt = torch.optim.SGD(tp, lr=0.1, momentum=0.9)
    rng = np.random.default_rng(1)
    for _ in range(5):
        gs = [rng.standard_normal(tr.shape), rng.standard_normal(nr.shape)]
        sopt.step(oracle.store([tr, nr], gs, device))
        oracle.torch_step(topt, tp, gs)
    oracle.assert_close([tr.numpy(), nr.numpy()], [t.detach().numpy() for t in tp], "f64")
    np.testing.assert_array_equal(base.numpy(), tr.numpy().T)  # written through the view
    np.testing.assert_array_equal(rows.numpy()[0], np.arange(4.0))  # row 0 untouched
    np.testing.assert_array_equal(rows.numpy()[1:], nr.numpy())


def test_step_batches_in_place_updates_and_matches_torch(device, oracle, monkeypatch):
    """A step runs the in-place updates inside one ``batched_updates()`` of their backend
    (views and copies outside it); large, small and view parameters match torch."""
    base, tr, rows, nr = _layouts(device)
    rng = np.random.default_rng(2)
    big = sc.tensor(rng.standard_normal((700, 1000)), device=device).requires_grad_()
    small = sc.tensor(rng.standard_normal(7), device=device).requires_grad_()
    params = [big, tr, small, nr]
    tp = [torch.tensor(p.numpy(), requires_grad=True) for p in params]
    backend = big._backend
    entered = []
    real = backend.batched_updates
    monkeypatch.setattr(backend, "batched_updates", lambda: entered.append(1) or real())
    sopt = so.AdamW(params, lr=0.01, amsgrad=True)
    topt = torch.optim.AdamW(tp, lr=0.01, amsgrad=True)
    for _ in range(3):
        gs = [rng.standard_normal(p.shape) for p in params]
        sopt.step(oracle.store(params, gs, device))
        oracle.torch_step(topt, tp, gs)
    assert len(entered) == 3
    oracle.assert_close([p.numpy() for p in params], [t.detach().numpy() for t in tp], "f64")
    np.testing.assert_array_equal(base.numpy(), tr.numpy().T)


def test_step_runs_a_subclass_that_does_not_batch_outside_the_batch(device, monkeypatch):
    class Plain(so.SGD):
        batches_updates = False

    w = sc.ones(5, dtype="f64", device=device).requires_grad_()
    entered = []
    real = w._backend.batched_updates
    monkeypatch.setattr(w._backend, "batched_updates", lambda: entered.append(1) or real())
    Plain([w], lr=0.5).step(_single(w, sc.ones(5, dtype="f64", device=device)))
    assert entered == []
    np.testing.assert_array_equal(w.numpy(), np.full(5, 0.5))


def test_non_contiguous_gradient(device):
    w = sc.zeros(3, 2, dtype="f64", device=device).requires_grad_()
    g = sc.tensor(np.arange(6.0).reshape(2, 3), dtype="f64", device=device).t()
    so.SGD([w], lr=1.0).step(_single(w, g))
    np.testing.assert_array_equal(w.numpy(), -np.arange(6.0).reshape(2, 3).T)


def _single(p, g):
    s = sc.GradStore()
    s[p] = g
    return s


@pytest.mark.parametrize("half", ["f16", "bf16"])
@pytest.mark.parametrize("name", ["Adam", "SGD", "RMSprop", "RAdam"])
def test_master_weights(name, half, device, oracle):
    """f16/bf16 params with master_weights=True: f32 master + f32 state; the param is the
    master cast down. Compared with torch in f32 on the same (half-rounded) start."""
    kw = {"Adam": dict(lr=0.01, weight_decay=0.1), "SGD": dict(lr=0.05, momentum=0.9),
          "RMSprop": dict(lr=0.01), "RAdam": dict(lr=0.01)}[name]  # fmt: skip
    init, grads = oracle.problem("f32", 20)
    sp = [sc.tensor(a, device=device).to(half).requires_grad_() for a in init]
    start = [p.to("f32").numpy() for p in sp]
    tp = [torch.tensor(a, requires_grad=True) for a in start]
    sopt = getattr(so, name)(sp, master_weights=True, **kw)
    topt = getattr(torch.optim, name)(tp, **kw)
    for gs in grads:
        store = sc.GradStore()
        for p, g in zip(sp, gs):
            store[p] = sc.tensor(g, device=device).to(half)  # gradients arrive in half
        sopt.step(store)
        oracle.torch_step(topt, tp, [sc.tensor(g).to(half).to("f32").numpy() for g in gs])
    st = sopt.state[sp[0]]
    assert st["master"].dtype == sc.f32 and all(
        v.dtype == sc.f32 for k, v in st.items() if isinstance(v, sc.Tensor))
    assert sp[0].dtype == sc.as_dtype(half)
    for p, t in zip(sp, tp):
        np.testing.assert_allclose(sopt.state[p]["master"].numpy(), t.detach().numpy(),
                                   **oracle.tol["f32"])  # fmt: skip
        want = torch.tensor(t.detach().numpy()).to(getattr(torch, {"f16": "float16",
                                                                  "bf16": "bfloat16"}[half]))
        np.testing.assert_array_equal(p.to("f32").numpy(), want.float().numpy())


def test_half_without_master_keeps_state_in_param_dtype(device):
    w = sc.ones(4, dtype="f16", device=device).requires_grad_()
    opt = so.Adam([w], lr=0.1)
    opt.step(_single(w, sc.ones(4, dtype="f16", device=device)))
    assert opt.state[w]["exp_avg"].dtype == sc.f16 and "master" not in opt.state[w]
    np.testing.assert_allclose(w.to("f32").numpy(), np.full(4, 0.9), rtol=1e-3)


@pytest.mark.parametrize("kernel, make", [
    ("sgd_update", lambda p: so.SGD(p, lr=0.1, momentum=0.9)),
    ("adam_update", lambda p: so.AdamW(p, amsgrad=True)),
    ("radam_update", lambda p: so.RAdam(p)),
    ("rmsprop_update", lambda p: so.RMSprop(p, centered=True, momentum=0.1)),
])  # fmt: skip
def test_one_fused_kernel_call_per_parameter_per_step(kernel, make, device, oracle, monkeypatch):
    init, grads = oracle.problem("f32", 3)
    sp = oracle.params(init, device)
    backend = sp[0]._backend
    calls = []
    real = getattr(backend, kernel)
    monkeypatch.setattr(backend, kernel, lambda *a, **k: (calls.append(a[0]), real(*a, **k)))
    opt = make(sp)
    for gs in grads:
        opt.step(oracle.store(sp, gs, device))
    assert calls == [p.numel for p in sp] * len(grads)


def test_zero_grad_is_a_noop(device):
    w = sc.ones(2, device=device).requires_grad_()
    opt = so.SGD([w], lr=0.1)
    assert opt.zero_grad() is None
    np.testing.assert_array_equal(w.numpy(), np.ones(2, np.float32))
