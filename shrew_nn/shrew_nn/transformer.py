"""``TransformerBlock``: an encoder block (pre-norm by default, post-norm with
``norm_first=False``), parameter-compatible with ``torch.nn.TransformerEncoderLayer``
(``self_attn``, ``linear1``, ``linear2``, ``norm1``, ``norm2``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import shrew_core as sc
from shrew_core import Tensor

from . import functional as F
from .attention import MultiHeadAttention
from .dropout import Dropout
from .linear import Linear
from .module import Module
from .normalization import LayerNorm

_ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu,
                "gelu_tanh": lambda x: F.gelu(x, "tanh"), "silu": F.silu}  # fmt: skip


class TransformerBlock(Module):
    """Pre-norm (default, ``norm_first=True``)::

        x = x + Dropout(Attn(LN1(x)));  x = x + Dropout(FF(LN2(x)))

    or post-norm (``norm_first=False``, torch's default encoder layer)::

        x = LN1(x + Dropout(Attn(x)));  x = LN2(x + Dropout(FF(x)))

    with ``FF = Linear(d_model, d_ff) -> activation -> Dropout -> Linear(d_ff, d_model)``.
    ``TransformerBlock(d, h, ff, dropout=p, activation="relu", norm_first=False,
    batch_first=False)`` is ``torch.nn.TransformerEncoderLayer(d, h, ff, p)``: its state dict
    loads and the outputs match.

    Args:
        d_model: width; n_heads: attention heads; d_ff: hidden width of the feed-forward.
        causal: every position attends only to itself and earlier ones.
        dropout: on attention weights and both residual branches (training only).
        activation: ``"gelu"`` (default), ``"gelu_tanh"``, ``"relu"``, ``"silu"`` or a
            function of a tensor.
        eps: LayerNorm epsilon; bias: biases in every Linear/LayerNorm.
        norm_first: pre-norm (True) or post-norm (False).
        batch_first: ``[N, L, d_model]`` (True) or ``[L, N, d_model]`` inputs.

    Shape:
        ``[N, L, d_model]`` (``[L, N, d_model]`` without batch_first, or ``[L, d_model]``)
        -> same.

    Examples:
        >>> import shrew_core as sc, shrew_nn as nn
        >>> nn.TransformerBlock(16, 4, 32, causal=True)(sc.randn(2, 5, 16)).shape
        (2, 5, 16)
    """

    def __init__(self, d_model: int, n_heads: int, d_ff: int, causal: bool = False,
                 dropout: float = 0.0, activation: str | Callable[[Tensor], Tensor] = "gelu",
                 eps: float = 1e-5, bias: bool = True, dtype: Any = sc.f32,
                 device: Any = "cpu", *, norm_first: bool = True,
                 batch_first: bool = True) -> None:  # fmt: skip
        super().__init__()
        if not callable(activation) and activation not in _ACTIVATIONS:
            raise ValueError(f"TransformerBlock: activation must be one of "
                             f"{sorted(_ACTIVATIONS)} or a function, got {activation!r}")
        self.d_model, self.n_heads, self.d_ff = d_model, n_heads, d_ff
        self.causal, self.activation = causal, activation
        self.norm_first, self.batch_first = norm_first, batch_first
        self._act = activation if callable(activation) else _ACTIVATIONS[activation]
        kw = {"dtype": dtype, "device": device}
        self.self_attn = MultiHeadAttention(d_model, n_heads, dropout, bias, batch_first, **kw)
        self.linear1 = Linear(d_model, d_ff, bias, **kw)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(d_ff, d_model, bias, **kw)
        self.norm1 = LayerNorm(d_model, eps, bias=bias, **kw)
        self.norm2 = LayerNorm(d_model, eps, bias=bias, **kw)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor | None = None,
                key_padding_mask: Tensor | None = None) -> Tensor:  # fmt: skip
        if x.ndim not in (2, 3) or x.shape[-1] != self.d_model:
            raise sc.ShapeError(f"TransformerBlock: expected input [N, L, {self.d_model}], got "
                                f"{x.shape}")  # fmt: skip
        if self.norm_first:
            x = x + self._attention(self.norm1(x), mask, key_padding_mask)
            return x + self._feed_forward(self.norm2(x))
        x = self.norm1(x + self._attention(x, mask, key_padding_mask))
        return self.norm2(x + self._feed_forward(x))

    def _attention(self, h: Tensor, mask, key_padding_mask) -> Tensor:
        a, _ = self.self_attn(h, h, h, attn_mask=mask, key_padding_mask=key_padding_mask,
                              is_causal=self.causal, need_weights=False)  # fmt: skip
        return self.dropout1(a)

    def _feed_forward(self, h: Tensor) -> Tensor:
        return self.dropout2(self.linear2(self.dropout(self._act(self.linear1(h)))))

    def extra_repr(self) -> str:
        return (f"d_model={self.d_model}, n_heads={self.n_heads}, d_ff={self.d_ff}, "
                f"causal={self.causal}, norm_first={self.norm_first}")  # fmt: skip
