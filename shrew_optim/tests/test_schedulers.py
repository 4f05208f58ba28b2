"""Schedulers against torch.optim.lr_scheduler over 50+ steps, with two param groups."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler as tls

import shrew_core as sc
import shrew_optim as so

LR_TOL = dict(rtol=1e-12, atol=1e-15)
STEPS = 60


def _opts():
    s = so.SGD([{"params": [sc.ones(1).requires_grad_()]},
                {"params": [sc.ones(1).requires_grad_()], "lr": 0.5}], lr=0.1)  # fmt: skip
    t = torch.optim.SGD([{"params": [torch.ones(1, requires_grad=True)]},
                         {"params": [torch.ones(1, requires_grad=True)], "lr": 0.5}], lr=0.1)
    return s, t


def _warmup_cosine(w, total, min_lrs, base_lrs):
    def fn(i):
        def f(e):
            lo = min_lrs[i] / base_lrs[i]
            if e < w:
                return e / w
            if e >= total:
                return lo
            return lo + (1 - lo) * (1 + math.cos(math.pi * (e - w) / (total - w))) / 2
        return f
    return [fn(0), fn(1)]


CASES = [
    ("step", lambda o: so.StepLR(o, step_size=7, gamma=0.5), lambda o: tls.StepLR(o, 7, 0.5)),
    ("multistep", lambda o: so.MultiStepLR(o, [5, 12, 12, 40], gamma=0.3),
     lambda o: tls.MultiStepLR(o, [5, 12, 12, 40], gamma=0.3)),
    ("exponential", lambda o: so.ExponentialLR(o, 0.95), lambda o: tls.ExponentialLR(o, 0.95)),
    ("linear", lambda o: so.LinearLR(o, start_factor=0.25, end_factor=0.9, total_iters=20),
     lambda o: tls.LinearLR(o, start_factor=0.25, end_factor=0.9, total_iters=20)),
    ("cosine", lambda o: so.CosineAnnealingLR(o, T_max=20, eta_min=0.001),
     lambda o: tls.CosineAnnealingLR(o, T_max=20, eta_min=0.001)),
    ("cosine-warmup", lambda o: so.CosineWarmupLR(o, 10, 45, min_lr=[0.001, 0.01]),
     lambda o: tls.LambdaLR(o, _warmup_cosine(10, 45, [0.001, 0.01], [0.1, 0.5]))),
    ("lambda", lambda o: so.LambdaLR(o, lambda e: 1 / (1 + e)),
     lambda o: tls.LambdaLR(o, lambda e: 1 / (1 + e))),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_epoch_schedulers_match_torch(case):
    _, make_s, make_t = case
    s_opt, t_opt = _opts()
    s, t = make_s(s_opt), make_t(t_opt)
    got, want = [s.get_last_lr()], [t.get_last_lr()]
    for _ in range(STEPS):
        t_opt.step()  # silences torch's "scheduler before optimizer" warning
        s.step()
        t.step()
        got.append(s.get_last_lr())
        want.append(t.get_last_lr())
    np.testing.assert_allclose(np.array(got), np.array(want), **LR_TOL)
    np.testing.assert_allclose([g["lr"] for g in s_opt.param_groups], want[-1], **LR_TOL)


PLATEAU = [
    dict(),
    dict(mode="max", factor=0.5, patience=2, threshold=0.01, threshold_mode="abs"),
    dict(factor=0.5, patience=1, cooldown=3, min_lr=[0.01, 0.2]),
    dict(factor=0.2, patience=0, threshold=0.1, min_lr=0.004, eps=1e-3),
]


@pytest.mark.parametrize("kw", PLATEAU, ids=["default", "max-abs", "cooldown-minlr", "eps"])
def test_reduce_on_plateau_matches_torch(kw):
    rng = np.random.default_rng(0)
    metrics = np.concatenate([np.linspace(1, 0.5, 10), 0.5 + 0.01 * rng.standard_normal(50),
                              np.linspace(0.5, 0.2, 5), np.full(30, 0.2)])  # fmt: skip
    s_opt, t_opt = _opts()
    s, t = so.ReduceLROnPlateau(s_opt, **kw), tls.ReduceLROnPlateau(t_opt, **kw)
    got, want = [], []
    for m in metrics:
        s.step(float(m))
        t.step(float(m))
        got.append(s.get_last_lr())
        want.append(t.get_last_lr())
    np.testing.assert_allclose(np.array(got), np.array(want), **LR_TOL)
    assert len({tuple(x) for x in got}) > 1  # the lr did change along the way


@pytest.mark.parametrize("case", CASES[:6], ids=[c[0] for c in CASES[:6]])
def test_scheduler_state_dict_round_trip(case):
    _, make_s, _ = case
    opt_a, _ = _opts()
    a = make_s(opt_a)
    for _ in range(13):
        a.step()
    saved = opt_a.state_dict(), a.state_dict()
    opt_b, _ = _opts()
    b = make_s(opt_b)
    opt_b.load_state_dict(saved[0])
    b.load_state_dict(saved[1])
    assert b.last_epoch == 13 and b.get_last_lr() == a.get_last_lr()
    for _ in range(20):
        assert a.step() == b.step()
        assert a.get_last_lr() == b.get_last_lr()


def test_plateau_state_dict_round_trip():
    opt_a, _ = _opts()
    a = so.ReduceLROnPlateau(opt_a, patience=1, cooldown=1)
    for m in [1.0, 0.9, 0.95, 0.97]:
        a.step(m)
    opt_b, _ = _opts()
    b = so.ReduceLROnPlateau(opt_b, patience=1, cooldown=1)
    opt_b.load_state_dict(opt_a.state_dict())
    b.load_state_dict(a.state_dict())
    for m in [0.99, 0.98, 0.5, 0.6, 0.7, 0.8]:
        assert a.step(m) == b.step(m)
        assert (a.best, a.num_bad_epochs, a.cooldown_counter) == (
            b.best, b.num_bad_epochs, b.cooldown_counter)


def test_seed_spelling_standalone():
    s = so.StepLR(0.1, 3, 0.5)
    assert s.current_lr() == 0.1 and s.current_step() == 0
    assert [s.step() for _ in range(7)] == pytest.approx(
        [0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025])
    c = so.CosineAnnealingLR(1.0, total_steps=10, min_lr=0.1)
    assert c.get_last_lr() == [1.0]
    for _ in range(10):
        c.step()
    assert c.current_lr() == pytest.approx(0.1)
    w = so.CosineWarmupLR(2.0, warmup_steps=4, total_steps=10)
    assert w.current_lr() == 0.0  # warmup starts at 0
    assert [w.step() for _ in range(4)][-1] == 2.0
    r = so.ReduceLROnPlateau(0.1, patience=0)
    r.step_metric(1.0)
    assert r.step_metric(2.0) == pytest.approx(0.01)
    lin = so.LinearLR(1.0, 0.5, 1.0, total_steps=2)
    assert [lin.step(), lin.step(), lin.step()] == [0.75, 1.0, 1.0]


def test_scheduler_errors():
    opt, _ = _opts()
    with pytest.raises(ValueError, match="step_size must be a positive integer"):
        so.StepLR(opt, 0)
    with pytest.raises(ValueError, match=r"warmup_steps \(10\) must not exceed total_steps \(5\)"):
        so.CosineWarmupLR(opt, 10, 5)
    with pytest.raises(ValueError, match="Factor should be < 1.0"):
        so.ReduceLROnPlateau(opt, factor=1.0)
    with pytest.raises(ValueError, match="mode average is unknown"):
        so.ReduceLROnPlateau(opt, mode="average")
    with pytest.raises(ValueError, match="expected 2 values for min_lr"):
        so.ReduceLROnPlateau(opt, min_lr=[0.1])
    with pytest.raises(ValueError, match="T_max must be a positive integer"):
        so.CosineAnnealingLR(opt, 0)
    with pytest.raises(ValueError, match="Starting multiplicative factor"):
        so.LinearLR(opt, start_factor=0)
    with pytest.raises(ValueError, match="Invalid learning rate"):
        so.StepLR(-0.1, 3)
    step = so.StepLR(opt, 3)
    before = dict(step.__dict__)
    with pytest.raises(ValueError, match="Cannot load ExponentialLR state into StepLR scheduler"):
        step.load_state_dict(so.ExponentialLR(_opts()[0], 0.9).state_dict())
    assert step.__dict__ == before
