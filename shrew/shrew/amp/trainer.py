"""MixedPrecisionTrainer: the seed's one-call training step, with real mixed precision.

Unlike the original (which never cast an f32 model), the forward and the loss run under
``autocast(compute_dtype)`` — the model's matmuls/convs really compute in f16/bf16 while its
parameters, gradients and optimizer state stay f32 — and the loss is scaled by a GradScaler
(torch semantics: a step whose gradients hold inf/NaN is skipped and the scale backs off).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import shrew_core as sc
from shrew_core import Tensor
from shrew_core.autocast import LOW_PRECISION

from .autocast_mode import autocast
from .grad_scaler import GradScaler


@dataclass
class LossScaleConfig:
    """The seed's loss-scale settings. ``scale_backoff_factor`` divides the scale (2.0 halves
    it), i.e. GradScaler's ``backoff_factor = 1 / scale_backoff_factor``."""

    init_scale: float = 65536.0
    scale_growth_factor: float = 2.0
    scale_backoff_factor: float = 2.0
    growth_interval: int = 2000

    def to_grad_scaler(self) -> GradScaler:
        return GradScaler(
            init_scale=self.init_scale,
            growth_factor=self.scale_growth_factor,
            backoff_factor=1.0 / self.scale_backoff_factor,
            growth_interval=self.growth_interval,
        )


class MixedPrecisionTrainer:
    """Train ``model`` with ``optimizer`` computing in ``compute_dtype``.

    Args:
        model: a Module with f32 parameters (or a DistributedDataParallel: its ``backward``
            is used, so gradients are averaged over ranks).
        optimizer: a shrew_optim optimizer over the model's parameters.
        compute_dtype: ``bf16`` or ``f16`` (autocast), or ``f32``/``f64`` (no autocast).
        loss_scale: a GradScaler, a LossScaleConfig, ``None`` (``GradScaler()``) or ``False``
            (no loss scaling).

    ``train_step(x, y, loss_fn)`` returns ``{"loss", "skipped", "loss_scale",
    "total_skipped", "compute_dtype"}``: the unscaled loss, whether the optimizer step was
    skipped (inf/NaN gradients), the scale after the update, the number of skipped steps so
    far and the compute dtype.
    """

    def __init__(
        self,
        model,
        optimizer,
        compute_dtype=sc.bf16,
        loss_scale: GradScaler | LossScaleConfig | bool | None = None,
    ) -> None:
        self.model = model
        self.optimizer = optimizer
        self.compute_dtype = sc.as_dtype(compute_dtype)
        if not self.compute_dtype.is_float:
            raise ValueError(f"MixedPrecisionTrainer: compute_dtype must be a float dtype, got "
                             f"{self.compute_dtype}")  # fmt: skip
        if isinstance(loss_scale, GradScaler):
            self.scaler = loss_scale
        elif isinstance(loss_scale, LossScaleConfig):
            self.scaler = loss_scale.to_grad_scaler()
        elif loss_scale is None or loss_scale is True:
            self.scaler = GradScaler()
        elif loss_scale is False:
            self.scaler = GradScaler(enabled=False)
        else:
            raise TypeError(f"MixedPrecisionTrainer: loss_scale must be a GradScaler, a "
                            f"LossScaleConfig, None or a bool, got {type(loss_scale).__name__}")
        self.total_skipped = 0

    def _autocast(self):
        if self.compute_dtype in LOW_PRECISION:
            return autocast(self.compute_dtype)
        return nullcontext()

    def train_step(self, x: Tensor, y: Tensor, loss_fn: Callable) -> dict[str, Any]:
        with self._autocast():
            loss = loss_fn(self.model(x), y)
        scaled = self.scaler.scale(loss)
        backward = getattr(self.model, "backward", None)
        grads = backward(scaled) if callable(backward) else scaled.backward()
        self.scaler.step(self.optimizer, grads)
        skipped = self.scaler.is_enabled() and self.scaler.last_step_skipped
        self.scaler.update()
        self.total_skipped += int(skipped)
        return {
            "loss": float(loss.item()),
            "skipped": bool(skipped),
            "loss_scale": self.scaler.get_scale(),
            "total_skipped": self.total_skipped,
            "compute_dtype": self.compute_dtype,
        }
