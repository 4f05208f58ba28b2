"""Epoch schedulers: Lambda, Multiplicative, Step, MultiStep, Constant, Linear, Exponential,
Polynomial, CosineAnnealing (torch's chainable forms) and the seed's CosineWarmupLR.

Each ``get_lr`` is torch's chainable expression on the groups' current lrs, and each
``_get_closed_form_lr`` (used by ``step(epoch)``) is torch's closed form on ``base_lrs``.
"""

from __future__ import annotations

import math
import types
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ._base import LRScheduler, as_optimizer, group_values, per_group


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{name} must be {kind}, got {value!r}")
    return value


def _current(s: LRScheduler) -> list[Any]:
    return group_values(s.optimizer, "lr")


class _LambdaState:
    """torch's state-dict rule for ``lr_lambdas``: functions are not state; a callable
    object's ``__dict__`` is."""

    lr_lambdas: list[Callable[[int], float]]

    def _lambdas(self, lr_lambda, optimizer) -> list[Callable[[int], float]]:
        n = len(optimizer.param_groups)
        fns = list(lr_lambda) if isinstance(lr_lambda, (list, tuple)) else [lr_lambda] * n
        if len(fns) != n:
            raise ValueError(f"Expected {n} lr_lambdas, but got {len(fns)}")
        for fn in fns:
            if not callable(fn):
                raise TypeError(f"lr_lambda should be a function, but got {type(fn).__name__}")
        return fns

    def state_dict(self) -> dict[str, Any]:
        d = LRScheduler.state_dict(self)  # type: ignore[arg-type]
        d["lr_lambdas"] = [None if isinstance(fn, types.FunctionType) else dict(fn.__dict__)
                           for fn in self.lr_lambdas]  # fmt: skip
        return d

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        saved = state_dict.get("lr_lambdas") or [None] * len(self.lr_lambdas)
        fns = self.lr_lambdas
        LRScheduler.load_state_dict(self, {**state_dict, "lr_lambdas": fns})  # type: ignore
        for fn, attrs in zip(fns, saved):
            if attrs is not None:
                fn.__dict__.update(attrs)


class LambdaLR(_LambdaState, LRScheduler):
    """lr = base_lr * lr_lambda(epoch); one function, or one per group. Not chainable
    (torch's rule): it overwrites the lr at every step."""

    def __init__(self, optimizer: Any, lr_lambda, last_epoch: int = -1):
        opt = as_optimizer(optimizer)
        self.lr_lambdas = self._lambdas(lr_lambda, opt)
        super().__init__(opt, last_epoch)

    def get_lr(self) -> list[Any]:
        return [b * fn(self.last_epoch) for fn, b in zip(self.lr_lambdas, self.base_lrs)]


class MultiplicativeLR(_LambdaState, LRScheduler):
    """lr = lr * lr_lambda(epoch) at every step after construction (chainable)."""

    def __init__(self, optimizer: Any, lr_lambda, last_epoch: int = -1):
        opt = as_optimizer(optimizer)
        self.lr_lambdas = self._lambdas(lr_lambda, opt)
        super().__init__(opt, last_epoch)

    def get_lr(self) -> list[Any]:
        if self._is_initial:
            return _current(self)
        return [g["lr"] * fn(self.last_epoch)
                for fn, g in zip(self.lr_lambdas, self.optimizer.param_groups)]  # fmt: skip


class StepLR(LRScheduler):
    """Multiply the lr by ``gamma`` every ``step_size`` epochs:
    closed form ``base_lr * gamma ** (epoch // step_size)``."""

    def __init__(self, optimizer: Any, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        self.step_size = _check_int("StepLR: step_size", step_size, 1)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[Any]:
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return _current(self)
        return [g["lr"] * self.gamma for g in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list[Any]:
        return [b * self.gamma ** (self.last_epoch // self.step_size) for b in self.base_lrs]


class MultiStepLR(LRScheduler):
    """Multiply the lr by ``gamma`` at each milestone (a repeated milestone counts twice):
    closed form ``base_lr * gamma ** #(milestones <= epoch)``."""

    def __init__(self, optimizer: Any, milestones: Iterable[int], gamma: float = 0.1,
                 last_epoch: int = -1):  # fmt: skip
        ms = [int(m) for m in milestones]
        if any(m < 0 for m in ms):
            raise ValueError(f"MultiStepLR: milestones must be non-negative, got {ms}")
        self.milestones = Counter(ms)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[Any]:
        if self.last_epoch not in self.milestones:
            return _current(self)
        factor = self.gamma ** self.milestones[self.last_epoch]
        return [g["lr"] * factor for g in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list[Any]:
        ms = sorted(self.milestones.elements())
        return [b * self.gamma ** bisect_right(ms, self.last_epoch) for b in self.base_lrs]


class ConstantLR(LRScheduler):
    """lr * ``factor`` until epoch ``total_iters``, then the lr divided back:
    closed form ``base_lr * (factor if epoch < total_iters else 1)``."""

    def __init__(self, optimizer: Any, factor: float = 1.0 / 3, total_iters: int = 5,
                 last_epoch: int = -1):  # fmt: skip
        if factor > 1.0 or factor < 0:
            raise ValueError("Constant multiplicative factor expected to be between 0 and 1.")
        self.factor = factor
        self.total_iters = _check_int("ConstantLR: total_iters", total_iters, 0)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[Any]:
        if self.last_epoch == 0:
            return [g["lr"] * self.factor for g in self.optimizer.param_groups]
        if self.last_epoch != self.total_iters:
            return _current(self)
        return [g["lr"] * (1.0 / self.factor) for g in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list[Any]:
        f = self.factor + (self.last_epoch >= self.total_iters) * (1 - self.factor)
        return [b * f for b in self.base_lrs]


class LinearLR(LRScheduler):
    """The factor goes linearly from ``start_factor`` (epoch 0) to ``end_factor`` (epoch
    ``total_iters``), then stays. ``total_iters=0`` keeps ``start_factor`` (torch's rule).

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
        self.start_factor, self.end_factor = start_factor, end_factor
        self.total_iters = _check_int("LinearLR: total_iters", total, 0)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[Any]:
        if self.last_epoch == 0:
            return [g["lr"] * self.start_factor for g in self.optimizer.param_groups]
        if self._is_initial or self.last_epoch > self.total_iters:
            return _current(self)
        d = self.end_factor - self.start_factor
        f = 1.0 + d / (self.total_iters * self.start_factor + (self.last_epoch - 1) * d)
        return [g["lr"] * f for g in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list[Any]:
        if self.total_iters == 0:
            return [b * self.start_factor for b in self.base_lrs]
        frac = min(self.total_iters, self.last_epoch) / self.total_iters
        return [b * (self.start_factor + (self.end_factor - self.start_factor) * frac)
                for b in self.base_lrs]  # fmt: skip


class ExponentialLR(LRScheduler):
    """lr * ``gamma`` every epoch: closed form ``base_lr * gamma ** epoch``."""

    def __init__(self, optimizer: Any, gamma: float, last_epoch: int = -1):
        if not gamma > 0:
            raise ValueError(f"ExponentialLR: gamma must be > 0, got {gamma}")
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[Any]:
        if self._is_initial:
            return _current(self)
        return [g["lr"] * self.gamma for g in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list[Any]:
        return [b * self.gamma**self.last_epoch for b in self.base_lrs]


class PolynomialLR(LRScheduler):
    """Polynomial decay to 0 over ``total_iters`` epochs:
    closed form ``base_lr * (1 - min(epoch, total_iters) / total_iters) ** power``."""

    def __init__(self, optimizer: Any, total_iters: int = 5, power: float = 1.0,
                 last_epoch: int = -1):  # fmt: skip
        self.total_iters = _check_int("PolynomialLR: total_iters", total_iters, 0)
        self.power = power
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[Any]:
        if self._is_initial or self.last_epoch > self.total_iters:
            return _current(self)
        t, e = self.total_iters, self.last_epoch
        decay = ((1.0 - e / t) / (1.0 - (e - 1) / t)) ** self.power
        return [g["lr"] * decay for g in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list[Any]:
        if self.total_iters == 0:
            return list(self.base_lrs)
        frac = min(self.total_iters, self.last_epoch) / self.total_iters
        return [b * (1.0 - frac) ** self.power for b in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """Cosine from the lr to ``eta_min`` over ``T_max`` epochs, continuing periodically
    (torch's chainable recurrence); closed form
    ``eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2``.

    ``total_steps`` and ``min_lr`` are accepted as the seed's names.
    """

    def __init__(self, optimizer: Any, T_max: int | None = None, eta_min: float = 0.0,  # noqa: N803
                 last_epoch: int = -1, *, total_steps: int | None = None,
                 min_lr: float | None = None):  # fmt: skip
        t_max = T_max if total_steps is None else total_steps
        if t_max is None or isinstance(t_max, bool) or int(t_max) <= 0:
            raise ValueError(f"CosineAnnealingLR: T_max must be a positive integer, got {t_max}")
        self.T_max = int(t_max)
        self.eta_min = eta_min if min_lr is None else min_lr
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[Any]:
        e, t, lo = self.last_epoch, self.T_max, self.eta_min
        groups = self.optimizer.param_groups
        if self._is_initial:
            return _current(self)
        if self._step_count == 1 and e > 0:
            return [lo + (b - lo) * (1 + math.cos(e * math.pi / t)) / 2 for b in self.base_lrs]
        if (e - 1 - t) % (2 * t) == 0:
            return [g["lr"] + (b - lo) * (1 - math.cos(math.pi / t)) / 2
                    for b, g in zip(self.base_lrs, groups)]  # fmt: skip
        ratio = (1 + math.cos(math.pi * e / t)) / (1 + math.cos(math.pi * (e - 1) / t))
        return [ratio * (g["lr"] - lo) + lo for g in groups]

    def _get_closed_form_lr(self) -> list[Any]:
        cos = 1 + math.cos(math.pi * self.last_epoch / self.T_max)
        return [self.eta_min + (b - self.eta_min) * cos / 2 for b in self.base_lrs]


class CosineWarmupLR(LRScheduler):
    """Linear warmup from 0 to base_lr over ``warmup_steps``, then cosine to ``min_lr``
    at ``total_steps``, then ``min_lr`` (the seed's schedule; like ``LambdaLR`` it
    overwrites the lr at every step)::

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
        opt = as_optimizer(optimizer)
        self.warmup_steps, self.total_steps = int(warmup_steps), int(total_steps)
        self.min_lrs = [float(v) for v in per_group("min_lr", min_lr, opt)]
        super().__init__(opt, last_epoch)

    def get_lr(self) -> list[Any]:
        return [self._at(b, lo, self.last_epoch) for b, lo in zip(self.base_lrs, self.min_lrs)]

    _get_closed_form_lr = get_lr

    def _at(self, base_lr, lo, epoch):
        w, t = self.warmup_steps, self.total_steps
        if epoch < w:
            return base_lr * epoch / w
        if epoch >= t:
            return lo
        return lo + (base_lr - lo) * (1.0 + math.cos(math.pi * (epoch - w) / (t - w))) / 2
