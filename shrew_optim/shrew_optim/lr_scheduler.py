"""Learning-rate schedulers that wrap an optimizer, like ``torch.optim.lr_scheduler``.

A scheduler remembers each group's base lr at construction, sets ``lr`` on the
optimizer's param groups for epoch 0 right away, and for epoch ``e`` at every
``step()``; ``get_last_lr()`` returns the list of group lrs it set last::

    opt = Adam(params, lr=1e-3)
    sched = StepLR(opt, step_size=30, gamma=0.1)
    for epoch in range(100):
        ...  # opt.step(grads) for each batch
        sched.step()

The epoch-driven schedulers compute each lr in closed form from the base lr (equal to
torch's chained updates up to rounding); an lr set by hand between steps is replaced
at the next ``step()``. ``ReduceLROnPlateau`` is inherently chained: it scales the
groups' current lrs.

The original Shrew's spelling — a scheduler over a bare number,
``StepLR(0.1, step_size=10, gamma=0.5)`` with ``step()`` returning the new lr and
``current_lr()`` / ``current_step()`` — is accepted too: a number in place of the
optimizer makes a one-group scheduler that drives no optimizer.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from typing import Any

from .optimizer import check_lr


class _LrHolder:
    """Stand-in optimizer for the seed's ``Scheduler(initial_lr, ...)`` spelling."""

    def __init__(self, lr: float):
        check_lr(lr)
        self.param_groups = [{"lr": float(lr)}]


def _as_optimizer(optimizer: Any):
    if isinstance(optimizer, (int, float)) and not isinstance(optimizer, bool):
        return _LrHolder(optimizer)
    if not hasattr(optimizer, "param_groups"):
        raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
    return optimizer


def _per_group(name: str, value: float | Sequence[float], n: int) -> list[float]:
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"expected {n} values for {name}, got {len(value)}")
        return [float(v) for v in value]
    return [float(value)] * n


class LRScheduler:
    """Base class: subclasses implement ``_lr(base_lr, group_index, epoch)``.

    Attributes:
        optimizer: the wrapped optimizer.
        base_lrs: each group's lr when the scheduler was built.
        last_epoch: the epoch whose lr is set (0 after construction).
    """

    def __init__(self, optimizer: Any, last_epoch: int = -1):
        self.optimizer = _as_optimizer(optimizer)
        self.base_lrs = [float(g["lr"]) for g in self.optimizer.param_groups]
        self.last_epoch = int(last_epoch)
        self._last_lr: list[float] = list(self.base_lrs)
        self.step()

    def _lr(self, base_lr: float, i: int, epoch: int) -> float:
        raise NotImplementedError

    def get_lr(self) -> list[float]:
        """The lrs for ``last_epoch`` (what ``step()`` sets)."""
        return [self._lr(b, i, self.last_epoch) for i, b in enumerate(self.base_lrs)]

    def step(self, epoch: int | None = None) -> float:
        """Advance one epoch (or jump to ``epoch``), set the groups' lrs; returns the first
        group's new lr (the seed returned it; torch returns None)."""
        self.last_epoch = self.last_epoch + 1 if epoch is None else int(epoch)
        lrs = self.get_lr()
        for g, lr in zip(self.optimizer.param_groups, lrs):
            g["lr"] = lr
        self._last_lr = lrs
        return lrs[0]

    def get_last_lr(self) -> list[float]:
        """The lr of every group as last set by this scheduler."""
        return list(self._last_lr)

    # the seed's spellings
    def current_lr(self) -> float:
        return self._last_lr[0]

    def current_step(self) -> int:
        return self.last_epoch

    def state_dict(self) -> dict[str, Any]:
        """Everything but the optimizer, plus the scheduler's type."""
        d = {k: (list(v) if isinstance(v, list) else v) for k, v in self.__dict__.items()
             if k != "optimizer"}  # fmt: skip
        d["scheduler"] = type(self).__name__
        return d

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore ``state_dict()``; a dict of another scheduler type or for another number
        of param groups is rejected and nothing changes. The optimizer's lrs are left as
        they are (restore the optimizer's own state dict for those)."""
        name = type(self).__name__
        if not isinstance(state_dict, dict):
            raise ValueError(f"{name}.load_state_dict: expected a dict")
        saved = state_dict.get("scheduler", name)
        if saved != name:
            raise ValueError(f"Cannot load {saved} state into {name} scheduler")
        missing = set(self.__dict__) - {"optimizer"} - set(state_dict)
        if missing:
            raise ValueError(f"Cannot load {name} state: missing {sorted(missing)}")
        n = len(self.optimizer.param_groups)
        if len(state_dict.get("base_lrs", state_dict.get("_last_lr", ()))) != n:
            raise ValueError(f"Cannot load {name} state: it was saved for a different number "
                             "of parameter groups")  # fmt: skip
        for k, v in state_dict.items():
            if k != "scheduler":
                self.__dict__[k] = list(v) if isinstance(v, list) else v


class LambdaLR(LRScheduler):
    """lr = base_lr * lr_lambda(epoch); one function, or one per group."""

    def __init__(self, optimizer: Any, lr_lambda, last_epoch: int = -1):
        opt = _as_optimizer(optimizer)
        n = len(opt.param_groups)
        fns = list(lr_lambda) if isinstance(lr_lambda, (list, tuple)) else [lr_lambda] * n
        if len(fns) != n:
            raise ValueError(f"Expected {n} lr_lambdas, but got {len(fns)}")
        self.lr_lambdas = fns
        super().__init__(opt, last_epoch)

    def _lr(self, base_lr, i, epoch):
        return base_lr * self.lr_lambdas[i](epoch)

    def state_dict(self) -> dict[str, Any]:
        d = super().state_dict()
        del d["lr_lambdas"]  # functions are not state (torch keeps only callable objects)
        return d

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict({**state_dict, "lr_lambdas": self.lr_lambdas})


class StepLR(LRScheduler):
    """lr = base_lr * gamma ** (epoch // step_size)."""

    def __init__(self, optimizer: Any, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        if isinstance(step_size, bool) or not isinstance(step_size, int) or step_size <= 0:
            raise ValueError(f"StepLR: step_size must be a positive integer, got {step_size!r}")
        self.step_size, self.gamma = step_size, float(gamma)
        super().__init__(optimizer, last_epoch)

    def _lr(self, base_lr, i, epoch):
        return base_lr * self.gamma ** (epoch // self.step_size)


class MultiStepLR(LRScheduler):
    """lr = base_lr * gamma ** (number of milestones <= epoch)."""

    def __init__(self, optimizer: Any, milestones: Sequence[int], gamma: float = 0.1,
                 last_epoch: int = -1):  # fmt: skip
        ms = sorted(int(m) for m in milestones)
        if any(m < 0 for m in ms):
            raise ValueError(f"MultiStepLR: milestones must be non-negative, got {milestones}")
        self.milestones, self.gamma = ms, float(gamma)
        super().__init__(optimizer, last_epoch)

    def _lr(self, base_lr, i, epoch):
        return base_lr * self.gamma ** bisect_right(self.milestones, epoch)


class ExponentialLR(LRScheduler):
    """lr = base_lr * gamma ** epoch."""

    def __init__(self, optimizer: Any, gamma: float, last_epoch: int = -1):
        if not gamma > 0:
            raise ValueError(f"ExponentialLR: gamma must be > 0, got {gamma}")
        self.gamma = float(gamma)
        super().__init__(optimizer, last_epoch)

    def _lr(self, base_lr, i, epoch):
        return base_lr * self.gamma**epoch


class LinearLR(LRScheduler):
    """lr = base_lr * (start + (end - start) * min(epoch, total_iters) / total_iters).

    ``total_steps`` is accepted as the seed's name for ``total_iters``.
    """

    def __init__(self, optimizer: Any, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5, last_epoch: int = -1, *,
                 total_steps: int | None = None):  # fmt: skip
        if not 0 < start_factor <= 1:
            raise ValueError("Starting multiplicative factor expected to be greater than 0 and "
                             "less or equal to 1.")  # fmt: skip
        if not 0 <= end_factor <= 1:
            raise ValueError("Ending multiplicative factor expected to be between 0 and 1.")
        total = total_iters if total_steps is None else total_steps
        if int(total) < 0:
            raise ValueError(f"LinearLR: total_iters must be >= 0, got {total}")
        self.start_factor, self.end_factor = float(start_factor), float(end_factor)
        self.total_iters = int(total)
        super().__init__(optimizer, last_epoch)

    def _lr(self, base_lr, i, epoch):
        if self.total_iters == 0:
            return base_lr * self.end_factor
        frac = min(epoch, self.total_iters) / self.total_iters
        return base_lr * (self.start_factor + (self.end_factor - self.start_factor) * frac)


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2.

    Like torch the curve continues periodically after ``T_max``. ``total_steps`` and
    ``min_lr`` are accepted as the seed's names.
    """

    def __init__(self, optimizer: Any, T_max: int | None = None, eta_min: float = 0.0,  # noqa: N803
                 last_epoch: int = -1, *, total_steps: int | None = None,
                 min_lr: float | None = None):  # fmt: skip
        t_max = T_max if total_steps is None else total_steps
        if t_max is None or int(t_max) <= 0:
            raise ValueError(f"CosineAnnealingLR: T_max must be a positive integer, got {t_max}")
        self.T_max = int(t_max)
        self.eta_min = float(eta_min if min_lr is None else min_lr)
        super().__init__(optimizer, last_epoch)

    def _lr(self, base_lr, i, epoch):
        cos = 1.0 + math.cos(math.pi * epoch / self.T_max)
        return self.eta_min + (base_lr - self.eta_min) * cos / 2


class CosineWarmupLR(LRScheduler):
    """Linear warmup from 0 to base_lr over ``warmup_steps``, then cosine to ``min_lr``
    at ``total_steps``, then ``min_lr``::

        epoch <  W:      base_lr * epoch / W                  (so lr is 0 at epoch 0)
        W <= epoch < T:  min_lr + (base_lr - min_lr) * (1 + cos(pi (epoch - W) / (T - W))) / 2
        epoch >= T:      min_lr

    ``min_lr`` may be one value or one per group.
    """

    def __init__(self, optimizer: Any, warmup_steps: int, total_steps: int,
                 min_lr: float | Sequence[float] = 0.0, last_epoch: int = -1):  # fmt: skip
        if int(warmup_steps) < 0 or int(total_steps) < 0:
            raise ValueError("CosineWarmupLR: warmup_steps and total_steps must be >= 0")
        if warmup_steps > total_steps:
            raise ValueError(f"CosineWarmupLR: warmup_steps ({warmup_steps}) must not exceed "
                             f"total_steps ({total_steps})")  # fmt: skip
        opt = _as_optimizer(optimizer)
        self.warmup_steps, self.total_steps = int(warmup_steps), int(total_steps)
        self.min_lrs = _per_group("min_lr", min_lr, len(opt.param_groups))
        super().__init__(opt, last_epoch)

    def _lr(self, base_lr, i, epoch):
        w, t, lo = self.warmup_steps, self.total_steps, self.min_lrs[i]
        if epoch < w:
            return base_lr * epoch / w
        if epoch >= t:
            return lo
        return lo + (base_lr - lo) * (1.0 + math.cos(math.pi * (epoch - w) / (t - w))) / 2


class ReduceLROnPlateau:
    """``torch.optim.lr_scheduler.ReduceLROnPlateau``: scale the lrs by ``factor`` when a
    metric has not improved for more than ``patience`` steps.

    Args:
        optimizer: the optimizer (or a number: the seed's standalone spelling).
        mode: ``"min"`` (lower is better) or ``"max"``.
        factor: lr multiplier on a plateau, < 1.
        patience: bad steps tolerated before reducing (reduces after ``patience + 1``).
        threshold: what counts as an improvement, relative (``threshold_mode="rel"``,
            ``best * (1 -/+ threshold)``) or absolute (``"abs"``, ``best -/+ threshold``).
        cooldown: steps to wait after a reduction before counting bad steps again.
        min_lr: lower bound, one value or one per group.
        eps: reductions smaller than this are skipped.
    """

    def __init__(self, optimizer: Any, mode: str = "min", factor: float = 0.1,
                 patience: int = 10, threshold: float = 1e-4, threshold_mode: str = "rel",
                 cooldown: int = 0, min_lr: float | Sequence[float] = 0.0,
                 eps: float = 1e-8):  # fmt: skip
        if factor >= 1.0:
            raise ValueError("Factor should be < 1.0.")
        if mode not in ("min", "max"):
            raise ValueError(f"mode {mode} is unknown!")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold mode {threshold_mode} is unknown!")
        if int(patience) < 0 or int(cooldown) < 0:
            raise ValueError("ReduceLROnPlateau: patience and cooldown must be >= 0")
        self.optimizer = _as_optimizer(optimizer)
        self.min_lrs = _per_group("min_lr", min_lr, len(self.optimizer.param_groups))
        self.mode, self.threshold_mode = mode, threshold_mode
        self.factor, self.patience, self.threshold = float(factor), int(patience), threshold
        self.cooldown, self.eps = int(cooldown), float(eps)
        self.last_epoch = 0
        self._last_lr = [float(g["lr"]) for g in self.optimizer.param_groups]
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0

    def is_better(self, a: float, best: float) -> bool:
        t = self.threshold
        if self.mode == "min":
            return a < (best * (1.0 - t) if self.threshold_mode == "rel" else best - t)
        return a > (best * (t + 1.0) if self.threshold_mode == "rel" else best + t)

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def step(self, metrics: float) -> float:
        """Record ``metrics`` (a number or 1-element tensor); returns the first group's lr."""
        current = float(metrics)
        self.last_epoch += 1
        if self.is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            for g, lo in zip(self.optimizer.param_groups, self.min_lrs):
                old = float(g["lr"])
                new = max(old * self.factor, lo)
                if old - new > self.eps:
                    g["lr"] = new
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = [float(g["lr"]) for g in self.optimizer.param_groups]
        return self._last_lr[0]

    step_metric = step  # the seed's name

    def get_last_lr(self) -> list[float]:
        return list(self._last_lr)

    def current_lr(self) -> float:
        return self._last_lr[0]

    state_dict = LRScheduler.state_dict
    load_state_dict = LRScheduler.load_state_dict
