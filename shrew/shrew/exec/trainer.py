"""The Trainer: fits a program's model graph as its ``@training`` block says.

It reads the model graph, the loss, the optimizer (type, lr and its extras such as
``beta1``/``weight_decay``/``momentum``), the lr schedule, gradient clipping,
accumulation steps, epochs and batch size, and drives shrew_optim and shrew_data
with them. The loss compares the model graph's first output with the targets.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

import shrew_core as sc
import shrew_nn.functional as F
import shrew_optim as optim
from shrew_data import DataLoader, TensorDataset

from .config import RuntimeConfig
from .errors import ExecutionError
from .executor import Executor, _load_module

_LOSSES: dict[str, Callable] = {
    "cross_entropy": F.cross_entropy,
    "cross_entropy_loss": F.cross_entropy,
    "mse": F.mse_loss,
    "mse_loss": F.mse_loss,
    "l1": F.l1_loss,
    "l1_loss": F.l1_loss,
    "mae": F.l1_loss,
    "nll": F.nll_loss,
    "nll_loss": F.nll_loss,
    "bce": F.binary_cross_entropy,
    "binary_cross_entropy": F.binary_cross_entropy,
    "bce_with_logits": F.binary_cross_entropy_with_logits,
}
_OPTIMIZERS = {
    "sgd": optim.SGD,
    "adam": optim.Adam,
    "adamw": optim.AdamW,
    "radam": optim.RAdam,
    "rmsprop": optim.RMSprop,
}


@dataclass
class EpochLog:
    epoch: int
    loss: float
    seconds: float
    lr: float
    metrics: dict = field(default_factory=dict)


@dataclass
class TrainResult:
    epochs: list[EpochLog] = field(default_factory=list)

    @property
    def final_loss(self) -> float:
        return self.epochs[-1].loss if self.epochs else float("nan")

    def __str__(self) -> str:
        lines = [f"Training complete - {len(self.epochs)} epochs"]
        lines += [f"  epoch {e.epoch}: loss = {e.loss:.6f}" for e in self.epochs]
        return "\n".join(lines + [f"  final loss: {self.final_loss:.6f}"])


class Trainer:
    """Trains ``executor``'s model graph with the settings of ``module.training``."""

    def __init__(self, executor: Executor, fp32_fallback: bool = False):
        training = executor.module.training
        if training is None:
            raise ExecutionError("the program has no @training block; cannot build a Trainer")
        self.executor = executor
        self.training = training
        self.graph = training.model or executor.graph_names()[0]
        self.loss_name = training.loss
        if self.loss_name not in _LOSSES:
            raise ExecutionError(
                f"@training: unknown loss {self.loss_name!r}; supported: "
                f"{', '.join(sorted(_LOSSES))}"
            )
        if training.precision not in ("fp32", "f32", "float32") and not fp32_fallback:
            raise NotImplementedError(
                f"@training precision {training.precision!r}: mixed-precision training is not "
                "implemented; train in fp32 (Trainer(..., fp32_fallback=True), CLI --fp32)"
            )
        self.optimizer = self._build_optimizer()
        self.epochs = int(training.epochs)
        self.batch_size = int(training.batch_size)
        self.accumulation = max(1, int(training.accumulation_steps))

    def _build_optimizer(self):
        cfg = self.training.optimizer
        cls = _OPTIMIZERS.get(cfg.type.lower())
        if cls is None:
            raise ExecutionError(
                f"@training: unknown optimizer {cfg.type!r}; supported: "
                "SGD, Adam, AdamW, RAdam, RMSprop"
            )
        extra = dict(cfg.extra)
        if "beta1" in extra or "beta2" in extra:
            extra["betas"] = (extra.pop("beta1", 0.9), extra.pop("beta2", 0.999))
        if "epsilon" in extra:
            extra["eps"] = extra.pop("epsilon")
        try:
            return cls(self.executor.parameters(self.graph), lr=cfg.lr, **extra)
        except TypeError as e:
            raise ExecutionError(f"@training optimizer {cfg.type}: {e}") from None

    def _build_schedule(self, steps: int):
        spec = dict(self.training.lr_schedule or {})
        kind = str(spec.pop("type", "none")).lower()
        warmup = int(spec.get("warmup_steps", 0))
        min_lr = float(spec.get("min_lr", 0.0))
        if kind in ("none", "constant"):
            return None
        if kind == "cosine":
            if warmup:
                return optim.CosineWarmupLR(self.optimizer, min(warmup, steps), steps, min_lr)
            return optim.CosineAnnealingLR(self.optimizer, T_max=steps, eta_min=min_lr)
        if kind == "step":
            return optim.StepLR(
                self.optimizer, int(spec.get("step_size", 1)), float(spec.get("gamma", 0.1))
            )
        if kind == "exponential":
            return optim.ExponentialLR(self.optimizer, float(spec.get("gamma", 0.99)))
        if kind == "linear":
            return optim.LinearLR(
                self.optimizer,
                float(spec.get("start_factor", 1.0)),
                float(spec.get("end_factor", 0.0)),
                steps,
            )
        raise ExecutionError(
            f"@training lr_schedule: unknown type {kind!r}; supported: "
            "cosine, step, exponential, linear, none"
        )

    def _clip(self, grads):
        spec = self.training.grad_clip
        if not spec:
            return grads
        if str(spec.get("type", "norm")) == "value":
            return optim.clip_grad_value(grads, float(spec.get("value", spec.get("max", 1.0))))
        optim.clip_grad_norm(grads, float(spec.get("max_norm", 1.0)))
        return grads

    # ------------------------------------------------------------------ data and loss
    def _input_name(self) -> str:
        names = self.executor.input_names(self.graph)
        if len(names) != 1:
            raise ExecutionError(
                f"graph {self.graph!r} has inputs {names}; pass a dict of "
                "arrays keyed by input name"
            )
        return names[0]

    def _loader(self, inputs, targets, batch_size: int, shuffle: bool, seed: int) -> DataLoader:
        if isinstance(inputs, Mapping):
            names = list(inputs)
            arrays = [np.asarray(inputs[n]) for n in names]
        else:
            names, arrays = [self._input_name()], [np.asarray(inputs)]
        self._names = names
        return DataLoader(
            TensorDataset(*arrays, np.asarray(targets)),
            batch_size=batch_size,
            shuffle=shuffle,
            seed=seed,
            device=self.executor.device,
        )

    def loss(self, output: sc.Tensor, target: sc.Tensor) -> sc.Tensor:
        if self.loss_name.startswith("cross_entropy") and not target.dtype.is_float:
            if output.ndim > 2:  # [B, S, C] logits with [B, S] targets
                output, target = output.reshape(-1, output.shape[-1]), target.reshape(-1)
        elif target.dtype != output.dtype and output.dtype.is_float:
            target = target.to(output.dtype)
            if target.shape != output.shape and target.numel == output.numel:
                target = target.reshape(output.shape)
        return _LOSSES[self.loss_name](output, target)

    def _forward(self, batch) -> tuple[sc.Tensor, sc.Tensor]:
        *xs, y = batch
        outputs = self.executor.run(self.graph, dict(zip(self._names, xs)))
        return next(iter(outputs.values())), y

    # ------------------------------------------------------------------ public API
    def fit(
        self,
        inputs,
        targets,
        epochs: int | None = None,
        batch_size: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        validation=None,
        on_epoch: Callable[[EpochLog], None] | None = None,
    ) -> TrainResult:
        """Train on ``inputs`` (an array, or a dict of arrays by input name) and ``targets``;
        ``validation=(inputs, targets)`` adds validation loss/accuracy to each epoch's log."""
        epochs = self.epochs if epochs is None else epochs
        loader = self._loader(inputs, targets, batch_size or self.batch_size, shuffle, seed)
        steps = max(1, math.ceil(len(loader) / self.accumulation) * epochs)
        schedule = self._build_schedule(steps)
        accumulator = optim.GradAccumulator(self.accumulation) if self.accumulation > 1 else None
        self.executor.train()
        result = TrainResult()
        for epoch in range(epochs):
            start, total, count = time.perf_counter(), 0.0, 0
            for batch in loader:
                out, y = self._forward(batch)
                loss = self.loss(out, y)
                grads = loss.backward()
                if accumulator is not None:
                    grads = accumulator.step(grads)
                if grads is not None:
                    self.optimizer.step(self._clip(grads))
                    if schedule is not None:
                        schedule.step()
                total += loss.item()
                count += 1
            log = EpochLog(
                epoch, total / max(count, 1), time.perf_counter() - start, self.optimizer.lr
            )
            if validation is not None:
                log.metrics = self.evaluate(*validation)
                self.executor.train()
            result.epochs.append(log)
            if on_epoch is not None:
                on_epoch(log)
        self.executor.eval()
        return result

    def evaluate(self, inputs, targets, batch_size: int = 256) -> dict[str, float]:
        """Mean loss, and accuracy for classification losses, in eval mode."""
        self.executor.eval()
        loader = self._loader(inputs, targets, batch_size, False, 0)
        total = correct = n = 0.0
        classify = self.loss_name in ("cross_entropy", "cross_entropy_loss", "nll", "nll_loss")
        with sc.no_grad():
            for batch in loader:
                out, y = self._forward(batch)
                total += self.loss(out, y).item() * y.shape[0]
                if classify and not y.dtype.is_float:
                    correct += float((out.argmax(-1) == y).sum().item())
                n += y.shape[0]
        metrics = {"loss": total / max(n, 1)}
        if classify:
            metrics["accuracy"] = correct / max(n, 1)
        return metrics

    def predict(self, inputs) -> sc.Tensor:
        self.executor.eval()
        with sc.no_grad():
            name = self._input_name() if not isinstance(inputs, Mapping) else None
            feed = inputs if name is None else {name: inputs}
            return next(iter(self.executor.run(self.graph, feed).values()))


def load_trainer(
    source,
    config: RuntimeConfig | None = None,
    *,
    fp32_fallback: bool = False,
    filename: str | None = None,
) -> Trainer:
    """Like ``load_program``, then a Trainer from the program's ``@training`` block."""
    config = config or RuntimeConfig()
    return Trainer(Executor(_load_module(source, config, filename), config), fp32_fallback)
