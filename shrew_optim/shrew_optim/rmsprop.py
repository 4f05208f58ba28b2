"""RMSprop (Hinton), optionally centered and with momentum."""

from __future__ import annotations

from typing import Any

from .optimizer import Optimizer, ParamsT, _check_nonneg, scalar


class RMSprop(Optimizer):
    """``torch.optim.RMSprop``, step for step.

    Per parameter::

        g = g + weight_decay * p
        v = alpha * v + (1 - alpha) * g**2
        a = v - g_avg**2 with g_avg = alpha * g_avg + (1 - alpha) * g   (centered)
        d = sqrt(a or v) + eps
        buf = momentum * buf + g / d; p = p - lr * buf               (momentum > 0)
        p = p - lr * g / d                                            (otherwise)

    Args:
        params: variables or parameter-group dicts.
        lr: learning rate (default 1e-2, like torch; the original Shrew used 1e-3).
        alpha: smoothing constant (default 0.99).
        eps: added to the denominator (default 1e-8).
        weight_decay: L2 penalty (default 0).
        momentum: momentum factor (default 0).
        centered: normalise by an estimate of the gradient's variance.
        maximize: ascend the objective (the kernel negates the gradient).
        master_weights: f32 master copy and state for f16/bf16 parameters.
    """

    batches_updates = True

    def __init__(self, params: ParamsT, lr: float = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0.0, momentum: float = 0.0,
                 centered: bool = False, *, maximize: bool = False,
                 master_weights: bool = False):  # fmt: skip
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                        momentum=momentum, centered=centered, maximize=maximize)
        super().__init__(params, defaults, master_weights=master_weights)

    def _validate_group(self, group: dict[str, Any]) -> None:
        super()._validate_group(group)
        _check_nonneg("epsilon value", group["eps"])
        _check_nonneg("momentum value", group["momentum"])
        _check_nonneg("weight_decay value", group["weight_decay"])
        _check_nonneg("alpha value", group["alpha"])

    def _state_buffers(self, group: dict[str, Any]) -> tuple[str, ...]:
        names = ("square_avg",)
        if group["momentum"] > 0:
            names += ("momentum_buffer",)
        if group["centered"]:
            names += ("grad_avg",)
        return names

    def _update(self, n, param, grad, state, group, dtype, backend, fresh) -> None:
        buf = state.get("momentum_buffer") if group["momentum"] > 0 else None
        gavg = state.get("grad_avg") if group["centered"] else None
        backend.rmsprop_update(n, param, grad, state["square_avg"]._storage,
                               None if buf is None else buf._storage,
                               None if gavg is None else gavg._storage, dtype,
                               lr=scalar(group["lr"]), alpha=group["alpha"], eps=group["eps"],
                               weight_decay=group["weight_decay"], momentum=group["momentum"],
                               centered=group["centered"],
                               maximize=group["maximize"])  # fmt: skip


RMSProp = RMSprop  # the seed's spelling
