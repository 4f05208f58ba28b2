"""PyTorch's own optimizer configurations (``torch.testing._internal.common_optimizers
.optim_db``) run through shrew_optim and compared with torch.optim step by step.

For every ``OptimizerInfo`` whose algorithm shrew_optim has, every configuration of its
``optim_inputs_func`` (the CUDA list, a superset of the CPU one that adds tensor lrs and
betas) is run in f32 and f64 on every backend:

* per-step parameters over ``STEPS`` steps, three parameters of different shapes;
* the same with two parameter groups (the second overriding lr and weight decay);
* resume: a state dict taken half-way is loaded into a fresh optimizer over the same
  weights, which must continue bit-identically to the uninterrupted run (and match torch);

and every LR-scheduler chain of its ``scheduler_inputs`` (the same lambdas, rebound to
shrew_optim's schedulers) steps a run, comparing lrs and parameters at every step.

``OPTIMIZERS`` is the one mapping table: torch class -> shrew class (kwarg renames in
``KWARGS``) or the reason it is not run. ``test_every_configuration_is_accounted_for``
fails when optim_db has a configuration this table neither runs nor explains.
"""

from __future__ import annotations

import types
import warnings

import numpy as np
import pytest
import torch
from torch.testing._internal.common_optimizers import optim_db

import shrew_core as sc
import shrew_optim as so

STEPS = 8
SCHED_STEPS = 30
TOL = {"f32": dict(rtol=2e-5, atol=2e-6), "f64": dict(rtol=1e-10, atol=1e-12)}
# A tensor lr/betas of optim_db is an f32 tensor: torch derives the step size from it in f32
# tensor arithmetic (e.g. AdamW's decay factor 1 - lr * weight_decay, rounded to f32: 6e-8 of
# the parameter per step), shrew_optim in f64 from the same f32 value. With f64 parameters
# those configurations agree to f32 precision over the run, not to 1e-10.
TOL_F32_HYPERPARAMETER = dict(rtol=1e-6, atol=1e-8)
NP = {"f32": np.float32, "f64": np.float64}
TORCH_DT = {"f32": torch.float32, "f64": torch.float64}
SHAPES = [(4, 3), (5,), (2, 3, 2)]

_NOT_IN_SHREW = "not implemented in shrew_optim (no Shrew optimizer for this algorithm)"

# torch optimizer class -> the shrew_optim class that runs its configurations, or why none.
OPTIMIZERS: dict[str, type | str] = {
    "SGD": so.SGD,
    "Adam": so.Adam,
    "AdamW": so.AdamW,
    "RAdam": so.RAdam,
    "RMSprop": so.RMSprop,
    "Adadelta": _NOT_IN_SHREW,
    "Adafactor": _NOT_IN_SHREW,
    "Adagrad": _NOT_IN_SHREW,
    "Adamax": _NOT_IN_SHREW,
    "ASGD": _NOT_IN_SHREW,
    "LBFGS": _NOT_IN_SHREW + " (a closure-driven line-search method)",
    "Muon": _NOT_IN_SHREW,
    "NAdam": _NOT_IN_SHREW,
    "Rprop": _NOT_IN_SHREW,
    "SparseAdam": _NOT_IN_SHREW + " (sparse gradients)",
}

# torch kwarg -> shrew kwarg, or None: dropped on both sides, with the reason.
KWARGS: dict[str, str | None] = {"lr": "lr", "betas": "betas", "eps": "eps",
                                 "weight_decay": "weight_decay", "amsgrad": "amsgrad",
                                 "maximize": "maximize", "momentum": "momentum",
                                 "dampening": "dampening", "nesterov": "nesterov",
                                 "centered": "centered", "alpha": "alpha",
                                 "decoupled_weight_decay": "decoupled_weight_decay",
                                 "capturable": None}  # fmt: skip
DROPPED = {
    "capturable": "implementation switch (the step count as a device tensor for CUDA graph "
                  "capture): same numbers; torch rejects it for CPU parameters, so both sides "
                  "run without it",
}

# (torch class, config desc) -> reason, for configurations of a mapped optimizer not run.
CONFIGS_NOT_RUN: dict[tuple[str, str], str] = {}

# Schedulers the lambdas of scheduler_inputs may name: torch name -> shrew class.
SCHEDULERS = {name: getattr(so, name) for name in so.lr_scheduler.__all__
              if name != "CosineWarmupLR"}  # fmt: skip


def _configs(info, dtype: str):
    return info.optim_inputs_func(device="cuda", dtype=TORCH_DT[dtype])


def _run_ids():
    out = []
    for info in optim_db:
        if not isinstance(OPTIMIZERS.get(info.name), type):
            continue
        for cfg in _configs(info, "f32"):
            if (info.name, cfg.desc) not in CONFIGS_NOT_RUN:
                out.append((info.name, cfg.desc))
    return out


RUN = _run_ids()
INFOS = {info.name: info for info in optim_db}


def _find(name: str, desc: str, dtype: str):
    return next(c for c in _configs(INFOS[name], dtype) if c.desc == desc)


def _to_shrew(v):
    if isinstance(v, torch.Tensor):
        return sc.tensor(v.detach().numpy())
    if isinstance(v, tuple):
        return tuple(_to_shrew(x) for x in v)
    return v


def _kwargs(kwargs: dict) -> tuple[dict, dict]:
    """(shrew kwargs, torch kwargs) of a config through ``KWARGS``."""
    s, t = {}, {}
    for k, v in kwargs.items():
        if k not in KWARGS:
            raise AssertionError(f"optim_db kwarg {k!r} is not in the KWARGS table")
        if KWARGS[k] is None:
            continue
        s[KWARGS[k]] = _to_shrew(v)
        t[k] = v
    return s, t


class Pair:
    """The same parameters and gradients on both sides."""

    def __init__(self, dtype: str, device: str, steps: int, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.init = [rng.standard_normal(s).astype(NP[dtype]) for s in SHAPES]
        self.grads = [[rng.standard_normal(s).astype(NP[dtype]) for s in SHAPES]
                      for _ in range(steps)]  # fmt: skip
        self.device, self.dtype, self.tol = device, dtype, TOL[dtype]
        self.s = [sc.tensor(a, device=device).requires_grad_() for a in self.init]
        self.t = [torch.tensor(a, requires_grad=True) for a in self.init]

    def step(self, k: int, s_opt, t_opt) -> None:
        store = sc.GradStore()
        for p, g in zip(self.s, self.grads[k]):
            store[p] = sc.tensor(g, device=self.device)
        s_opt.step(store)
        for p, g in zip(self.t, self.grads[k]):
            p.grad = torch.from_numpy(g.copy())
        t_opt.step()

    def compare(self, what: str) -> None:
        for i, (a, b) in enumerate(zip(self.s, self.t)):
            np.testing.assert_allclose(a.numpy(), b.detach().numpy(),
                                       err_msg=f"{what}: parameter {i}", **self.tol)


def _has_tensor(kwargs: dict) -> bool:
    return any(isinstance(x, torch.Tensor) for v in kwargs.values()
               for x in (v if isinstance(v, tuple) else (v,)))  # fmt: skip


def _groups(params, override: dict):
    return [{"params": params[:1]}, {"params": params[1:], **override}]


@pytest.fixture(autouse=True)
def _quiet_torch():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.mark.parametrize("dtype", ["f32", "f64"])
@pytest.mark.parametrize("name,desc", RUN, ids=[f"{n}-{d}" for n, d in RUN])
def test_config_matches_torch(name, desc, dtype, device):
    cls, tcls = OPTIMIZERS[name], INFOS[name].optim_cls
    kw_s, kw_t = _kwargs(_find(name, desc, dtype).kwargs)
    tol = TOL_F32_HYPERPARAMETER if dtype == "f64" and _has_tensor(kw_t) else TOL[dtype]
    # per-step parameters
    pair = Pair(dtype, device, STEPS)
    pair.tol = tol
    s_opt, t_opt = cls(pair.s, **kw_s), tcls(pair.t, **kw_t)
    for k in range(STEPS):
        pair.step(k, s_opt, t_opt)
        pair.compare(f"step {k}")
    # parameter groups: the second overrides lr and weight decay
    pair = Pair(dtype, device, STEPS, seed=1)
    pair.tol = tol
    over = {"lr": 0.003, "weight_decay": 0.05}
    s_opt = cls(_groups(pair.s, over), **kw_s)
    t_opt = tcls(_groups(pair.t, over), **kw_t)
    for k in range(STEPS):
        pair.step(k, s_opt, t_opt)
    pair.compare("param groups")
    # resume half-way from a state dict: bit-identical to not stopping, and torch's numbers
    pair = Pair(dtype, device, STEPS, seed=2)
    pair.tol = tol
    s_opt, t_opt = cls(pair.s, **kw_s), tcls(pair.t, **kw_t)
    for k in range(STEPS // 2):
        pair.step(k, s_opt, t_opt)
    saved = s_opt.state_dict()
    clones = [sc.tensor(p.numpy(), device=device).requires_grad_() for p in pair.s]
    resumed = cls(clones, **kw_s)
    resumed.load_state_dict(saved)
    for k in range(STEPS // 2, STEPS):
        store = sc.GradStore()
        for p, g in zip(clones, pair.grads[k]):
            store[p] = sc.tensor(g, device=device)
        resumed.step(store)
        pair.step(k, s_opt, t_opt)
    for i, (a, b) in enumerate(zip(clones, pair.s)):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=f"resume: parameter {i}")
    pair.compare("resume")


def _rebind(fn):
    """The scheduler lambda with its torch scheduler names bound to shrew_optim's."""
    names = set(fn.__code__.co_names)
    unmapped = {n for n in names if n.endswith("LR") or n.endswith("Plateau")} - set(SCHEDULERS)
    assert not unmapped, f"scheduler(s) {sorted(unmapped)} are not in the SCHEDULERS table"
    glb = {**fn.__globals__, **{n: SCHEDULERS[n] for n in names if n in SCHEDULERS}}
    return types.FunctionType(fn.__code__, glb, fn.__name__, fn.__defaults__, fn.__closure__)


SCHED_RUN = [(info.name, i) for info in optim_db if isinstance(OPTIMIZERS.get(info.name), type)
             for i in range(len(info.scheduler_inputs))]  # fmt: skip


@pytest.mark.parametrize("name,index", SCHED_RUN, ids=[f"{n}-{i}" for n, i in SCHED_RUN])
def test_scheduler_chain_matches_torch(name, index, device):
    """optim_db's scheduler chains on the optimizer's default configuration (f64):
    lrs and parameters at every step; plateau schedulers see the loss sum(p^2)."""
    makers = INFOS[name].scheduler_inputs[index]
    pair = Pair("f64", device, SCHED_STEPS, seed=3)
    s_opt, t_opt = OPTIMIZERS[name](pair.s), INFOS[name].optim_cls(pair.t)
    s_sched = [_rebind(m)(s_opt) for m in makers]
    t_sched = [m(t_opt) for m in makers]
    for k in range(SCHED_STEPS):
        pair.step(k, s_opt, t_opt)
        loss = float(sum((p.detach() ** 2).sum() for p in pair.t))
        for s, t in zip(s_sched, t_sched):
            if isinstance(t, torch.optim.lr_scheduler.ReduceLROnPlateau):
                s.step(loss)
                t.step(loss)
            else:
                s.step()
                t.step()
        np.testing.assert_allclose([g["lr"] for g in s_opt.param_groups],
                                   [g["lr"] for g in t_opt.param_groups], rtol=1e-12,
                                   err_msg=f"lr after step {k}")  # fmt: skip
        pair.compare(f"step {k}")


def test_every_configuration_is_accounted_for():
    """Each optim_db optimizer is mapped or has a reason; each configuration of a mapped one
    runs or has a reason; no reason is left for a configuration optim_db no longer has."""
    counts = {"run": 0, "not run": 0}
    for info in optim_db:
        target = OPTIMIZERS.get(info.name)
        assert target is not None, f"optim_db has {info.name}, which OPTIMIZERS does not list"
        assert isinstance(target, type) or (isinstance(target, str) and target.strip()), (
            f"{info.name}: empty reason")
        for dtype in ("f32", "f64"):
            for cfg in _configs(info, dtype):
                run = isinstance(target, type) and (info.name, cfg.desc) not in CONFIGS_NOT_RUN
                assert run == ((info.name, cfg.desc) in RUN), (info.name, cfg.desc)
                counts["run" if run else "not run"] += 1
                unknown = set(cfg.kwargs) - set(KWARGS)
                assert not (run and unknown), f"{info.name} {cfg.desc}: kwargs {unknown}"
    for key, reason in CONFIGS_NOT_RUN.items():
        assert reason.strip() and key[1] in {c.desc for c in _configs(INFOS[key[0]], "f32")}
    assert set(DROPPED) == {k for k, v in KWARGS.items() if v is None}
    assert set(OPTIMIZERS) == set(INFOS), "OPTIMIZERS lists an optimizer optim_db lacks"
    assert counts["run"] == 2 * len(RUN) > 0
