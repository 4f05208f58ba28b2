"""Gradient norms and clipping on GradStores (``torch.nn.utils.clip_grad_*`` semantics).

Clipping replaces the store's entries with scaled/clamped gradients (the gradient
tensors themselves are never written: ``backward()`` may share one tensor between
several entries). Every function works on all entries of the store, or only on the
entries of ``params`` when given.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import shrew_core as sc
from shrew_core import GradStore, Tensor


def _entries(grads: GradStore, params: Iterable[Tensor] | None) -> list[tuple[Tensor, Tensor]]:
    if not isinstance(grads, GradStore):
        raise TypeError(f"expected a GradStore, got {type(grads).__name__}")
    if params is None:
        return grads.items()
    if isinstance(params, Tensor):
        params = [params]
    return [(p, g) for p in params if (g := grads.get(p)) is not None]


def _norm_type(norm_type: float | str) -> float:
    p = math.inf if norm_type in ("inf", "Inf") else float(norm_type)
    if not p > 0:
        raise ValueError(f"norm_type must be > 0 or inf, got {norm_type}")
    return p


def _tensor_norm(g: Tensor, p: float) -> float:
    """The p-norm of one gradient, reduced in its dtype (f16/bf16 in f32), like torch."""
    with sc.no_grad():
        x = g.to(sc.f32) if g.dtype in (sc.f16, sc.bf16) else g
        if g.numel == 0:
            return 0.0
        if p == math.inf:
            return float(x.abs().amax())
        if p == 2.0:
            return math.sqrt(float((x * x).sum()))
        if p == 1.0:
            return float(x.abs().sum())
        return float((x.abs() ** p).sum()) ** (1.0 / p)


def _combine(norms: list[float], p: float) -> float:
    if not norms:
        return 0.0
    if p == math.inf:
        return max(norms)
    return math.fsum(n**p for n in norms) ** (1.0 / p)


def grad_norm(grads: GradStore, params: Iterable[Tensor] | None = None,
              norm_type: float | str = 2.0) -> float:  # fmt: skip
    """The total ``norm_type``-norm of the gradients (as if concatenated into one vector)."""
    p = _norm_type(norm_type)
    return _combine([_tensor_norm(g, p) for _, g in _entries(grads, params)], p)


def clip_grad_norm(grads: GradStore, max_norm: float, norm_type: float | str = 2.0,
                   params: Iterable[Tensor] | None = None,
                   error_if_nonfinite: bool = False) -> float:  # fmt: skip
    """Scale the gradients so their total norm is at most ``max_norm``.

    Like ``torch.nn.utils.clip_grad_norm_``: the coefficient is
    ``max_norm / (total_norm + 1e-6)``, applied only when it is below 1. The store's
    entries are replaced in place. Returns the total norm *before* clipping.

    Raises:
        ValueError: ``max_norm`` negative, or the norm is nan/inf and
            ``error_if_nonfinite``.
    """
    if not max_norm >= 0:
        raise ValueError(f"clip_grad_norm: max_norm must be >= 0, got {max_norm}")
    p = _norm_type(norm_type)
    entries = _entries(grads, params)
    total = _combine([_tensor_norm(g, p) for _, g in entries], p)
    if error_if_nonfinite and not math.isfinite(total):
        raise ValueError(f"The total norm of order {norm_type} for gradients is non-finite, so "
                         "it cannot be clipped")  # fmt: skip
    coef = max_norm / (total + 1e-6)
    if coef < 1.0:
        with sc.no_grad():
            for t, g in entries:
                grads[t] = g * coef
    return total


clip_grad_norm_ = clip_grad_norm  # torch's spelling


def clip_grad_value(grads: GradStore, clip_value: float,
                    params: Iterable[Tensor] | None = None) -> GradStore:  # fmt: skip
    """Clamp every gradient element to ``[-clip_value, clip_value]`` (entries replaced in
    place); returns the store."""
    if not clip_value >= 0:
        raise ValueError(f"clip_grad_value: clip_value must be >= 0, got {clip_value}")
    with sc.no_grad():
        for t, g in _entries(grads, params):
            grads[t] = g.clamp(-clip_value, clip_value)
    return grads


clip_grad_value_ = clip_grad_value
