"""Stochastic gradient descent with momentum, dampening, Nesterov and weight decay."""

from __future__ import annotations

from typing import Any

from .optimizer import Optimizer, ParamsT, _check_nonneg, scalar


class SGD(Optimizer):
    """``torch.optim.SGD``, step for step.

    Per parameter, with ``g`` the gradient (negated when ``maximize``)::

        g = g + weight_decay * p
        buf = g                                     (first step with momentum)
        buf = momentum * buf + (1 - dampening) * g  (later steps)
        g = g + momentum * buf if nesterov else buf
        p = p - lr * g

    Args:
        params: variables or parameter-group dicts.
        lr: learning rate (default 1e-3, like torch).
        momentum: momentum factor (default 0).
        dampening: dampening of the momentum (default 0).
        weight_decay: L2 penalty (default 0).
        nesterov: Nesterov momentum (needs ``momentum > 0`` and ``dampening == 0``).
        maximize: ascend the objective instead of descending.
        master_weights: f32 master copy and state for f16/bf16 parameters.

    Example:
        >>> opt = SGD([w], lr=0.1, momentum=0.9)
        >>> opt.step(loss.backward())  # doctest: +SKIP
    """

    batches_updates = True

    def __init__(self, params: ParamsT, lr: float = 1e-3, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False, *,
                 maximize: bool = False, master_weights: bool = False):  # fmt: skip
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults, master_weights=master_weights)

    _uses_step = False  # torch's SGD state holds only the momentum buffer

    def _validate_group(self, group: dict[str, Any]) -> None:
        super()._validate_group(group)
        _check_nonneg("momentum value", group["momentum"])
        _check_nonneg("weight_decay value", group["weight_decay"])
        _check_nonneg("dampening value", group["dampening"])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")

    def _state_buffers(self, group: dict[str, Any]) -> tuple[str, ...]:
        return ("momentum_buffer",) if group["momentum"] != 0 else ()

    def _update(self, n, param, grad, state, group, dtype, backend, fresh) -> None:
        # torch starts the momentum buffer as a copy of g at the first step with momentum:
        # the kernel does that when ``first_step`` (the buffer was created for this step).
        buf = state.get("momentum_buffer") if group["momentum"] != 0 else None
        backend.sgd_update(n, param, grad, None if buf is None else buf._storage, dtype,
                           lr=scalar(group["lr"]), momentum=group["momentum"],
                           dampening=group["dampening"], nesterov=group["nesterov"],
                           weight_decay=group["weight_decay"], maximize=group["maximize"],
                           first_step="momentum_buffer" in fresh)  # fmt: skip
