"""Learning-rate schedulers that wrap an optimizer, like ``torch.optim.lr_scheduler``.

A scheduler records each group's ``initial_lr``, sets the epoch-0 lr at construction
and a new lr at every ``step()``; ``get_lr()`` is torch's *chainable* form (it updates
the groups' current lrs), so schedulers stepped on one optimizer combine the way they do
in torch, and ``step(epoch)`` uses the closed form::

    opt = Adam(params, lr=1e-3)
    warm = LinearLR(opt, start_factor=0.1, total_iters=5)
    decay = ExponentialLR(opt, gamma=0.95)
    for epoch in range(100):
        ...  # opt.step(grads) for each batch
        warm.step()
        decay.step()  # or: ChainedScheduler([warm, decay]).step()

The original Shrew's spelling — a scheduler over a bare number,
``StepLR(0.1, step_size=10, gamma=0.5)`` with ``step()`` returning the new lr and
``current_lr()`` / ``current_step()`` — is accepted too: a number in place of the
optimizer makes a one-group scheduler that drives no optimizer.
"""

from ._base import LRScheduler
from .combine import ChainedScheduler, SequentialLR
from .cyclic import CosineAnnealingWarmRestarts, CyclicLR, OneCycleLR
from .epoch import (
    ConstantLR,
    CosineAnnealingLR,
    CosineWarmupLR,
    ExponentialLR,
    LambdaLR,
    LinearLR,
    MultiplicativeLR,
    MultiStepLR,
    PolynomialLR,
    StepLR,
)  # fmt: skip
from .plateau import ReduceLROnPlateau

__all__ = [
    "LRScheduler", "LambdaLR", "MultiplicativeLR", "StepLR", "MultiStepLR", "ConstantLR",
    "LinearLR", "ExponentialLR", "PolynomialLR", "CosineAnnealingLR", "CosineWarmupLR",
    "CosineAnnealingWarmRestarts", "CyclicLR", "OneCycleLR", "ReduceLROnPlateau",
    "ChainedScheduler", "SequentialLR",
]  # fmt: skip
