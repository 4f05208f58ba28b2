"""The Trainer: fits a program's model graph as its ``@training``, ``@metrics``, ``@logging``
and ``@visualizations`` blocks say.

``@training`` fields:

* ``model`` (default: the first graph), ``loss`` (see ``LOSSES``), compared with the model
  graph's first output;
* ``optimizer: { type; lr; ... }``: SGD, Adam, AdamW, RAdam, RMSprop with every keyword of
  the shrew_optim class (``beta1``/``beta2`` or ``betas``, ``eps``/``epsilon``,
  ``weight_decay``, ``momentum``, ``dampening``, ``nesterov``, ``amsgrad``, ``alpha``,
  ``centered``, ``maximize``, ``decoupled_weight_decay``, ``master_weights``);
* ``lr_schedule: { type; ... }``: ``constant``, ``cosine`` (``T_max``/``total_steps``,
  ``min_lr``/``eta_min``), ``step`` (``step_size``, ``gamma``), ``multistep``
  (``milestones``, ``gamma``), ``exponential`` (``gamma``), ``linear`` (``start_factor``,
  ``end_factor``, ``total_iters``), ``plateau`` (ReduceLROnPlateau's keywords and
  ``monitor``, default ``val_loss`` else ``loss``, stepped per epoch); ``warmup_steps``
  (linear from 0) in front of any of them but plateau; ``interval: "step"`` (default,
  per optimizer step) or ``"epoch"``;
* ``grad_clip: { type: norm; max_norm; norm_type; }`` or ``{ type: value; value; }``;
* ``accumulation_steps`` (mean of the micro-batch gradients; a partial group at the end of
  an epoch is applied too), ``epochs``, ``batch_size``, ``shuffle`` (default true),
  ``seed`` (data order; default ``@config seed``, else 0), ``validation_split`` (a seeded
  fraction held out when ``fit`` gets no ``validation=``), ``early_stopping: { monitor:
  "val_loss", patience: 3, min_delta: 0.0, mode: "min", restore_best: true };`` (a dict
  value: commas, then ``;``);
* ``precision``: ``fp32``, or ``bf16``/``f16`` mixed precision through ``shrew.amp``
  (forward and loss under ``autocast``; f16 adds a ``GradScaler``).

Metrics, the run log and plots: ``metrics.py``, ``logger.py``, ``plots.py``; callbacks:
``callbacks.py``; checkpoints and resume through ``shrew.io``; ``@inference quantization``
through ``shrew.quantization``.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import shrew_core as sc
import shrew_nn.functional as F
import shrew_optim as optim
from shrew_data import DataLoader, TensorDataset

from . import metrics as M
from .callbacks import Callback, CallbackList, EarlyStopping, LambdaCallback
from .config import RuntimeConfig
from .errors import ExecutionError
from .executor import Executor, _load_module
from .logger import RunLogger
from .schedules import build_schedule

LOSSES: dict[str, Callable] = {
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
_LOSSES = LOSSES  # the name used before
_OPTIMIZERS = {
    "sgd": optim.SGD,
    "adam": optim.Adam,
    "adamw": optim.AdamW,
    "radam": optim.RAdam,
    "rmsprop": optim.RMSprop,
}
_TRAINING_EXTRAS = ("shuffle", "seed", "validation_split", "early_stopping")
_PRECISIONS = {"fp32": "fp32", "f32": "fp32", "float32": "fp32", "bf16": sc.bf16,
               "bfloat16": sc.bf16, "f16": sc.f16, "fp16": sc.f16, "float16": sc.f16}  # fmt: skip


@dataclass
class EpochLog:
    epoch: int
    loss: float
    seconds: float
    lr: float
    metrics: dict = field(default_factory=dict)


@dataclass
class TrainResult:
    """Per-epoch logs (``epochs``), per-step records (``steps``), and what was written."""

    epochs: list[EpochLog] = field(default_factory=list)
    steps: list[dict] = field(default_factory=list)
    plots: dict[str, Path] = field(default_factory=dict)
    report: Path | None = None
    log_file: Path | None = None
    stopped_epoch: int | None = None

    @property
    def final_loss(self) -> float:
        return self.epochs[-1].loss if self.epochs else float("nan")

    @property
    def history(self) -> dict[str, list[float]]:
        """Keras-style: metric name -> one value per epoch (``loss``, ``lr``, tracks, val_*)."""
        keys: list[str] = ["loss", "lr"]
        for e in self.epochs:
            keys += [k for k in e.metrics if k not in keys]
        out: dict[str, list[float]] = {k: [] for k in keys}
        for e in self.epochs:
            row = {"loss": e.loss, "lr": e.lr, **e.metrics}
            for k in keys:
                out[k].append(row.get(k, float("nan")))
        return out

    def __str__(self) -> str:
        lines = [f"Training complete - {len(self.epochs)} epochs"]
        lines += [f"  epoch {e.epoch}: loss = {e.loss:.6f}" for e in self.epochs]
        return "\n".join(lines + [f"  final loss: {self.final_loss:.6f}"])


class Trainer:
    """Trains ``executor``'s model graph with the settings of ``module.training``."""

    def __init__(self, executor: Executor, fp32_fallback: bool = False):
        module = executor.module
        training = module.training
        if training is None:
            raise ExecutionError("the program has no @training block; cannot build a Trainer")
        self.executor = executor
        self.training = training
        self.graph = training.model or executor.graph_names()[0]
        self.loss_name = training.loss
        if self.loss_name not in LOSSES:
            raise ExecutionError(
                f"@training: unknown loss {self.loss_name!r}; supported: "
                f"{', '.join(sorted(LOSSES))}"
            )
        unknown = set(training.extra) - set(_TRAINING_EXTRAS)
        if unknown:
            raise ExecutionError(
                f"@training: unknown field(s) {', '.join(sorted(unknown))}; besides model, "
                "loss, optimizer, lr_schedule, grad_clip, precision, epochs, batch_size and "
                f"accumulation_steps the block takes {', '.join(_TRAINING_EXTRAS)}"
            )
        self.precision = str(training.precision).lower()
        self.amp_dtype, self.scaler = (None, None) if fp32_fallback else self._mixed_precision()
        self.optimizer = self._build_optimizer()
        self.scheduler = None
        self.epochs = int(training.epochs)
        self.batch_size = int(training.batch_size)
        self.accumulation = max(1, int(training.accumulation_steps))
        extra = training.extra
        self.shuffle = bool(extra.get("shuffle", True))
        seed = extra.get("seed", executor.config.seed)
        self.seed = 0 if seed is None else int(seed)
        self.validation_split = float(extra.get("validation_split", 0.0))
        if not 0.0 <= self.validation_split < 1.0:
            raise ExecutionError(
                f"@training validation_split must be in [0, 1), got {self.validation_split}"
            )
        self.tracks = M.parse_tracks(module.metrics, self.loss_name)
        self.logging = dict(module.logging or {})
        self.plots = dict(module.visualizations or {})
        self.stop_training = False
        self.global_step = 0
        self.optimizer_steps = 0

    # ------------------------------------------------------------------ runtime modules
    def _mixed_precision(self):
        """``precision: bf16|f16`` -> (autocast dtype, GradScaler or None), via ``shrew.amp``.
        f16 gets dynamic loss scaling (its range is narrow); bf16 has f32's range and, as in
        torch, needs none."""
        dtype = _PRECISIONS.get(self.precision)
        if dtype is None:
            raise ExecutionError(
                f"@training precision {self.precision!r}: expected fp32, bf16 or f16"
            )
        if dtype == "fp32":
            return None, None
        from shrew import amp

        return dtype, amp.GradScaler() if dtype is sc.f16 else None

    def _autocast(self):
        """The context a forward pass and its loss run in: ``shrew.amp.autocast`` for mixed
        precision, else nothing."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        from shrew import amp

        return amp.autocast(self.amp_dtype)

    def _save_checkpoint(self, path: Path, **state) -> None:
        """Model, optimizer, scheduler, RNG, loss scale and ``state`` (epoch, step, loader
        position, best metric) with ``shrew.io.save_checkpoint``: resuming from it continues
        bit for bit like the uninterrupted run."""
        import shrew.io

        path.parent.mkdir(parents=True, exist_ok=True)
        if self.scaler is not None:
            state["grad_scaler"] = self.scaler.state_dict()
        shrew.io.save_checkpoint(
            path,
            model=self.executor,
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            optimizer_steps=self.optimizer_steps,
            **state,
        )

    def _restore(self, path, loader) -> tuple[int, object]:
        """Resume from a checkpoint (``shrew.io.load_checkpoint``): restores model,
        optimizer, scheduler, RNG, loss scale, step counters and the loader position;
        returns (the epoch to continue with, the best monitored value so far)."""
        import shrew.io

        state = shrew.io.load_checkpoint(
            path, model=self.executor, optimizer=self.optimizer, scheduler=self.scheduler
        )
        if self.scaler is not None and "grad_scaler" in state:
            self.scaler.load_state_dict(state["grad_scaler"])
        self.global_step = int(state.get("step", 0))
        self.optimizer_steps = int(state.get("optimizer_steps", 0))
        if "loader" in state:
            loader.load_state_dict(state["loader"])
        return int(state.get("epoch", -1)) + 1, state.get("best")

    def _quantize(self) -> Executor:
        """The executor with its linear weights quantized as ``@inference quantization``
        says (``shrew.quantization.quantize_executor``; re-done on every call, so it follows
        the latest weights). Quantized weights serve eval-mode runs only."""
        from shrew.quantization import quantize_executor

        return quantize_executor(self.executor)

    # ------------------------------------------------------------------ optimizer, schedule
    def _build_optimizer(self):
        cfg = self.training.optimizer
        cls = _OPTIMIZERS.get(str(cfg.type).lower())
        if cls is None:
            raise ExecutionError(
                f"@training: unknown optimizer {cfg.type!r}; supported: "
                "SGD, Adam, AdamW, RAdam, RMSprop"
            )
        extra = dict(cfg.extra)
        if "beta1" in extra or "beta2" in extra:
            extra["betas"] = (extra.pop("beta1", 0.9), extra.pop("beta2", 0.999))
        if isinstance(extra.get("betas"), list):
            extra["betas"] = tuple(extra["betas"])
        if "epsilon" in extra:
            extra["eps"] = extra.pop("epsilon")
        try:
            return cls(self.executor.parameters(self.graph), lr=cfg.lr, **extra)
        except (TypeError, ValueError) as e:
            raise ExecutionError(f"@training optimizer {cfg.type}: {e}") from None

    def _build_schedule(self, steps_per_epoch: int, epochs: int):
        """(scheduler or None, interval, plateau monitor) for this fit."""
        return build_schedule(self.optimizer, self.training.lr_schedule, steps_per_epoch, epochs)

    def _clip(self, grads):
        spec = self.training.grad_clip
        if not spec:
            return grads
        kind = str(spec.get("type", "norm")).lower()
        if kind == "value":
            value = spec.get("value", spec.get("clip_value", spec.get("max")))
            if value is None:
                raise ExecutionError("@training grad_clip value: give value: <bound>")
            return optim.clip_grad_value(grads, float(value))
        if kind != "norm":
            raise ExecutionError(f"@training grad_clip: type must be norm or value, got {kind!r}")
        optim.clip_grad_norm(grads, float(spec.get("max_norm", 1.0)),
                             float(spec.get("norm_type", 2.0)))  # fmt: skip
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

    def _arrays(self, inputs) -> tuple[list[str], list[np.ndarray]]:
        if isinstance(inputs, Mapping):
            names = list(inputs)
            return names, [np.asarray(inputs[n]) for n in names]
        return [self._input_name()], [np.asarray(inputs)]

    def _loader(self, inputs, targets, batch_size: int, shuffle: bool, seed: int) -> DataLoader:
        names, arrays = self._arrays(inputs)
        self._names = names
        return DataLoader(
            TensorDataset(*arrays, np.asarray(targets)),
            batch_size=batch_size,
            shuffle=shuffle,
            seed=seed,
            device=self.executor.device,
        )

    def _split(self, inputs, targets, seed: int):
        """(train inputs, train targets), (validation inputs, targets) by validation_split."""
        names, arrays = self._arrays(inputs)
        targets = np.asarray(targets)
        n = len(targets)
        n_val = int(round(n * self.validation_split))
        if n_val == 0 or n_val >= n:
            raise ExecutionError(
                f"@training validation_split {self.validation_split} of {n} samples leaves "
                f"{n_val} for validation; need at least 1 on each side"
            )
        order = np.random.default_rng(seed).permutation(n)
        val, train = order[:n_val], order[n_val:]

        def pick(idx):
            return {k: a[idx] for k, a in zip(names, arrays)}, targets[idx]

        return pick(train), pick(val)

    def loss(self, output: sc.Tensor, target: sc.Tensor) -> sc.Tensor:
        if self.loss_name.startswith("cross_entropy") and not target.dtype.is_float:
            if output.ndim > 2:  # [B, S, C] logits with [B, S] targets
                output, target = output.reshape(-1, output.shape[-1]), target.reshape(-1)
        elif target.dtype != output.dtype and output.dtype.is_float:
            target = target.to(output.dtype)
            if target.shape != output.shape and target.numel == output.numel:
                target = target.reshape(output.shape)
        elif target.shape != output.shape and target.numel == output.numel:
            target = target.reshape(output.shape)
        return LOSSES[self.loss_name](output, target)

    def _forward(self, batch) -> tuple[sc.Tensor, sc.Tensor]:
        *xs, y = batch
        outputs = self.executor.run(self.graph, dict(zip(self._names, xs)))
        return next(iter(outputs.values())), y

    def _batch_metrics(self, sums: dict, out: sc.Tensor, y: sc.Tensor, loss: float) -> dict:
        """Add this batch's data metrics to ``sums``; returns the batch values."""
        values = {}
        data = [t for t in self.tracks if t.is_data]
        if not data:
            return values
        o, t = out.detach().numpy(), y.numpy()
        for track in data:
            s, n = M.batch_sums(track, o, t, loss)
            acc = sums.setdefault(track.name, [0.0, 0])
            acc[0] += s
            acc[1] += n
            values[track.name] = M.finish(track, s, n)
        return values

    # ------------------------------------------------------------------ public API
    def fit(
        self,
        inputs,
        targets,
        epochs: int | None = None,
        batch_size: int | None = None,
        shuffle: bool | None = None,
        seed: int | None = None,
        validation=None,
        on_epoch: Callable[[EpochLog], None] | None = None,
        callbacks: Iterable[Callback] = (),
        output_dir=None,
        resume_from=None,
        checkpoint_dir=None,
        print_fn: Callable[[str], None] = print,
    ) -> TrainResult:
        """Train on ``inputs`` (an array, or a dict of arrays by input name) and ``targets``.

        Args:
            epochs, batch_size, shuffle, seed: override ``@training``.
            validation: ``(inputs, targets)`` evaluated after every epoch (else
                ``validation_split`` of the training data, if set).
            on_epoch: called with each EpochLog (a shortcut for a callback).
            callbacks: :class:`~shrew.exec.callbacks.Callback` objects.
            output_dir: where the log, plots and report go (default ``@logging log_dir``).
            resume_from: a training checkpoint to continue from (model, optimizer,
                scheduler, RNG, loader position, step counters): the run continues bit for
                bit as if it had not stopped.
            checkpoint_dir: save ``last.shrew`` every epoch and ``best.shrew`` (lowest
                ``val_loss``, else ``loss``) there, whatever ``@logging`` says.
            print_fn: console output of ``@logging``.
        """
        epochs = self.epochs if epochs is None else int(epochs)
        shuffle = self.shuffle if shuffle is None else bool(shuffle)
        seed = self.seed if seed is None else int(seed)
        if validation is None and self.validation_split:
            (inputs, targets), validation = self._split(inputs, targets, seed)
        loader = self._loader(inputs, targets, batch_size or self.batch_size, shuffle, seed)
        steps_per_epoch = max(1, math.ceil(len(loader) / self.accumulation))
        self.scheduler, interval, monitor = self._build_schedule(steps_per_epoch, epochs)
        accumulator = optim.GradAccumulator(self.accumulation) if self.accumulation > 1 else None
        folder = output_dir or self.logging.get("log_dir")
        ckpt_spec = dict(self.logging)
        if checkpoint_dir is not None:
            ckpt_spec.update(checkpoint_dir=str(checkpoint_dir), save_last=True, save_best=True)
        logger = RunLogger(self.logging, output_dir, print_fn)
        cbs = list(callbacks)
        stop = self.training.extra.get("early_stopping")
        if stop:
            stop = dict(stop)
            restore = bool(stop.pop("restore_best", stop.pop("restore_best_weights", False)))
            try:
                cbs.append(EarlyStopping(restore_best_weights=restore, **stop))
            except TypeError as e:
                raise ExecutionError(f"@training early_stopping: {e}") from None
        if on_epoch is not None:
            cbs.append(LambdaCallback(on_epoch_end=lambda t, e, logs: on_epoch(t._last_log)))
        cb = CallbackList(cbs)
        aggs = {t.name: M.Aggregator(t) for t in self.tracks}
        need_norm = any(t.source == "grad_norm" for t in self.tracks)
        result = TrainResult(log_file=logger.path)
        self.stop_training = False
        self.executor.train()
        cb.on_train_begin(self)
        best, start_epoch = None, 0
        if resume_from is not None:
            start_epoch, best = self._restore(resume_from, loader)
        try:
            for epoch in range(start_epoch, epochs):
                cb.on_epoch_begin(self, epoch)
                for a in aggs.values():
                    a.reset()
                start, total, count, sums = time.perf_counter(), 0.0, 0, {}
                for batch in loader:
                    with self._autocast():
                        out, y = self._forward(batch)
                        loss = self.loss(out, y)
                    grads = (loss if self.scaler is None else self.scaler.scale(loss)).backward()
                    loss_value = loss.item()
                    batch_values = self._batch_metrics(sums, out, y, loss_value)
                    total += loss_value
                    count += 1
                    if accumulator is not None:
                        grads = accumulator.step(grads)
                    lr = self.optimizer.lr  # the rate this step's update uses
                    norm = self._apply(grads, need_norm, interval == "step") if grads else None
                    self.global_step += 1
                    logs = {"batch": count, "step": self.global_step, "loss": loss_value,
                            "lr": lr}  # fmt: skip
                    if norm is not None:
                        logs["grad_norm"] = norm
                    for t in self.tracks:
                        v = batch_values.get(t.name) if t.is_data else logs.get(t.source)
                        if v is not None:
                            aggs[t.name].add(v)
                            logs[t.name] = aggs[t.name].value() if t.log_every else v
                    logged = [t for t in self.tracks if t.log_every
                              and self.global_step % t.log_every == 0]  # fmt: skip
                    record = {"step": self.global_step, "epoch": epoch, "loss": loss_value,
                              "lr": lr, "grad_norm": norm,
                              **{t.name: logs.get(t.name) for t in self.tracks}}  # fmt: skip
                    result.steps.append(record)
                    logger.step(epoch, self.global_step,
                                {t.name: logs[t.name] for t in logged if t.name in logs},
                                to_file=bool(logged))  # fmt: skip
                    cb.on_step_end(self, self.global_step, logs)
                    if self.stop_training:
                        break
                if accumulator is not None and accumulator.current_step:
                    self._apply(accumulator.release(), need_norm, interval == "step")
                log = self._epoch_log(epoch, total, count, start, sums, aggs, validation)
                if self.scheduler is not None and interval == "epoch":
                    if monitor is not None:
                        metric = log.metrics.get(monitor, log.metrics.get("loss", log.loss))
                        self.scheduler.step(metric)
                    else:
                        self.scheduler.step()
                result.epochs.append(log)
                self._last_log = log
                values = {"loss": log.loss, "lr": log.lr, **log.metrics}
                logger.epoch(epoch, self.global_step, values)
                best = self._checkpoints(ckpt_spec, epoch, values, best, folder, loader)
                cb.on_epoch_end(self, epoch, values)
                if self.stop_training:
                    result.stopped_epoch = epoch
                    break
            cb.on_train_end(self, result)
        finally:
            logger.close()
            self.executor.eval()
        if self.plots:
            from .plots import write_plots

            result.plots = write_plots(
                self.plots, result, Path(folder or Path("runs") / self.graph)
            )
        report = self.logging.get("report")
        if report:
            from .plots import write_report

            path = Path(report if isinstance(report, str) else "report.html")
            if not path.is_absolute() and folder:
                path = Path(folder) / path
            result.report = write_report(path, result, result.plots,
                                         f"Training {self.graph}", self._summary())  # fmt: skip
        return result

    def _apply(self, grads, need_norm: bool, step_schedule: bool) -> float | None:
        """One optimizer update from ``grads``; returns the gradient norm if tracked. With
        loss scaling the gradients are unscaled first and a step whose gradients hold
        inf/NaN is skipped (the scale then backs off), as ``torch.amp.GradScaler`` does."""
        if self.scaler is not None:
            grads = self.scaler.unscale_(self.optimizer, grads)
        norm = optim.grad_norm(grads) if need_norm else None
        if self.scaler is None:
            self.optimizer.step(self._clip(grads))
        else:
            self.scaler.step(self.optimizer, self._clip(grads))
            self.scaler.update()
        self.optimizer_steps += 1
        if self.scheduler is not None and step_schedule:
            self.scheduler.step()
        return norm

    def _epoch_log(self, epoch, total, count, start, sums, aggs, validation):
        metrics = {}
        for t in self.tracks:
            if t.is_data and t.aggregate == "mean" and t.name in sums:
                metrics[t.name] = M.finish(t, *sums[t.name])
            else:
                metrics[t.name] = aggs[t.name].value()
        log = EpochLog(epoch, total / max(count, 1), time.perf_counter() - start,
                       self.optimizer.lr, metrics)  # fmt: skip
        if validation is not None:
            val = self._evaluate(*validation)
            metrics["val_loss"] = val["loss"]
            for t in self.tracks:
                if t.is_data:
                    metrics[t.val_name] = val[t.name]
            self.executor.train()
        return log

    def _checkpoints(self, spec: dict, epoch: int, values: dict, best, folder, loader):
        """Checkpoint every N epochs / the best / the last, as ``spec`` (``@logging``, or
        ``fit(checkpoint_dir=...)``) says."""
        every = int(spec.get("checkpoint_every", 0) or 0)
        ckpt_dir = Path(spec.get("checkpoint_dir") or Path(folder or ".") / "checkpoints")
        state = dict(epoch=epoch, step=self.global_step, metrics=values, best=best,
                     loader=loader.state_dict())  # fmt: skip
        if every and (epoch + 1) % every == 0:
            self._save_checkpoint(ckpt_dir / f"epoch_{epoch + 1}.shrew", **state)
        if spec.get("save_best"):
            monitor = str(spec.get("monitor", "val_loss" if "val_loss" in values else "loss"))
            mode_max = any(s in monitor for s in ("acc", "f1"))
            current = values.get(monitor)
            if current is not None and (best is None or (current > best if mode_max
                                                         else current < best)):  # fmt: skip
                best = current
                state["best"] = current
                self._save_checkpoint(ckpt_dir / "best.shrew", **state)
        if spec.get("save_last"):
            self._save_checkpoint(ckpt_dir / "last.shrew", **state)
        return best

    def _summary(self) -> dict:
        t = self.training
        return {
            "graph": self.graph, "loss": t.loss, "optimizer": t.optimizer.type,
            "lr": t.optimizer.lr, "optimizer extras": t.optimizer.extra,
            "lr_schedule": t.lr_schedule, "grad_clip": t.grad_clip, "epochs": self.epochs,
            "batch_size": self.batch_size, "accumulation_steps": self.accumulation,
        }  # fmt: skip

    def _evaluate(self, inputs, targets, batch_size: int = 256) -> dict[str, float]:
        """Mean loss and every data track over (inputs, targets), in eval mode."""
        self.executor.eval()
        loader = self._loader(inputs, targets, batch_size, False, 0)
        total = n = 0.0
        sums: dict = {}
        with sc.no_grad():
            for batch in loader:
                out, y = self._forward(batch)
                loss = self.loss(out, y).item()
                k = y.shape[0] if y.ndim else 1
                total += loss * k
                n += k
                self._batch_metrics(sums, out, y, loss)
        out = {"loss": total / max(n, 1)}
        for t in self.tracks:
            if t.is_data:
                out[t.name] = M.finish(t, *sums.get(t.name, (0.0, 0)))
        return out

    def evaluate(self, inputs, targets, batch_size: int = 256) -> dict[str, float]:
        """Mean loss, each tracked data metric, and accuracy for classification losses."""
        out = self._evaluate(inputs, targets, batch_size)
        if self.loss_name in M.CLASSIFICATION_LOSSES and "accuracy" not in out:
            acc = M.Track("accuracy", "accuracy")
            self.executor.eval()
            loader = self._loader(inputs, targets, batch_size, False, 0)
            sums: dict = {}
            with sc.no_grad():
                for batch in loader:
                    o, y = self._forward(batch)
                    s, k = M.batch_sums(acc, o.numpy(), y.numpy(), 0.0)
                    sums[0] = sums.get(0, 0.0) + s
                    sums[1] = sums.get(1, 0) + k
            out["accuracy"] = sums[0] / max(sums[1], 1)
        return out

    def predict(self, inputs) -> sc.Tensor:
        self.executor.eval()
        with sc.no_grad():
            name = self._input_name() if not isinstance(inputs, Mapping) else None
            feed = inputs if name is None else {name: inputs}
            return next(iter(self.executor.run(self.graph, feed).values()))

    def inference(self) -> Executor:
        """The executor ready for inference: eval mode, quantized when ``@inference
        quantization`` says so."""
        self.executor.eval()
        inf = self.executor.module.inference
        if inf is not None and inf.quantization:
            return self._quantize()
        return self.executor

    def generate(self, prompt_tokens, max_tokens: int | None = None, **settings) -> sc.Tensor:
        """``Executor.generate`` on the inference executor (see ``shrew.exec.generate``)."""
        return self.inference().generate(prompt_tokens, max_tokens, **settings)


def load_trainer(
    source,
    config: RuntimeConfig | None = None,
    *,
    fp32_fallback: bool = False,
    filename: str | None = None,
    jit: bool = False,
) -> Trainer:
    """Like ``load_program``, then a Trainer from the program's ``@training`` block
    (``jit=True`` runs the model through the JIT's compiled tapes)."""
    config = config or RuntimeConfig()
    module = _load_module(source, config, filename)
    if jit:
        from .jit import JitExecutor

        return Trainer(JitExecutor(module, config), fp32_fallback)
    return Trainer(Executor(module, config), fp32_fallback)
