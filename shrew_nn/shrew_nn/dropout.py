"""``Dropout``: seeded by ``shrew_core.manual_seed``, the identity in eval mode."""

from __future__ import annotations

from shrew_core import Tensor

from . import functional as F
from .module import Module


class Dropout(Module):
    """Zero each element with probability ``p`` during training and scale the survivors by
    ``1/(1-p)``; the identity after ``eval()``.

    Args:
        p: drop probability in [0, 1].
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
