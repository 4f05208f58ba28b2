"""``ReduceLROnPlateau``: scale the groups' current lrs when a metric stops improving."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ..optimizer import set_group_value
from ._base import LRScheduler, as_optimizer, group_values, per_group


class ReduceLROnPlateau(LRScheduler):
    """``torch.optim.lr_scheduler.ReduceLROnPlateau``: multiply every group's *current* lr
    by ``factor`` when ``metrics`` has not improved for more than ``patience`` steps (so it
    chains with any epoch scheduler stepped on the same optimizer).

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
        self.optimizer = as_optimizer(optimizer)
        self.default_min_lr = None if isinstance(min_lr, (list, tuple)) else min_lr
        self.min_lrs = per_group("min_lr", min_lr, self.optimizer)
        self.mode, self.threshold_mode = mode, threshold_mode
        self.factor, self.patience, self.threshold = factor, int(patience), threshold
        self.cooldown, self.eps = int(cooldown), eps
        self.last_epoch = 0
        self._last_lr = group_values(self.optimizer, "lr")
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

    def step(self, metrics: float, epoch: int | None = None) -> float:  # type: ignore[override]
        """Record ``metrics`` (a number or 1-element tensor); returns the first group's lr."""
        current = float(metrics)
        self.last_epoch = self.last_epoch + 1 if epoch is None else int(epoch)
        if self.is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = group_values(self.optimizer, "lr")
        return float(self._last_lr[0])

    step_metric = step  # the seed's name

    def _reduce_lr(self) -> None:
        groups = self.optimizer.param_groups
        if len(groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise RuntimeError(f"ReduceLROnPlateau: the optimizer has {len(groups)} param "
                                   f"groups but min_lr has {len(self.min_lrs)} values (a group "
                                   "was added); set min_lrs to one value per group")
            self.min_lrs = [self.default_min_lr] * len(groups)
        for g, lo in zip(groups, self.min_lrs):
            old = float(g["lr"])
            new = max(old * self.factor, lo)
            if old - new > self.eps:
                set_group_value(g, "lr", new)
