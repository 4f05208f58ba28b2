"""The scheduler base: base lrs, the initial step, chained vs closed-form updates, state dicts.

Every scheduler follows ``torch.optim.lr_scheduler.LRScheduler``:

* construction records each group's ``initial_lr`` (``group.setdefault``, so a second
  scheduler on the same optimizer sees the same base lrs) and performs the initial step
  (epoch 0);
* ``step()`` advances one epoch and calls ``get_lr()``, the **chainable** form, which
  computes the new lr from the group's *current* lr (``lr * gamma`` ...). Several
  schedulers on one optimizer therefore combine multiplicatively, and an lr changed by
  hand (or by another scheduler) is carried forward, exactly as in torch;
* ``step(epoch)`` jumps to ``epoch`` and uses the closed form from the base lrs
  (``_get_closed_form_lr``) where one exists.

The expressions are torch's, term for term, so the lrs are bit-identical to torch's for
Python-float lrs. A group lr may be a one-element shrew tensor (``lr=sc.tensor(1e-3)``):
it is updated in place, like torch's tensor lrs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shrew_core import Tensor

from ..optimizer import check_lr, set_group_value


class _LrHolder:
    """Stand-in optimizer for the seed's ``Scheduler(initial_lr, ...)`` spelling."""

    def __init__(self, lr: float):
        check_lr(lr)
        self.defaults = {"lr": float(lr)}
        self.param_groups = [{"lr": float(lr)}]


def as_optimizer(optimizer: Any):
    """The optimizer, or a one-group stand-in for a bare number (the seed's spelling)."""
    if isinstance(optimizer, (int, float)) and not isinstance(optimizer, bool):
        return _LrHolder(optimizer)
    if not hasattr(optimizer, "param_groups"):
        raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
    return optimizer


def copy_value(v: Any) -> Any:
    """``v``, or a copy when it is a tensor (so a saved list never aliases a group's lr)."""
    return v.clone() if isinstance(v, Tensor) else v


def group_values(optimizer: Any, key: str) -> list[Any]:
    """``group[key]`` of every group (tensors copied)."""
    return [copy_value(g[key]) for g in optimizer.param_groups]


def per_group(name: str, value: Any, optimizer: Any) -> list[Any]:
    """One value per param group: a list/tuple of that length, or one value repeated."""
    n = len(optimizer.param_groups)
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"expected {n} values for {name}, got {len(value)}")
        return [copy_value(v) for v in value]
    return [copy_value(value) for _ in range(n)]


class LRScheduler:
    """Base class: subclasses implement ``get_lr()`` (the chainable form, reading the
    groups' current lrs) and optionally ``_get_closed_form_lr()`` (from ``base_lrs``).

    Attributes:
        optimizer: the wrapped optimizer.
        base_lrs: each group's ``initial_lr``.
        last_epoch: the epoch whose lr is set (0 after construction).
    """

    _is_initial: bool = False

    def __init__(self, optimizer: Any, last_epoch: int = -1):
        self.optimizer = as_optimizer(optimizer)
        if last_epoch == -1:
            for g in self.optimizer.param_groups:
                g.setdefault("initial_lr", copy_value(g["lr"]))
        else:
            for i, g in enumerate(self.optimizer.param_groups):
                if "initial_lr" not in g:
                    raise KeyError(f"param 'initial_lr' is not specified in param_groups[{i}] "
                                   "when resuming a scheduler with last_epoch >= 0: load the "
                                   "optimizer's state dict first")  # fmt: skip
        self.base_lrs = group_values(self.optimizer, "initial_lr")
        self.last_epoch = int(last_epoch)
        self._initial_step()

    def _initial_step(self) -> None:
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def get_lr(self) -> list[Any]:
        """The lrs for ``last_epoch`` from the groups' current lrs (what ``step()`` sets)."""
        raise NotImplementedError

    def step(self, epoch: int | None = None) -> float:
        """Advance one epoch (or jump to ``epoch``, closed form) and set the groups' lrs;
        returns the first group's new lr (the seed returned it; torch returns None)."""
        self._step_count += 1
        return self._update_lr(epoch)

    def _update_lr(self, epoch: int | None) -> float:
        if epoch is None:
            self.last_epoch += 1
            values = self.get_lr()
        else:
            self.last_epoch = epoch
            closed = getattr(self, "_get_closed_form_lr", None)
            values = closed() if closed is not None else self.get_lr()
        for g, lr in zip(self.optimizer.param_groups, values):
            set_group_value(g, "lr", lr)
        self._last_lr = group_values(self.optimizer, "lr")
        return float(self._last_lr[0])

    def get_last_lr(self) -> list[Any]:
        """The lr of every group as last set by this scheduler."""
        return list(self._last_lr)

    # the seed's spellings
    def current_lr(self) -> float:
        return float(self._last_lr[0])

    def current_step(self) -> int:
        return self.last_epoch

    # ------------------------------------------------------------------ state dicts
    _not_state: tuple[str, ...] = ("optimizer",)

    def state_dict(self) -> dict[str, Any]:
        """Everything but the optimizer (and functions), plus the scheduler's type."""
        d = {k: (list(v) if isinstance(v, list) else v) for k, v in self.__dict__.items()
             if k not in self._not_state}  # fmt: skip
        d["scheduler"] = type(self).__name__
        return d

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore ``state_dict()``; a dict of another scheduler type or for another number
        of param groups is rejected and nothing changes. The optimizer's lrs are left as
        they are (restore the optimizer's own state dict for those)."""
        self._check_state(state_dict)
        for k, v in state_dict.items():
            if k != "scheduler":
                self.__dict__[k] = list(v) if isinstance(v, list) else v

    def _check_state(self, state_dict: dict[str, Any]) -> None:
        name = type(self).__name__
        if not isinstance(state_dict, dict):
            raise ValueError(f"{name}.load_state_dict: expected a dict")
        saved = state_dict.get("scheduler", name)
        if saved != name:
            raise ValueError(f"Cannot load {saved} state into {name} scheduler")
        missing = set(self.__dict__) - set(self._not_state) - set(state_dict)
        if missing:
            raise ValueError(f"Cannot load {name} state: missing {sorted(missing)}")
        n = len(self.optimizer.param_groups)
        lrs = state_dict.get("base_lrs", state_dict.get("_last_lr"))
        if isinstance(lrs, Sequence) and len(lrs) != n:
            raise ValueError(f"Cannot load {name} state: it was saved for a different number "
                             "of parameter groups")  # fmt: skip
