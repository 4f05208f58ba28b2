"""Trainer callbacks in the style of Keras/Lightning: hooks called during ``Trainer.fit``.

``logs`` passed to the hooks are plain dicts: per step ``{"batch", "step", "loss", "lr",
"grad_norm"?, <step-tracked metrics>}``; per epoch the epoch's metrics (``loss``, ``lr``,
each track, ``val_*``). A callback stops training by setting ``trainer.stop_training``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable


class Callback:
    """Base class; override the hooks you need."""

    def on_train_begin(self, trainer) -> None:
        pass

    def on_epoch_begin(self, trainer, epoch: int) -> None:
        pass

    def on_step_end(self, trainer, step: int, logs: dict) -> None:
        pass

    def on_epoch_end(self, trainer, epoch: int, logs: dict) -> None:
        pass

    def on_train_end(self, trainer, result) -> None:
        pass


class LambdaCallback(Callback):
    """Plain functions as hooks: ``LambdaCallback(on_epoch_end=lambda t, e, logs: ...)``."""

    def __init__(self, on_train_begin: Callable | None = None,
                 on_epoch_begin: Callable | None = None, on_step_end: Callable | None = None,
                 on_epoch_end: Callable | None = None,
                 on_train_end: Callable | None = None):  # fmt: skip
        for name, fn in (("on_train_begin", on_train_begin), ("on_epoch_begin", on_epoch_begin),
                         ("on_step_end", on_step_end), ("on_epoch_end", on_epoch_end),
                         ("on_train_end", on_train_end)):  # fmt: skip
            if fn is not None:
                setattr(self, name, fn)


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience``
    epochs (Keras semantics). ``mode`` "min", "max" or "auto" (max for accuracy-like
    names). ``restore_best_weights`` loads the best epoch's parameters at the end."""

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0.0, patience: int = 0,
                 mode: str = "auto", restore_best_weights: bool = False,
                 baseline: float | None = None):  # fmt: skip
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"EarlyStopping: mode must be auto, min or max, got {mode!r}")
        self.monitor, self.min_delta, self.patience = monitor, abs(float(min_delta)), int(patience)
        if mode == "auto":
            mode = "max" if any(s in monitor for s in ("acc", "f1", "auc")) else "min"
        self.mode = mode
        self.restore_best_weights, self.baseline = restore_best_weights, baseline
        self.stopped_epoch: int | None = None
        self.best_epoch: int | None = None

    def _better(self, current: float, best: float) -> bool:
        if self.mode == "min":
            return current < best - self.min_delta
        return current > best + self.min_delta

    def on_train_begin(self, trainer) -> None:
        self.wait = 0
        self.best = math.inf if self.mode == "min" else -math.inf
        if self.baseline is not None:
            self.best = float(self.baseline)
        self.best_weights = None
        self.stopped_epoch = self.best_epoch = None
        self._warned = False

    def on_epoch_end(self, trainer, epoch: int, logs: dict) -> None:
        current = logs.get(self.monitor)
        if current is None or math.isnan(current):
            if not self._warned:
                warnings.warn(
                    f"EarlyStopping: metric {self.monitor!r} is not available; available: "
                    f"{', '.join(sorted(logs))}",
                    stacklevel=2,
                )
                self._warned = True
            return
        if self._better(current, self.best):
            self.best, self.wait, self.best_epoch = current, 0, epoch
            if self.restore_best_weights:
                self.best_weights = trainer.executor.state_dict()
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            trainer.stop_training = True

    def on_train_end(self, trainer, result) -> None:
        if self.restore_best_weights and self.best_weights is not None:
            trainer.executor.load_state_dict(self.best_weights)


class CallbackList(Callback):
    """Calls every callback's hook in order."""

    def __init__(self, callbacks):
        self.callbacks = list(callbacks)

    def on_train_begin(self, trainer) -> None:
        for c in self.callbacks:
            c.on_train_begin(trainer)

    def on_epoch_begin(self, trainer, epoch: int) -> None:
        for c in self.callbacks:
            c.on_epoch_begin(trainer, epoch)

    def on_step_end(self, trainer, step: int, logs: dict) -> None:
        for c in self.callbacks:
            c.on_step_end(trainer, step, logs)

    def on_epoch_end(self, trainer, epoch: int, logs: dict) -> None:
        for c in self.callbacks:
            c.on_epoch_end(trainer, epoch, logs)

    def on_train_end(self, trainer, result) -> None:
        for c in self.callbacks:
            c.on_train_end(trainer, result)
