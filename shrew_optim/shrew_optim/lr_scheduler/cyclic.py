"""Cyclical schedules: ``CyclicLR``, ``OneCycleLR`` and ``CosineAnnealingWarmRestarts``.

These compute each lr from their own bounds (torch does the same: they are not
chainable), and ``CyclicLR``/``OneCycleLR`` also cycle the momentum (``momentum``, or
``betas[0]`` for Adam-style optimizers) in the opposite direction.
"""

from __future__ import annotations

import math
import types
from typing import Any, Literal

from ..optimizer import set_group_value
from ._base import LRScheduler, as_optimizer, group_values, per_group


def _momentum_key(optimizer: Any) -> bool:
    """True when the optimizer's momentum is ``betas[0]``; raises if it has none."""
    defaults = getattr(optimizer, "defaults", {})
    if "momentum" not in defaults and "betas" not in defaults:
        raise ValueError("optimizer must support momentum or beta1 with `cycle_momentum` "
                         "option enabled")  # fmt: skip
    return "betas" in defaults


def _set_momentum(group: dict[str, Any], use_beta1: bool, value: Any) -> None:
    if use_beta1:
        group["betas"] = (value, *group["betas"][1:])
    else:
        group["momentum"] = value


class CyclicLR(LRScheduler):
    """Cycle the lr between ``base_lr`` and ``max_lr`` (Smith, 2017), every batch.

    Args:
        optimizer: the optimizer.
        base_lr, max_lr: the bounds, one value or one per group.
        step_size_up, step_size_down: iterations of the rising / falling half
            (``step_size_down`` defaults to ``step_size_up``).
        mode: ``"triangular"``, ``"triangular2"`` (amplitude halves each cycle) or
            ``"exp_range"`` (amplitude ``gamma ** iteration``); ignored with ``scale_fn``.
        gamma: of ``"exp_range"``.
        scale_fn, scale_mode: a custom amplitude ``scale_fn(cycle | iteration)``.
        cycle_momentum: cycle the momentum between ``max_momentum`` and ``base_momentum``.
    """

    def __init__(self, optimizer: Any, base_lr, max_lr, step_size_up: int = 2000,
                 step_size_down: int | None = None,
                 mode: Literal["triangular", "triangular2", "exp_range"] = "triangular",
                 gamma: float = 1.0, scale_fn=None,
                 scale_mode: Literal["cycle", "iterations"] = "cycle",
                 cycle_momentum: bool = True, base_momentum: float = 0.8,
                 max_momentum: float = 0.9, last_epoch: int = -1):  # fmt: skip
        opt = as_optimizer(optimizer)
        base_lrs = per_group("base_lr", base_lr, opt)
        if last_epoch == -1:
            for lr, g in zip(base_lrs, opt.param_groups):
                set_group_value(g, "lr", lr)
        self.max_lrs = per_group("max_lr", max_lr, opt)
        up = float(step_size_up)
        down = float(step_size_down) if step_size_down is not None else up
        if up <= 0 or down < 0:
            raise ValueError(f"CyclicLR: step sizes must be positive, got {step_size_up}, "
                             f"{step_size_down}")  # fmt: skip
        self.total_size = up + down
        self.step_ratio = up / self.total_size
        if mode not in ("triangular", "triangular2", "exp_range") and scale_fn is None:
            raise ValueError("mode is invalid and scale_fn is None")
        self.mode, self.gamma = mode, gamma
        self._scale_fn_custom = scale_fn
        self.scale_mode = scale_mode if scale_fn is not None else (
            "iterations" if mode == "exp_range" else "cycle")  # fmt: skip
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            self.use_beta1 = _momentum_key(opt)
            self.base_momentums = per_group("base_momentum", base_momentum, opt)
            self.max_momentums = per_group("max_momentum", max_momentum, opt)
            if last_epoch == -1:
                for m_max, m_base, g in zip(self.max_momentums, self.base_momentums,
                                            opt.param_groups):  # fmt: skip
                    _set_momentum(g, self.use_beta1, m_max)
                    g["max_momentum"], g["base_momentum"] = m_max, m_base
        super().__init__(opt, last_epoch)
        self.base_lrs = base_lrs

    def scale_fn(self, x: float) -> float:
        if self._scale_fn_custom is not None:
            return self._scale_fn_custom(x)
        if self.mode == "triangular":
            return 1.0
        if self.mode == "triangular2":
            return 1 / (2.0 ** (x - 1))
        return self.gamma**x

    def get_lr(self) -> list[Any]:
        cycle = math.floor(1 + self.last_epoch / self.total_size)
        x = 1.0 + self.last_epoch / self.total_size - cycle
        if x <= self.step_ratio:
            scale_factor = x / self.step_ratio
        else:
            scale_factor = (x - 1) / (self.step_ratio - 1)
        amp = self.scale_fn(cycle if self.scale_mode == "cycle" else self.last_epoch)
        lrs = [b + ((m - b) * scale_factor) * amp for b, m in zip(self.base_lrs, self.max_lrs)]
        if self.cycle_momentum:
            for g, m_base, m_max in zip(self.optimizer.param_groups, self.base_momentums,
                                        self.max_momentums):  # fmt: skip
                _set_momentum(g, self.use_beta1, m_max - ((m_max - m_base) * scale_factor) * amp)
        return lrs

    def state_dict(self) -> dict[str, Any]:
        d = super().state_dict()
        fn = d.pop("_scale_fn_custom")
        keep = fn is not None and not isinstance(fn, types.FunctionType)
        d["_scale_fn_custom"] = dict(fn.__dict__) if keep else None
        return d

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        saved = state_dict.get("_scale_fn_custom")
        fn = self._scale_fn_custom
        super().load_state_dict({**state_dict, "_scale_fn_custom": fn})
        if saved is not None and fn is not None:
            fn.__dict__.update(saved)


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith & Topin, 2018): the lr rises from ``max_lr / div_factor``
    to ``max_lr`` over ``pct_start`` of ``total_steps``, then anneals to
    ``initial_lr / final_div_factor`` (``three_phase``: back to the initial lr first);
    the momentum moves the opposite way. Step it after every batch.

    Args:
        optimizer: the optimizer.
        max_lr: peak lr, one value or one per group.
        total_steps: the number of steps, or ``epochs * steps_per_epoch``.
        pct_start: fraction of the cycle spent rising.
        anneal_strategy: ``"cos"`` or ``"linear"``.
        cycle_momentum, base_momentum, max_momentum: the momentum cycle.
        div_factor, final_div_factor, three_phase: as in torch.
    """

    def __init__(self, optimizer: Any, max_lr, total_steps: int | None = None,
                 epochs: int | None = None, steps_per_epoch: int | None = None,
                 pct_start: float = 0.3, anneal_strategy: Literal["cos", "linear"] = "cos",
                 cycle_momentum: bool = True, base_momentum: float = 0.85,
                 max_momentum: float = 0.95, div_factor: float = 25.0,
                 final_div_factor: float = 1e4, three_phase: bool = False,
                 last_epoch: int = -1):  # fmt: skip
        opt = as_optimizer(optimizer)
        if total_steps is not None:
            if isinstance(total_steps, bool) or not isinstance(total_steps, int) or \
                    total_steps <= 0:  # fmt: skip
                raise ValueError(f"Expected positive integer total_steps, but got {total_steps}")
            self.total_steps = total_steps
        elif epochs is not None and steps_per_epoch is not None:
            for name, v in (("epochs", epochs), ("steps_per_epoch", steps_per_epoch)):
                if not isinstance(v, int) or v <= 0:
                    raise ValueError(f"Expected positive integer {name}, but got {v}")
            self.total_steps = epochs * steps_per_epoch
        else:
            raise ValueError("You must define either total_steps OR (epochs AND steps_per_epoch)")
        if not isinstance(pct_start, float) or not 0 <= pct_start <= 1:
            raise ValueError(f"Expected float between 0 and 1 pct_start, but got {pct_start}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError("anneal_strategy must be one of 'cos' or 'linear', instead got "
                             f"{anneal_strategy}")  # fmt: skip
        self._anneal_func_type = anneal_strategy
        n = self.total_steps
        up = {"start_lr": "initial_lr", "end_lr": "max_lr", "start_momentum": "max_momentum",
              "end_momentum": "base_momentum"}  # fmt: skip
        if three_phase:
            self._schedule_phases = [
                {"end_step": float(pct_start * n) - 1, **up},
                {"end_step": float(2 * pct_start * n) - 2, "start_lr": "max_lr",
                 "end_lr": "initial_lr", "start_momentum": "base_momentum",
                 "end_momentum": "max_momentum"},
                {"end_step": n - 1, "start_lr": "initial_lr", "end_lr": "min_lr",
                 "start_momentum": "max_momentum", "end_momentum": "max_momentum"},
            ]  # fmt: skip
        else:
            self._schedule_phases = [
                {"end_step": float(pct_start * n) - 1, **up},
                {"end_step": n - 1, "start_lr": "max_lr", "end_lr": "min_lr",
                 "start_momentum": "base_momentum", "end_momentum": "max_momentum"},
            ]  # fmt: skip
        max_lrs = per_group("max_lr", max_lr, opt)
        if last_epoch == -1:
            for m, g in zip(max_lrs, opt.param_groups):
                g["initial_lr"] = m / div_factor
                g["max_lr"] = m
                g["min_lr"] = g["initial_lr"] / final_div_factor
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            self.use_beta1 = _momentum_key(opt)
            maxes = per_group("max_momentum", max_momentum, opt)
            bases = per_group("base_momentum", base_momentum, opt)
            if last_epoch == -1:
                for m_max, m_base, g in zip(maxes, bases, opt.param_groups):
                    _set_momentum(g, self.use_beta1, m_max)
                    g["max_momentum"], g["base_momentum"] = m_max, m_base
        super().__init__(opt, last_epoch)

    def _anneal(self, start, end, pct):
        if self._anneal_func_type == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self) -> list[Any]:
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueError(f"Tried to step {step} times. The specified number of total "
                             f"steps is {self.total_steps}")  # fmt: skip
        lrs = []
        last = len(self._schedule_phases) - 1
        for g in self.optimizer.param_groups:
            start = 0.0
            for i, phase in enumerate(self._schedule_phases):
                end = phase["end_step"]
                if step <= end or i == last:
                    pct = (step - start) / (end - start)
                    lr = self._anneal(g[phase["start_lr"]], g[phase["end_lr"]], pct)
                    if self.cycle_momentum:
                        mom = self._anneal(g[phase["start_momentum"]], g[phase["end_momentum"]],
                                           pct)  # fmt: skip
                        _set_momentum(g, self.use_beta1, mom)
                    break
                start = end
            lrs.append(lr)
        return lrs


class CosineAnnealingWarmRestarts(LRScheduler):
    """SGDR (Loshchilov & Hutter, 2017): cosine from the base lr to ``eta_min`` over
    ``T_i`` epochs, restarting with ``T_i = T_0 * T_mult ** restarts``. ``step(epoch)``
    accepts fractional epochs (``step(epoch + batch / n_batches)``)."""

    def __init__(self, optimizer: Any, T_0: int, T_mult: int = 1, eta_min: float = 0.0,  # noqa: N803
                 last_epoch: int = -1):  # fmt: skip
        if isinstance(T_0, bool) or not isinstance(T_0, int) or T_0 <= 0:
            raise ValueError(f"Expected positive integer T_0, but got {T_0}")
        if isinstance(T_mult, bool) or not isinstance(T_mult, int) or T_mult < 1:
            raise ValueError(f"Expected integer T_mult >= 1, but got {T_mult}")
        if not isinstance(eta_min, (float, int)):
            raise ValueError(f"Expected float or int eta_min, but got {eta_min} of type "
                             f"{type(eta_min)}")  # fmt: skip
        self.T_0, self.T_i, self.T_mult, self.eta_min = T_0, T_0, T_mult, eta_min
        self.T_cur = last_epoch
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[Any]:
        cos = 1 + math.cos(math.pi * self.T_cur / self.T_i)
        return [self.eta_min + (b - self.eta_min) * cos / 2 for b in self.base_lrs]

    def step(self, epoch: float | None = None) -> float:
        self._step_count += 1
        if epoch is None and self.last_epoch < 0:
            epoch = 0
        if epoch is None:
            epoch = self.last_epoch + 1
            self.T_cur = self.T_cur + 1
            if self.T_cur >= self.T_i:
                self.T_cur = self.T_cur % self.T_i
                self.T_i = self.T_i * self.T_mult
        else:
            if epoch < 0:
                raise ValueError(f"Expected non-negative epoch, but got {epoch}")
            if epoch >= self.T_0:
                if self.T_mult == 1:
                    self.T_cur = epoch % self.T_0
                else:
                    n = int(math.log((epoch / self.T_0 * (self.T_mult - 1) + 1), self.T_mult))
                    self.T_cur = epoch - self.T_0 * (self.T_mult**n - 1) / (self.T_mult - 1)
                    self.T_i = self.T_0 * self.T_mult ** (n)
            else:
                self.T_i = self.T_0
                self.T_cur = epoch
        self.last_epoch = math.floor(epoch)
        for g, lr in zip(self.optimizer.param_groups, self.get_lr()):
            set_group_value(g, "lr", lr)
        self._last_lr = group_values(self.optimizer, "lr")
        return float(self._last_lr[0])
