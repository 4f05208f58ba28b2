"""RAdam: Adam with a rectified adaptive learning rate (Liu et al., 2019)."""

from __future__ import annotations

from typing import Any

from .adam import _betas, check_betas
from .optimizer import Optimizer, ParamsT, _check_nonneg, scalar


class RAdam(Optimizer):
    """``torch.optim.RAdam``, step for step; the step count is per parameter.

    With ``rho_inf = 2 / (1 - beta2) - 1`` and
    ``rho_t = rho_inf - 2 t beta2**t / (1 - beta2**t)``, the moments are Adam's and::

        p = p - lr * r_t * m_hat * sqrt(1 - beta2**t) / (sqrt(v) + eps)   if rho_t > 5
        p = p - lr * m_hat                                                otherwise

    Weight decay is L2 (added to the gradient) by default, like PyTorch;
    ``decoupled_weight_decay=True`` gives the AdamW-style ``p *= 1 - lr * wd`` the
    original Shrew always applied.

    Args:
        params: variables or parameter-group dicts.
        lr: learning rate (default 1e-3).
        betas: ``(beta1, beta2)`` (default ``(0.9, 0.999)``).
        eps: added to the denominator (default 1e-8).
        weight_decay: weight decay (default 0).
        decoupled_weight_decay: decoupled instead of L2 decay.
        maximize: ascend the objective (the kernel negates the gradient).
        master_weights: f32 master copy and state for f16/bf16 parameters.
    """

    batches_updates = True

    def __init__(self, params: ParamsT, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, decoupled_weight_decay: bool = False, *,
                 maximize: bool = False, master_weights: bool = False,
                 beta1: float | None = None, beta2: float | None = None):  # fmt: skip
        check_betas(betas)
        defaults = dict(lr=lr, betas=_betas(betas, beta1, beta2), eps=eps,
                        weight_decay=weight_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize)
        super().__init__(params, defaults, master_weights=master_weights)

    def _validate_group(self, group: dict[str, Any]) -> None:
        super()._validate_group(group)
        _check_nonneg("epsilon value", group["eps"])
        check_betas(group["betas"])
        _check_nonneg("weight_decay value", group["weight_decay"])

    def _state_buffers(self, group: dict[str, Any]) -> tuple[str, ...]:
        return ("exp_avg", "exp_avg_sq")

    def _update(self, n, param, grad, state, group, dtype, backend, fresh) -> None:
        beta1, beta2 = (scalar(b) for b in group["betas"])
        backend.radam_update(n, param, grad, state["exp_avg"]._storage,
                             state["exp_avg_sq"]._storage, dtype, lr=scalar(group["lr"]),
                             beta1=beta1,
                             beta2=beta2, eps=group["eps"], weight_decay=group["weight_decay"],
                             decoupled=group["decoupled_weight_decay"], step=state["step"],
                             maximize=group["maximize"])  # fmt: skip
