"""GradScaler: dynamic loss scaling with ``torch.amp.GradScaler``'s exact semantics.

The scale is an f32 number (like torch's f32 scale tensor). Per iteration::

    grads = scaler.scale(loss).backward()
    scaler.step(optimizer, grads)   # unscales (unless unscale_ ran), skips on inf/NaN
    scaler.update()

``unscale_(optimizer, grads)`` multiplies the GradStore's gradients by the f32 ``1 / scale``
(computed in f64 then rounded, as torch does) in place — the store's entries are replaced —
and records whether any gradient held an inf or NaN. ``step`` then skips the optimizer for
that iteration. ``update`` multiplies the scale by ``backoff_factor`` after a step with
inf/NaN (resetting the growth tracker), else counts a good step and, at the
``growth_interval``-th consecutive one, multiplies it by ``growth_factor`` (if the result is
finite) and resets the tracker.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

import shrew_core as sc
from shrew_core import GradStore, ShrewError, Tensor

_READY, _UNSCALED, _STEPPED = 0, 1, 2


def _all_finite(g: Tensor) -> bool:
    """No inf/NaN in ``g`` (``x * 0`` is 0 exactly when ``x`` is finite), on any backend."""
    return bool(((g * 0.0) == 0.0).all().item())


class AmpError(ShrewError, RuntimeError):
    """GradScaler calls in the wrong order (torch raises RuntimeError there)."""


class _OptState:
    __slots__ = ("stage", "found_inf")

    def __init__(self) -> None:
        self.stage = _READY
        self.found_inf = False


class GradScaler:
    """Dynamic loss scaling for f16/bf16 training (torch.amp.GradScaler).

    Args:
        init_scale: the first scale (65536 = 2**16).
        growth_factor: multiplies the scale after ``growth_interval`` good steps (> 1).
        backoff_factor: multiplies the scale after a step with inf/NaN gradients (in (0, 1)).
        growth_interval: consecutive good steps before growing.
        enabled: ``False`` makes every method a pass-through (``get_scale()`` is 1.0).
    """

    def __init__(
        self,
        init_scale: float = 65536.0,
        growth_factor: float = 2.0,
        backoff_factor: float = 0.5,
        growth_interval: int = 2000,
        enabled: bool = True,
    ) -> None:
        if not growth_factor > 1.0:
            raise ValueError(f"GradScaler: the growth factor must be > 1.0, got {growth_factor}")
        if not 0.0 < backoff_factor < 1.0:
            raise ValueError(f"GradScaler: the backoff factor must be < 1.0, got {backoff_factor}")
        if isinstance(growth_interval, bool) or not isinstance(growth_interval, int) or (
            growth_interval <= 0
        ):
            raise ValueError(f"GradScaler: growth_interval must be a positive int, got "
                             f"{growth_interval!r}")  # fmt: skip
        self._enabled = bool(enabled)
        self._scale = np.float32(init_scale)
        self._growth_factor = float(growth_factor)
        self._backoff_factor = float(backoff_factor)
        self._growth_interval = growth_interval
        self._growth_tracker = 0
        self._states: dict[int, _OptState] = {}
        self.last_step_skipped = False

    # ------------------------------------------------------------------ scaling
    def scale(self, outputs: Any) -> Any:
        """``outputs`` (a tensor, or nested lists/tuples of them) multiplied by the scale."""
        if not self._enabled:
            return outputs
        if isinstance(outputs, Tensor):
            return outputs * float(self._scale)
        if isinstance(outputs, (list, tuple)):
            return type(outputs)(self.scale(o) for o in outputs)
        raise TypeError(f"GradScaler.scale: expected a Tensor or a list/tuple of them, got "
                        f"{type(outputs).__name__}")  # fmt: skip

    def _state(self, optimizer) -> _OptState:
        return self._states.setdefault(id(optimizer), _OptState())

    def unscale_(self, optimizer, grads: GradStore) -> GradStore:
        """Divide ``grads`` by the scale in place (entries replaced) and record inf/NaN."""
        if not self._enabled:
            return grads
        if not isinstance(grads, GradStore):
            raise TypeError(f"GradScaler.unscale_: expected a GradStore, got "
                            f"{type(grads).__name__}")  # fmt: skip
        state = self._state(optimizer)
        if state.stage == _UNSCALED:
            raise AmpError("unscale_() has already been called on this optimizer since the last "
                           "update().")  # fmt: skip
        if state.stage == _STEPPED:
            raise AmpError("unscale_() is being called after step().")
        inv_scale = float(np.float32(1.0 / np.float64(self._scale)))
        found_inf = False
        with sc.no_grad():
            for t, g in grads.items():
                if not found_inf and not _all_finite(g):
                    found_inf = True
                grads[t] = g * inv_scale
        state.found_inf = found_inf
        state.stage = _UNSCALED
        return grads

    def step(self, optimizer, grads: GradStore, *args: Any, **kwargs: Any) -> Any:
        """``optimizer.step(grads)`` unless the (unscaled) gradients hold inf/NaN; returns
        its result, or None when the step is skipped."""
        if not self._enabled:
            return optimizer.step(grads, *args, **kwargs)
        state = self._state(optimizer)
        if state.stage == _STEPPED:
            raise AmpError("step() has already been called since the last update().")
        if state.stage == _READY:
            self.unscale_(optimizer, grads)
        self.last_step_skipped = state.found_inf
        result = None if state.found_inf else optimizer.step(grads, *args, **kwargs)
        state.stage = _STEPPED
        return result

    def update(self, new_scale: float | Tensor | None = None) -> None:
        """Adjust the scale from this iteration's inf/NaN checks (or set ``new_scale``)."""
        if not self._enabled:
            return
        if new_scale is not None:
            value = new_scale.item() if isinstance(new_scale, Tensor) else new_scale
            self._scale = np.float32(value)
        else:
            checks = [s.found_inf for s in self._states.values() if s.stage != _READY]
            if not checks:
                raise AmpError("No inf checks were recorded prior to update.")
            if any(checks):
                self._scale = np.float32(np.float64(self._scale) * self._backoff_factor)
                self._growth_tracker = 0
            else:
                successful = self._growth_tracker + 1
                if successful == self._growth_interval:
                    grown = np.float32(np.float64(self._scale) * self._growth_factor)
                    if math.isfinite(grown):
                        self._scale = grown
                    self._growth_tracker = 0
                else:
                    self._growth_tracker = successful
        self._states = {}

    # ------------------------------------------------------------------ accessors
    def get_scale(self) -> float:
        return float(self._scale) if self._enabled else 1.0

    def get_growth_factor(self) -> float:
        return self._growth_factor

    def set_growth_factor(self, new_factor: float) -> None:
        self._growth_factor = float(new_factor)

    def get_backoff_factor(self) -> float:
        return self._backoff_factor

    def set_backoff_factor(self, new_factor: float) -> None:
        self._backoff_factor = float(new_factor)

    def get_growth_interval(self) -> int:
        return self._growth_interval

    def set_growth_interval(self, new_interval: int) -> None:
        self._growth_interval = int(new_interval)

    def is_enabled(self) -> bool:
        return self._enabled

    def state_dict(self) -> dict[str, Any]:
        """torch's keys: scale, growth_factor, backoff_factor, growth_interval,
        _growth_tracker (empty when disabled)."""
        if not self._enabled:
            return {}
        return {
            "scale": self.get_scale(),
            "growth_factor": self._growth_factor,
            "backoff_factor": self._backoff_factor,
            "growth_interval": self._growth_interval,
            "_growth_tracker": self._growth_tracker,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if not self._enabled:
            return
        if not state_dict:
            raise AmpError("The source state dict is empty, possibly because it was saved "
                           "from a disabled instance of GradScaler.")  # fmt: skip
        self._scale = np.float32(state_dict["scale"])
        self._growth_factor = float(state_dict["growth_factor"])
        self._backoff_factor = float(state_dict["backoff_factor"])
        self._growth_interval = int(state_dict["growth_interval"])
        self._growth_tracker = int(state_dict["_growth_tracker"])
