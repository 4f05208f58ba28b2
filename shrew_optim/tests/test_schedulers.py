"""Schedulers against torch.optim.lr_scheduler, step by step, with two param groups.

Every case is one factory ``make(L, opt) -> [schedulers]`` called once with
``shrew_optim`` and once with ``torch.optim.lr_scheduler`` as ``L`` (the class names and
arguments are the same), so both sides are built from one line. Schedulers stepped on one
optimizer chain (torch's chainable form), which is what most cases check.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler as tls

import shrew_core as sc
import shrew_optim as so

# lrs are computed with the same Python-float expressions as torch's: equal to rounding.
LR_TOL = dict(rtol=1e-12, atol=1e-15)
STEPS = 60
METRICS = np.concatenate([np.linspace(1, 0.5, 10), 0.5 + 0.01 * np.sin(np.arange(50)),
                          np.linspace(0.5, 0.2, 5), np.full(30, 0.2)])  # fmt: skip


def _opts(kind: str = "SGD", **kw):
    """A shrew and a torch optimizer with two groups (lr 0.1 and 0.5)."""
    def groups(make):
        return [{"params": [make()]}, {"params": [make()], "lr": 0.5}]

    s = getattr(so, kind)(groups(lambda: sc.ones(1).requires_grad_()), lr=0.1, **kw)
    t = getattr(torch.optim, kind)(groups(lambda: torch.ones(1, requires_grad=True)), lr=0.1,
                                   **kw)  # fmt: skip
    return s, t


def _momenta(opt) -> list[float]:
    return [float(g["betas"][0]) if "betas" in g else float(g.get("momentum", 0.0))
            for g in opt.param_groups]  # fmt: skip


def _step_all(scheds, metric: float) -> None:
    for s in scheds:
        if isinstance(s, (so.ReduceLROnPlateau, tls.ReduceLROnPlateau)):
            s.step(metric)
        else:
            s.step()


def _run(make, steps: int = STEPS, kind: str = "SGD", **kw):
    """Step both sides; returns (shrew lrs, torch lrs, shrew momenta, torch momenta) per
    step, from the optimizers' groups (what the next optimizer step uses)."""
    s_opt, t_opt = _opts(kind, **kw)
    s_sched, t_sched = make(so, s_opt), make(tls, t_opt)
    rows = [[], [], [], []]

    def record():
        rows[0].append([float(g["lr"]) for g in s_opt.param_groups])
        rows[1].append([float(g["lr"]) for g in t_opt.param_groups])
        rows[2].append(_momenta(s_opt))
        rows[3].append(_momenta(t_opt))

    record()
    for k in range(steps):
        t_opt.step()  # silences torch's "scheduler before optimizer" warning
        _step_all(s_sched, METRICS[k % len(METRICS)])
        _step_all(t_sched, METRICS[k % len(METRICS)])
        record()
    assert [x.get_last_lr() for x in s_sched][-1] == pytest.approx(rows[0][-1], rel=1e-12)
    return [np.array(r) for r in rows]


def _check(make, steps: int = STEPS, kind: str = "SGD", **kw):
    s_lr, t_lr, s_m, t_m = _run(make, steps, kind, **kw)
    np.testing.assert_allclose(s_lr, t_lr, err_msg="lr per step", **LR_TOL)
    np.testing.assert_allclose(s_m, t_m, err_msg="momentum per step", **LR_TOL)
    return s_lr


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


class _Poly:
    """A callable object: its ``__dict__`` is part of LambdaLR's state dict."""

    def __init__(self, power: float):
        self.power = power

    def __call__(self, e: int) -> float:
        return (1 - e / 70) ** self.power


SINGLE = {
    "step": lambda L, o: [L.StepLR(o, step_size=7, gamma=0.5)],
    "multistep": lambda L, o: [L.MultiStepLR(o, [5, 12, 12, 40], gamma=0.3)],
    "exponential": lambda L, o: [L.ExponentialLR(o, 0.95)],
    "linear": lambda L, o: [L.LinearLR(o, start_factor=0.25, end_factor=0.9, total_iters=20)],
    "linear-total-0": lambda L, o: [L.LinearLR(o, start_factor=0.5, total_iters=0)],
    "constant": lambda L, o: [L.ConstantLR(o, factor=0.4, total_iters=4)],
    "polynomial": lambda L, o: [L.PolynomialLR(o, total_iters=30, power=0.9)],
    "cosine": lambda L, o: [L.CosineAnnealingLR(o, T_max=20, eta_min=0.001)],
    "lambda": lambda L, o: [L.LambdaLR(o, lambda e: 1 / (1 + e))],
    "lambda-per-group": lambda L, o: [L.LambdaLR(o, [lambda e: 0.9**e, _Poly(2.0)])],
    "multiplicative": lambda L, o: [L.MultiplicativeLR(o, lambda e: 0.95 if e % 2 else 1.0)],
    "warm-restarts": lambda L, o: [L.CosineAnnealingWarmRestarts(o, T_0=7, eta_min=0.01)],
    "warm-restarts-mult": lambda L, o: [L.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2)],
    "cyclic-triangular": lambda L, o: [L.CyclicLR(o, 0.01, [0.1, 0.4], step_size_up=5)],
    "cyclic-triangular2": lambda L, o: [L.CyclicLR(o, [0.01, 0.02], 0.2, step_size_up=4,
                                                   step_size_down=7, mode="triangular2")],
    "cyclic-exp-range": lambda L, o: [L.CyclicLR(o, 0.01, 0.2, step_size_up=3,
                                                 mode="exp_range", gamma=0.97,
                                                 cycle_momentum=False)],
    "cyclic-scale-fn": lambda L, o: [L.CyclicLR(o, 0.01, 0.2, step_size_up=6,
                                                scale_fn=lambda x: 0.5 ** x,
                                                scale_mode="iterations")],
    "one-cycle": lambda L, o: [L.OneCycleLR(o, max_lr=[0.3, 1.0], total_steps=STEPS)],
    "one-cycle-linear-3phase": lambda L, o: [L.OneCycleLR(
        o, max_lr=0.3, epochs=6, steps_per_epoch=10, anneal_strategy="linear",
        three_phase=True, pct_start=0.25, div_factor=10.0, final_div_factor=100.0)],
}  # fmt: skip


@pytest.mark.parametrize("name", list(SINGLE))
def test_scheduler_matches_torch(name):
    _check(SINGLE[name], kind="SGD", momentum=0.9)


@pytest.mark.parametrize("name", ["cyclic-triangular", "one-cycle"])
def test_cycled_momentum_is_beta1_for_adam(name):
    _check(SINGLE[name], kind="Adam")


def test_cosine_warmup_is_the_lambda_schedule():
    s_opt, t_opt = _opts()
    s = so.CosineWarmupLR(s_opt, 10, 45, min_lr=[0.001, 0.01])
    t = tls.LambdaLR(t_opt, _warmup_cosine(10, 45, [0.001, 0.01], [0.1, 0.5]))
    got, want = [s.get_last_lr()], [t.get_last_lr()]
    for _ in range(STEPS):
        t_opt.step()
        s.step()
        t.step()
        got.append(s.get_last_lr())
        want.append(t.get_last_lr())
    np.testing.assert_allclose(np.array(got), np.array(want), **LR_TOL)


# Torch's compound-scheduler configurations (test_lrscheduler.py: test_compound_*,
# test_chained_lr*, test_sequentiallr*) plus the ones optim_db steps its optimizers with.
CHAINS = {
    "step+multistep": lambda L, o: [L.StepLR(o, 3, 0.1), L.MultiStepLR(o, [2, 5, 9], 0.1)],
    "step+exp": lambda L, o: [L.StepLR(o, 3, 0.1), L.ExponentialLR(o, 0.9)],
    "step5+exp (issue 18)": lambda L, o: [L.StepLR(o, 5, 0.5), L.ExponentialLR(o, 0.95)],
    "exp+multistep": lambda L, o: [L.MultiStepLR(o, [2, 4], 0.1), L.ExponentialLR(o, 0.9)],
    "exp+linear": lambda L, o: [L.ExponentialLR(o, 0.9), L.LinearLR(o, 0.2, total_iters=4)],
    "step+constant": lambda L, o: [L.StepLR(o, 3, 0.1), L.ConstantLR(o, 0.25, total_iters=4)],
    "linear+multistep": lambda L, o: [L.MultiStepLR(o, [2, 5, 9], 0.1),
                                      L.LinearLR(o, 0.2, total_iters=4)],
    "cosine+step": lambda L, o: [L.CosineAnnealingLR(o, 10, 1e-10), L.StepLR(o, 3, 0.1)],
    "cosine+multistep": lambda L, o: [L.CosineAnnealingLR(o, 10, 1e-10),
                                      L.MultiStepLR(o, [2, 5, 9], 0.1)],
    "linear+cosine": lambda L, o: [L.LinearLR(o, 0.2, total_iters=4),
                                   L.CosineAnnealingLR(o, 10, 1e-10)],
    "cosine+exp": lambda L, o: [L.CosineAnnealingLR(o, 10, 1e-10), L.ExponentialLR(o, 0.9)],
    "step+plateau": lambda L, o: [L.StepLR(o, 3, 0.1), L.ReduceLROnPlateau(o, patience=0)],
    "multistep+plateau": lambda L, o: [L.MultiStepLR(o, [2, 5, 9], 0.1),
                                       L.ReduceLROnPlateau(o, patience=1, factor=0.5)],
    "plateau-max+exp": lambda L, o: [L.ReduceLROnPlateau(o, mode="max", patience=2,
                                                         threshold_mode="abs"),
                                     L.ExponentialLR(o, 0.9)],
    "plateau+cosine": lambda L, o: [L.ReduceLROnPlateau(o, patience=0, cooldown=2),
                                    L.CosineAnnealingLR(o, 10)],
    "plateau+linear": lambda L, o: [L.ReduceLROnPlateau(o, patience=1),
                                    L.LinearLR(o, 0.5, end_factor=0.9, total_iters=8)],
    "constant+exp": lambda L, o: [L.ConstantLR(o, 0.4, total_iters=4), L.ExponentialLR(o, 0.9)],
    "exp+plateau": lambda L, o: [L.ExponentialLR(o, 0.9), L.ReduceLROnPlateau(o)],
    "step+linear": lambda L, o: [L.StepLR(o, 10, 0.9), L.LinearLR(o, 0.4, 0.6, total_iters=4)],
    "step+exp+plateau": lambda L, o: [L.StepLR(o, 10, 0.99), L.ExponentialLR(o, 0.99),
                                      L.ReduceLROnPlateau(o)],
    "multiplicative+polynomial": lambda L, o: [L.MultiplicativeLR(o, lambda e: 0.97),
                                               L.PolynomialLR(o, total_iters=40, power=2.0)],
    "chained-1": lambda L, o: [L.ChainedScheduler([L.StepLR(o, 3, 0.1)])],
    "chained-2": lambda L, o: [L.ChainedScheduler([L.LinearLR(o, 0.4, total_iters=3)])],
    "chained-3": lambda L, o: [L.ChainedScheduler([L.LinearLR(o, 0.4, total_iters=3),
                                                   L.MultiStepLR(o, [4, 8, 10], 0.1)])],
    "chained-4": lambda L, o: [L.ChainedScheduler([L.ExponentialLR(o, 0.9),
                                                   L.LinearLR(o, 0.2, total_iters=4),
                                                   L.StepLR(o, 3, 0.1)])],
    "chained-5": lambda L, o: [L.ChainedScheduler([L.LambdaLR(o, lambda e: (1 - e / 60) ** 2),
                                                   L.ExponentialLR(o, 0.9)])],
    "sequential-1": lambda L, o: [L.SequentialLR(o, [L.ConstantLR(o, 0.1, total_iters=2),
                                                     L.ExponentialLR(o, 0.9)], [3])],
    "sequential-2": lambda L, o: [L.SequentialLR(o, [L.ConstantLR(o, 0.1, total_iters=2),
                                                     L.ExponentialLR(o, 0.9),
                                                     L.StepLR(o, 2, 0.1)], [5, 12])],
    "sequential-warmup-cosine": lambda L, o: [L.SequentialLR(
        o, [L.LinearLR(o, 0.01, total_iters=5), L.CosineAnnealingLR(o, T_max=20)], [5])],
    "sequential-cyclic": lambda L, o: [L.SequentialLR(
        o, [L.ExponentialLR(o, 0.8), L.CyclicLR(o, 0.01, 0.2, step_size_up=4,
                                                cycle_momentum=False)], [6])],
}  # fmt: skip


@pytest.mark.parametrize("name", list(CHAINS))
def test_chain_matches_torch(name):
    _check(CHAINS[name])


def test_issue_18_numbers():
    """The two chains of the issue, against the numbers torch prints."""
    lrs = _check(CHAINS["step5+exp (issue 18)"], steps=10)
    assert lrs[-1][0] == pytest.approx(0.1 * 0.5**2 * 0.95**10) and round(lrs[-1][0], 4) == 0.015
    s_opt, _ = _opts()
    step, plateau = so.StepLR(s_opt, 10, 0.5), so.ReduceLROnPlateau(s_opt, patience=0)
    seen = []
    for _ in range(4):
        step.step()
        plateau.step(1.0)  # never improves after the first
        seen.append(s_opt.param_groups[0]["lr"])
    np.testing.assert_allclose(seen, [0.1, 0.01, 0.001, 0.0001], rtol=1e-12)


def test_linear_total_iters_0_keeps_start_factor():
    s_opt, _ = _opts()
    s = so.LinearLR(s_opt, start_factor=0.5, total_iters=0)
    assert [s.step() for _ in range(3)] == [0.05, 0.05, 0.05]
    assert s.step(epoch=4) == 0.05  # the closed form agrees


def test_step_epoch_uses_closed_form():
    for name in ("step", "multistep", "exponential", "linear", "constant", "polynomial",
                 "cosine"):  # fmt: skip
        s_opt, t_opt = _opts()
        (s,), (t,) = SINGLE[name](so, s_opt), SINGLE[name](tls, t_opt)
        for e in (3, 17, 5, 40):
            with pytest.warns(UserWarning):  # torch deprecates step(epoch)
                t.step(e)
            s.step(e)
            np.testing.assert_allclose(s.get_last_lr(), t.get_last_lr(), err_msg=name, **LR_TOL)


def test_warm_restarts_fractional_epochs():
    s_opt, t_opt = _opts()
    s = so.CosineAnnealingWarmRestarts(s_opt, T_0=4, T_mult=2, eta_min=0.001)
    t = tls.CosineAnnealingWarmRestarts(t_opt, T_0=4, T_mult=2, eta_min=0.001)
    for e in np.arange(0, 30, 0.35):
        s.step(float(e))
        t.step(float(e))
        np.testing.assert_allclose(s.get_last_lr(), t.get_last_lr(), **LR_TOL)


def test_tensor_lr_is_updated_in_place():
    w = sc.ones(2).requires_grad_()
    lr = sc.tensor(0.1, dtype="f64")
    opt = so.SGD([w], lr=lr)
    sched = so.ExponentialLR(opt, 0.5)
    sched.step()
    assert opt.param_groups[0]["lr"] is lr and float(lr) == 0.05
    assert isinstance(sched.get_last_lr()[0], sc.Tensor)
    assert sched.get_last_lr()[0] is not lr  # a copy: changing it cannot corrupt the lr


PLATEAU = [
    dict(),
    dict(mode="max", factor=0.5, patience=2, threshold=0.01, threshold_mode="abs"),
    dict(factor=0.5, patience=1, cooldown=3, min_lr=[0.01, 0.2]),
    dict(factor=0.2, patience=0, threshold=0.1, min_lr=0.004, eps=1e-3),
]


@pytest.mark.parametrize("kw", PLATEAU, ids=["default", "max-abs", "cooldown-minlr", "eps"])
def test_reduce_on_plateau_matches_torch(kw):
    lrs = _check(lambda L, o: [L.ReduceLROnPlateau(o, **kw)], steps=len(METRICS))
    assert len({tuple(x) for x in lrs}) > 1  # the lr did change along the way


ROUND_TRIP = ["step", "multistep", "linear", "cosine", "lambda-per-group", "warm-restarts-mult",
              "cyclic-triangular2", "cyclic-scale-fn", "one-cycle", "constant"]  # fmt: skip


@pytest.mark.parametrize("name", ROUND_TRIP + ["chained-4", "sequential-2", "step+plateau"])
def test_scheduler_state_dict_round_trip(name):
    make = {**SINGLE, **CHAINS}[name]
    opt_a, _ = _opts("SGD", momentum=0.9)
    a = make(so, opt_a)
    for k in range(13):
        _step_all(a, METRICS[k])
    saved = opt_a.state_dict(), [s.state_dict() for s in a]
    opt_b, _ = _opts("SGD", momentum=0.9)
    b = make(so, opt_b)
    opt_b.load_state_dict(saved[0])
    for s, sd in zip(b, saved[1]):
        s.load_state_dict(sd)
    assert [s.state_dict() for s in b] == [s.state_dict() for s in a]
    for k in range(13, 33):
        _step_all(a, METRICS[k])
        _step_all(b, METRICS[k])
        assert [g["lr"] for g in opt_a.param_groups] == [g["lr"] for g in opt_b.param_groups]
        assert _momenta(opt_a) == _momenta(opt_b)


@pytest.mark.parametrize("name", ["step", "cosine", "one-cycle", "cyclic-triangular",
                                  "warm-restarts-mult", "lambda-per-group"])
def test_torch_scheduler_state_dict_loads(name):
    """A torch scheduler's state dict (with its optimizer's) resumes in shrew_optim."""
    s_opt, t_opt = _opts("SGD", momentum=0.9)
    (t,) = SINGLE[name](tls, t_opt)
    for _ in range(9):
        t_opt.step()
        t.step()
    (s,) = SINGLE[name](so, s_opt)
    s_opt.load_state_dict(t_opt.state_dict())
    s.load_state_dict(t.state_dict())
    for _ in range(20):
        t_opt.step()
        t.step()
        s.step()
        np.testing.assert_allclose([g["lr"] for g in s_opt.param_groups],
                                   [g["lr"] for g in t_opt.param_groups], **LR_TOL)
        assert _momenta(s_opt) == pytest.approx(_momenta(t_opt), rel=1e-12)


def test_resume_with_last_epoch_needs_initial_lr():
    s_opt, _ = _opts()
    with pytest.raises(KeyError, match="initial_lr"):
        so.StepLR(s_opt, 3, last_epoch=5)
    so.StepLR(s_opt, 3)
    resumed = so.StepLR(s_opt, 3, last_epoch=5)  # initial_lr is there now
    assert resumed.last_epoch == 6


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
    assert [lin.step(), lin.step(), lin.step()] == pytest.approx([0.75, 1.0, 1.0])
    cyc = so.CyclicLR(0.1, 0.01, 0.1, step_size_up=2, cycle_momentum=False)
    assert [cyc.step() for _ in range(4)] == pytest.approx([0.055, 0.1, 0.055, 0.01])


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
    with pytest.raises(ValueError, match="Constant multiplicative factor"):
        so.ConstantLR(opt, factor=1.5)
    with pytest.raises(ValueError, match="Invalid learning rate"):
        so.StepLR(-0.1, 3)
    with pytest.raises(ValueError, match="positive integer T_0"):
        so.CosineAnnealingWarmRestarts(opt, T_0=0)
    with pytest.raises(ValueError, match="either total_steps OR"):
        so.OneCycleLR(opt, max_lr=0.1)
    with pytest.raises(ValueError, match="must support momentum or beta1"):
        so.CyclicLR(0.01, 0.01, 0.1)  # a bare lr has no momentum to cycle
    one = so.OneCycleLR(opt, max_lr=0.1, total_steps=2)
    one.step()
    one.step()
    with pytest.raises(ValueError, match="Tried to step 3 times"):
        one.step()
    with pytest.raises(ValueError, match="does not support `ReduceLROnPlateau`"):
        so.ChainedScheduler([so.ReduceLROnPlateau(opt)])
    with pytest.raises(ValueError, match="one more than the number of milestone"):
        so.SequentialLR(opt, [so.StepLR(opt, 3), so.StepLR(opt, 3)], milestones=[])
    other, _ = _opts()
    with pytest.raises(ValueError, match="same optimizer"):
        so.SequentialLR(opt, [so.StepLR(opt, 3), so.StepLR(other, 3)], milestones=[2])
    step = so.StepLR(opt, 3)
    before = dict(step.__dict__)
    with pytest.raises(ValueError, match="Cannot load ExponentialLR state into StepLR scheduler"):
        step.load_state_dict(so.ExponentialLR(_opts()[0], 0.9).state_dict())
    assert step.__dict__ == before
    chained = so.ChainedScheduler([so.StepLR(opt, 3), so.ExponentialLR(opt, 0.9)])
    bad = chained.state_dict()
    bad["_schedulers"][1] = so.StepLR(_opts()[0], 3).state_dict()
    snap = [dict(s.__dict__) for s in chained._schedulers]
    with pytest.raises(ValueError, match="Cannot load StepLR state into ExponentialLR"):
        chained.load_state_dict(bad)
    assert [dict(s.__dict__) for s in chained._schedulers] == snap
