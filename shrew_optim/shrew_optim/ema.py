"""EMA: an exponential moving average of parameters (shadow weights) for evaluation."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import shrew_core as sc
from shrew_core import ShapeError, Tensor

from .optimizer import fresh_copy


class EMA:
    """Shadow weights ``s = decay * s + (1 - decay) * p``, updated after optimizer steps.

    Args:
        params: the variables to track (snapshotted as the initial shadow). f16/bf16
            parameters get an f32 shadow.
        decay: the EMA decay in [0, 1] (default 0.999).
        warmup: use ``min(decay, (1 + n) / (10 + n))`` at the n-th update (n from 1), so
            early averages are not dominated by the initial weights.

    ``apply()`` swaps the shadow into the parameters (keeping a backup) for evaluation;
    ``restore()`` puts the live weights back. ``average_parameters()`` does both as a
    context manager.

    Example:
        >>> ema = EMA(params, decay=0.99)  # doctest: +SKIP
        >>> opt.step(grads); ema.update()
        >>> with ema.average_parameters():
        ...     evaluate(model)
    """

    def __init__(self, params: Iterable[Tensor], decay: float = 0.999, warmup: bool = False):
        ps = [params] if isinstance(params, Tensor) else list(params)
        if not ps:
            raise ValueError("EMA got an empty parameter list")
        for i, p in enumerate(ps):
            if not isinstance(p, Tensor) or not p.dtype.is_float:
                raise TypeError(f"EMA: parameter {i} must be a floating-point Tensor")
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"Invalid decay value: {decay}")
        self.params = ps
        self.decay = float(decay)
        self.warmup = bool(warmup)
        self.num_updates = 0
        with sc.no_grad():
            self.shadow = [fresh_copy(p, self._dtype(p)) for p in ps]
        self._backup: list[Tensor] | None = None

    @staticmethod
    def _dtype(p: Tensor):
        return sc.f32 if p.dtype in (sc.f16, sc.bf16) else p.dtype

    def effective_decay(self) -> float:
        """The decay the next ``update()`` uses."""
        if not self.warmup:
            return self.decay
        n = self.num_updates + 1
        return min(self.decay, (1.0 + n) / (10.0 + n))

    def update(self, params: Iterable[Tensor] | None = None) -> None:
        """Fold the current parameter values (or ``params``, matched by position and
        checked by shape) into the shadow."""
        ps = self.params if params is None else list(params)
        if len(ps) != len(self.shadow):
            raise ValueError(f"EMA.update: expected {len(self.shadow)} parameters, got {len(ps)}")
        for i, (s, p) in enumerate(zip(self.shadow, ps)):
            if tuple(p.shape) != tuple(s.shape):
                raise ShapeError(f"EMA.update: parameter {i} has shape {p.shape}, the shadow "
                                 f"{s.shape}")  # fmt: skip
        d = self.effective_decay()
        self.num_updates += 1
        with sc.no_grad():
            for s, p in zip(self.shadow, ps):
                s.copy_(s * d + p.detach().to(s.dtype) * (1.0 - d))

    def update_with_warmup(self, params: Iterable[Tensor] | None = None) -> None:
        """The seed's name: ``update`` with warmup on for this call."""
        warm, self.warmup = self.warmup, True
        try:
            self.update(params)
        finally:
            self.warmup = warm

    def apply(self) -> None:
        """Back up the live weights and write the shadow into the parameters in place."""
        with sc.no_grad():
            self._backup = [fresh_copy(p) for p in self.params]
            for p, s in zip(self.params, self.shadow):
                p.detach().copy_(s)

    def restore(self) -> None:
        """Write the backed-up live weights back (nothing happens without a backup)."""
        if self._backup is None:
            return
        with sc.no_grad():
            for p, b in zip(self.params, self._backup):
                p.detach().copy_(b)
        self._backup = None

    @contextmanager
    def average_parameters(self) -> Iterator[None]:
        """``with ema.average_parameters():`` evaluates with the shadow weights."""
        self.apply()
        try:
            yield
        finally:
            self.restore()

    def shadow_values(self, i: int) -> Tensor:
        return self.shadow[i]

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "warmup": self.warmup, "num_updates": self.num_updates,
                "shadow": [fresh_copy(s) for s in self.shadow]}  # fmt: skip

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore ``state_dict()``; shapes are checked first and nothing changes on error."""
        shadow = list(state_dict["shadow"])
        if len(shadow) != len(self.shadow):
            raise ValueError(f"EMA.load_state_dict: {len(shadow)} shadow tensors for "
                             f"{len(self.shadow)} parameters")  # fmt: skip
        for i, (s, v) in enumerate(zip(self.shadow, shadow)):
            if tuple(v.shape) != tuple(s.shape):
                raise ValueError(f"EMA.load_state_dict: shadow {i} has shape {tuple(v.shape)}, "
                                 f"expected {tuple(s.shape)}")  # fmt: skip
        new = [fresh_copy(v if isinstance(v, Tensor) else sc.tensor(v, device=s.device), s.dtype)
               for s, v in zip(self.shadow, shadow)]  # fmt: skip
        self.decay = float(state_dict["decay"])
        self.warmup = bool(state_dict.get("warmup", False))
        self.num_updates = int(state_dict["num_updates"])
        self.shadow = new
