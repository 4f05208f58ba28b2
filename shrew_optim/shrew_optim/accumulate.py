"""GradAccumulator: sum or average the gradients of several micro-batches."""

from __future__ import annotations

import shrew_core as sc
from shrew_core import GradStore, Tensor


class GradAccumulator:
    """Accumulate ``accum_steps`` GradStores, then release their mean (or sum).

    ``step(grads)`` adds a store and returns ``None`` until the ``accum_steps``-th call,
    which returns the reduced GradStore and resets. f16/bf16 gradients accumulate in
    f32 and are cast back on release. With ``"mean"`` the sum is divided by
    ``accum_steps`` even for a parameter missing from some stores (the usual
    "loss / accum_steps" semantics).

    Args:
        accum_steps: number of stores per release, > 0.
        reduction: ``"mean"`` (default) or ``"sum"``.

    Example:
        >>> acc = GradAccumulator(4)
        >>> for batch in batches:  # doctest: +SKIP
        ...     if (g := acc.step(loss(batch).backward())) is not None:
        ...         opt.step(g)
    """

    def __init__(self, accum_steps: int, reduction: str = "mean"):
        if isinstance(accum_steps, bool) or not isinstance(accum_steps, int) or accum_steps <= 0:
            raise ValueError(f"GradAccumulator: accum_steps must be a positive integer, got "
                             f"{accum_steps!r}")  # fmt: skip
        if reduction not in ("mean", "sum"):
            raise ValueError(f"GradAccumulator: reduction must be 'mean' or 'sum', got "
                             f"{reduction!r}")  # fmt: skip
        self._accum_steps = accum_steps
        self.reduction = reduction
        self._sums: dict[int, tuple[Tensor, Tensor, sc.DType]] = {}
        self._count = 0

    @property
    def accum_steps(self) -> int:
        return self._accum_steps

    @property
    def current_step(self) -> int:
        """How many stores have been added since the last release."""
        return self._count

    @property
    def ready(self) -> bool:
        return self._count >= self._accum_steps

    def add(self, grads: GradStore) -> None:
        """Add one store's gradients to the running sums."""
        if not isinstance(grads, GradStore):
            raise TypeError(f"GradAccumulator.add: expected a GradStore, got "
                            f"{type(grads).__name__}")  # fmt: skip
        with sc.no_grad():
            for t, g in grads.items():
                entry = self._sums.get(id(t))
                if entry is None:
                    acc = g.to(sc.f32) if g.dtype in (sc.f16, sc.bf16) else g
                    self._sums[id(t)] = (t, acc, g.dtype)  # never written in place
                else:
                    self._sums[id(t)] = (t, entry[1] + g.to(entry[1].dtype), entry[2])
        self._count += 1

    def release(self) -> GradStore:
        """The reduced gradients of everything added so far; resets the accumulator."""
        out = GradStore()
        with sc.no_grad():
            for t, s, dtype in self._sums.values():
                r = s * (1.0 / self._accum_steps) if self.reduction == "mean" else s
                out[t] = r.to(dtype)
        self.reset()
        return out

    def step(self, grads: GradStore) -> GradStore | None:
        """Add ``grads``; return the reduced store on every ``accum_steps``-th call."""
        self.add(grads)
        return self.release() if self.ready else None

    def reset(self) -> None:
        """Drop the running sums."""
        self._sums = {}
        self._count = 0

