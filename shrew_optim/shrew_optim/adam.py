"""Adam (optionally AMSGrad, L2 or decoupled weight decay) and AdamW."""

from __future__ import annotations

from typing import Any

from shrew_core import Tensor

from .optimizer import Optimizer, ParamsT, _check_nonneg, scalar


def check_betas(betas: Any) -> None:
    """torch's check: two numbers (or one-element tensors) in [0, 1)."""
    try:
        b = tuple(betas)
    except TypeError:
        raise ValueError(f"Invalid betas: {betas!r} (expected a pair (beta1, beta2))") from None
    if len(b) != 2:
        raise ValueError(f"Invalid betas: {betas!r} (expected a pair (beta1, beta2))")
    for i, v in enumerate(b):
        if isinstance(v, Tensor):
            if v.numel != 1:
                raise ValueError(f"Tensor betas[{i}] must be 1-element, got shape {v.shape}")
            v = scalar(v)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v < 1.0:
            raise ValueError(f"Invalid beta parameter at index {i}: {v}")


def _betas(betas, beta1, beta2) -> tuple[float, float]:
    b1, b2 = betas
    return (b1 if beta1 is None else beta1, b2 if beta2 is None else beta2)


class Adam(Optimizer):
    """``torch.optim.Adam``, step for step; the step count is per parameter.

    Per parameter, at its step ``t`` (from 1)::

        g = g + weight_decay * p            (L2; or p *= 1 - lr * weight_decay if decoupled)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        v_max = max(v_max, v)               (amsgrad; used instead of v below)
        p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    Args:
        params: variables or parameter-group dicts.
        lr: learning rate (default 1e-3).
        betas: ``(beta1, beta2)`` (default ``(0.9, 0.999)``); ``beta1=``/``beta2=`` are
            accepted as the seed's spelling.
        eps: added to the denominator (default 1e-8).
        weight_decay: L2 penalty (default 0).
        amsgrad: use the running maximum of ``v`` (AMSGrad).
        maximize: ascend the objective.
        decoupled_weight_decay: AdamW-style decay (``AdamW`` sets it).
        master_weights: f32 master copy and state for f16/bf16 parameters.

    Example:
        >>> opt = Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.99))  # doctest: +SKIP
    """

    batches_updates = True

    def __init__(self, params: ParamsT, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, *, maximize: bool = False,
                 decoupled_weight_decay: bool = False, master_weights: bool = False,
                 beta1: float | None = None, beta2: float | None = None):  # fmt: skip
        check_betas(betas)
        defaults = dict(lr=lr, betas=_betas(betas, beta1, beta2), eps=eps,
                        weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize,
                        decoupled_weight_decay=decoupled_weight_decay)  # fmt: skip
        super().__init__(params, defaults, master_weights=master_weights)

    def _validate_group(self, group: dict[str, Any]) -> None:
        super()._validate_group(group)
        _check_nonneg("epsilon value", group["eps"])
        check_betas(group["betas"])
        _check_nonneg("weight_decay value", group["weight_decay"])

    def _state_buffers(self, group: dict[str, Any]) -> tuple[str, ...]:
        if group["amsgrad"]:
            return ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
        return ("exp_avg", "exp_avg_sq")

    def _update(self, n, param, grad, state, group, dtype, backend, fresh) -> None:
        beta1, beta2 = (scalar(b) for b in group["betas"])
        vmax = state.get("max_exp_avg_sq") if group["amsgrad"] else None
        backend.adam_update(n, param, grad, state["exp_avg"]._storage,
                            state["exp_avg_sq"]._storage,
                            None if vmax is None else vmax._storage, dtype, lr=scalar(group["lr"]),
                            beta1=beta1, beta2=beta2, eps=group["eps"],
                            weight_decay=group["weight_decay"],
                            decoupled=group["decoupled_weight_decay"], step=state["step"],
                            maximize=group["maximize"])  # fmt: skip


class AdamW(Adam):
    """``torch.optim.AdamW``: Adam with decoupled weight decay (default 1e-2)::

        p = p * (1 - lr * weight_decay), then the Adam step with the raw gradient.
    """

    def __init__(self, params: ParamsT, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *, maximize: bool = False,
                 master_weights: bool = False, beta1: float | None = None,
                 beta2: float | None = None):  # fmt: skip
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True, master_weights=master_weights,
                         beta1=beta1, beta2=beta2)  # fmt: skip
