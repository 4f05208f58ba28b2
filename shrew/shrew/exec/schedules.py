"""``@training lr_schedule``: a shrew_optim scheduler from the block's fields.

``type``: ``constant``, ``cosine`` (``T_max``/``total_steps``, ``min_lr``/``eta_min``),
``step`` (``step_size``, ``gamma``), ``multistep`` (``milestones``, ``gamma``),
``exponential`` (``gamma``), ``linear`` (``start_factor``, ``end_factor``, ``total_iters``),
``plateau`` (ReduceLROnPlateau's keywords and ``monitor``; stepped per epoch).
``warmup_steps`` puts a linear warmup from 0 in front of any but plateau (cosine uses
``CosineWarmupLR``; the others a ``LambdaLR`` over the scheduler's own closed form);
``interval`` is ``step`` (per optimizer step, default) or ``epoch``.
"""

from __future__ import annotations

import shrew_optim as optim

from .errors import ExecutionError


def build_schedule(opt, lr_schedule: dict | None, steps_per_epoch: int, epochs: int):
    """(scheduler or None, interval, plateau monitor) for one fit of ``opt``."""
    spec = dict(lr_schedule or {})
    kind = str(spec.pop("type", "constant")).lower()
    warmup = int(spec.pop("warmup_steps", 0))
    interval = str(spec.pop("interval", "step")).lower()
    if interval not in ("step", "epoch"):
        raise ExecutionError(f"@training lr_schedule interval must be step or epoch, "
                             f"got {interval!r}")  # fmt: skip
    total = int(spec.pop("total_steps", steps_per_epoch * epochs if interval == "step"
                         else epochs))  # fmt: skip
    try:
        if kind in ("plateau", "reduce_on_plateau", "reducelronplateau"):
            if warmup:
                raise ExecutionError("@training lr_schedule plateau: warmup_steps is not "
                                     "supported with a plateau schedule")  # fmt: skip
            monitor = str(spec.pop("monitor", "val_loss"))
            return optim.ReduceLROnPlateau(opt, **spec), "epoch", monitor
        if kind == "cosine" and warmup:
            min_lr = spec.pop("min_lr", spec.pop("eta_min", 0.0))
            sched = optim.CosineWarmupLR(opt, min(warmup, total), total, min_lr, **spec)
            return sched, interval, None
        inner = _constructor(kind, spec, max(1, total - warmup))
        if inner is None and not warmup:
            return None, interval, None
        if not warmup:
            return inner(opt), interval, None
        factor = inner(1.0) if inner is not None else None

        def lr_lambda(e, w=warmup, f=factor):
            if e < w:
                return e / w
            return 1.0 if f is None else f.step(e - w)

        return optim.LambdaLR(opt, lr_lambda), interval, None
    except TypeError as e:
        raise ExecutionError(f"@training lr_schedule {kind}: {e}") from None


def _constructor(kind: str, spec: dict, total: int):
    """A constructor ``f(optimizer_or_lr) -> scheduler`` for ``kind`` (None: constant)."""
    if kind in ("none", "constant"):
        return None
    if kind == "cosine":
        t_max = int(spec.pop("T_max", total))
        eta = spec.pop("min_lr", spec.pop("eta_min", 0.0))
        return lambda o: optim.CosineAnnealingLR(o, T_max=t_max, eta_min=eta, **spec)
    if kind == "step":
        return lambda o: optim.StepLR(o, int(spec.pop("step_size", 1)),
                                      float(spec.pop("gamma", 0.1)), **spec)  # fmt: skip
    if kind in ("multistep", "multi_step"):
        return lambda o: optim.MultiStepLR(o, list(spec.pop("milestones")),
                                           float(spec.pop("gamma", 0.1)), **spec)  # fmt: skip
    if kind == "exponential":
        return lambda o: optim.ExponentialLR(o, float(spec.pop("gamma", 0.99)), **spec)
    if kind == "linear":
        spec.setdefault("total_iters", total)
        spec.setdefault("start_factor", 1.0)
        spec.setdefault("end_factor", 0.0)
        return lambda o: optim.LinearLR(o, **spec)
    raise ExecutionError(
        f"@training lr_schedule: unknown type {kind!r}; supported: constant, cosine, step, "
        "multistep, exponential, linear, plateau"
    )
