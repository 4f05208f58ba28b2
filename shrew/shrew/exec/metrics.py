"""Training metrics: what ``@metrics`` tracks and how each value is computed and aggregated.

A program's ``@metrics Group { track name { source: ...; aggregate: ...; log_every: N; } }``
becomes one :class:`Track` per ``track``. The ``source`` (default: the track's name) is one
of :data:`SOURCES`:

* data metrics, computed from the model output and the targets of each batch and, at the
  end of every epoch, on the validation data: ``loss``, ``accuracy`` (argmax; a threshold
  at 0.5 for single-column/binary outputs), ``top_k_accuracy`` (``k``, default 5), ``mse``,
  ``mae``, ``rmse``, ``perplexity`` (``exp`` of the mean cross-entropy);
* step metrics, recorded at every optimizer step: ``lr`` / ``learning_rate`` and
  ``grad_norm`` (``source: gradients; compute: norm;`` is the seed's spelling), the global
  2-norm of the gradients before clipping.

``aggregate`` says how a track's per-step values make its epoch value: ``mean`` (default),
``ema`` (``decay``, default 0.9, carried across epochs), ``last``, ``sum``, ``max``, ``min``.
``log_every: N`` writes the current value to the run log every N steps. Validation values
are always exact means over the validation samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import ExecutionError

DATA_SOURCES = ("loss", "accuracy", "top_k_accuracy", "mse", "mae", "rmse", "perplexity")
STEP_SOURCES = ("lr", "grad_norm")
SOURCES = DATA_SOURCES + STEP_SOURCES
AGGREGATES = ("mean", "ema", "last", "sum", "max", "min")
_ALIASES = {
    "train_loss": "loss", "val_loss": "loss", "acc": "accuracy", "topk_accuracy": "top_k_accuracy",
    "top_k": "top_k_accuracy", "top5_accuracy": "top_k_accuracy", "ppl": "perplexity",
    "learning_rate": "lr", "gradients": "grad_norm", "gradient_norm": "grad_norm",
    "mean_squared_error": "mse", "mean_absolute_error": "mae",
}  # fmt: skip
CLASSIFICATION_LOSSES = ("cross_entropy", "cross_entropy_loss", "nll", "nll_loss")


@dataclass
class Track:
    """One tracked metric (see the module docstring)."""

    name: str
    source: str
    aggregate: str = "mean"
    log_every: int = 0
    k: int = 5
    decay: float = 0.9

    @property
    def is_data(self) -> bool:
        return self.source in DATA_SOURCES

    @property
    def val_name(self) -> str:
        """The key of the validation value: ``val_`` + the name without a ``train_`` prefix."""
        base = self.name[6:] if self.name.startswith("train_") else self.name
        return f"val_{base}"


def parse_tracks(metrics: dict, loss_name: str) -> list[Track]:
    """The tracks of every ``@metrics`` block; without one: loss (and accuracy when the loss
    is a classification loss)."""
    tracks: list[Track] = []
    for group in (metrics or {}).values():
        for name, fields in (group or {}).items():
            fields = dict(fields or {})
            source = str(fields.pop("source", name))
            compute = fields.pop("compute", None)
            source = _ALIASES.get(source, source)
            if name.startswith("top") and source == "top_k_accuracy" and name[3:4].isdigit():
                fields.setdefault("k", int("".join(ch for ch in name[3:] if ch.isdigit())))
            if source == "grad_norm" and compute not in (None, "norm", "l2"):
                raise ExecutionError(
                    f"@metrics track {name!r}: compute {compute!r} of gradients is not "
                    "supported; use compute: norm"
                )
            if source not in SOURCES:
                raise ExecutionError(
                    f"@metrics track {name!r}: unknown source {source!r}; supported: "
                    f"{', '.join(SOURCES)} (aliases: {', '.join(sorted(_ALIASES))})"
                )
            aggregate = str(fields.pop("aggregate", "mean"))
            if aggregate not in AGGREGATES:
                raise ExecutionError(
                    f"@metrics track {name!r}: unknown aggregate {aggregate!r}; supported: "
                    f"{', '.join(AGGREGATES)}"
                )
            tracks.append(
                Track(
                    name,
                    source,
                    aggregate,
                    int(fields.pop("log_every", 0) or 0),
                    int(fields.pop("k", 5)),
                    float(fields.pop("decay", 0.9)),
                )
            )
    if not tracks:
        tracks.append(Track("loss", "loss"))
        if loss_name in CLASSIFICATION_LOSSES:
            tracks.append(Track("accuracy", "accuracy"))
    return tracks


# ------------------------------------------------------------------ batch statistics
def batch_sums(track: Track, output: np.ndarray, target: np.ndarray, loss: float) -> tuple:
    """(sum, count) of a data metric over one batch (``loss`` is the batch's mean loss)."""
    n = int(target.shape[0]) if target.ndim else 1
    if track.source in ("loss", "perplexity"):
        return loss * n, n
    if track.source == "accuracy":
        pred, truth = _labels(output, target)
        return float((pred == truth).sum()), int(truth.size)
    if track.source == "top_k_accuracy":
        scores = output.reshape(-1, output.shape[-1])
        truth = _class_targets(target, output).reshape(-1)
        own = np.take_along_axis(scores, truth[:, None], axis=1)
        rank = (scores > own).sum(axis=1)
        return float((rank < track.k).sum()), int(truth.size)
    diff = output.astype(np.float64).reshape(-1) - _like(target, output).reshape(-1)
    if track.source == "mae":
        return float(np.abs(diff).sum()), int(diff.size)
    return float((diff * diff).sum()), int(diff.size)  # mse, rmse


def finish(track: Track, total: float, count: int) -> float:
    """The metric from accumulated (sum, count)."""
    if count == 0:
        return float("nan")
    mean = total / count
    if track.source == "rmse":
        return math.sqrt(mean)
    if track.source == "perplexity":
        return math.exp(min(mean, 700.0))
    return mean


def _class_targets(target: np.ndarray, output: np.ndarray) -> np.ndarray:
    if target.dtype.kind in "iub" and target.ndim == output.ndim - 1:
        return target.astype(np.int64)
    return target.reshape(output.shape).argmax(-1)  # one-hot or probabilities


def _labels(output: np.ndarray, target: np.ndarray):
    """Predicted and true labels: argmax over classes for ``[..., C]`` outputs (C > 1), a
    threshold for one-column/1-D outputs (0.5 on probabilities, 0 on logits)."""
    if output.ndim >= 2 and output.shape[-1] > 1:
        return output.argmax(-1), _class_targets(target, output)
    scores = output.reshape(-1)
    probs = scores.size == 0 or (scores.min() >= 0 and scores.max() <= 1)
    return (scores > (0.5 if probs else 0.0)).astype(np.int64), np.rint(target.reshape(-1)).astype(
        np.int64
    )


def _like(target: np.ndarray, output: np.ndarray) -> np.ndarray:
    t = target.astype(np.float64)
    return t.reshape(output.shape) if t.size == output.size else t


class Aggregator:
    """A track's per-step values within an epoch (and its EMA across epochs)."""

    def __init__(self, track: Track):
        self.track = track
        self.ema: float | None = None
        self.reset()

    def reset(self) -> None:
        self.values: list[float] = []

    def add(self, value: float) -> None:
        self.values.append(value)
        d = self.track.decay
        self.ema = value if self.ema is None else d * self.ema + (1.0 - d) * value

    def value(self) -> float:
        v, agg = self.values, self.track.aggregate
        if not v:
            return float("nan")
        if agg == "ema":
            return float(self.ema)
        if agg == "last":
            return v[-1]
        if agg == "sum":
            return float(sum(v))
        if agg == "max":
            return max(v)
        if agg == "min":
            return min(v)
        return float(sum(v) / len(v))
