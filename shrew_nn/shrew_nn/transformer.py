"""``TransformerBlock``: a pre-norm encoder block, parameter-compatible with
``torch.nn.TransformerEncoderLayer(..., batch_first=True, norm_first=True)``
(``self_attn``, ``linear1``, ``linear2``, ``norm1``, ``norm2``)."""

from __future__ import annotations

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
    """``x + Dropout(Attn(LN1(x)))`` then ``x + Dropout(FF(LN2(x)))`` with
    ``FF = Linear(d_model, d_ff) -> activation -> Dropout -> Linear(d_ff, d_model)``.

    Args:
        d_model: width; n_heads: attention heads; d_ff: hidden width of the feed-forward.
        causal: every position attends only to itself and earlier ones.
        dropout: on attention weights and both residual branches (training only).
        activation: ``"gelu"`` (default), ``"gelu_tanh"``, ``"relu"`` or ``"silu"``.
        eps: LayerNorm epsilon; bias: biases in every Linear/LayerNorm.

    Shape:
        ``[N, L, d_model]`` (or ``[L, d_model]``) -> same.

    Examples:
        >>> import shrew_core as sc, shrew_nn as nn
        >>> nn.TransformerBlock(16, 4, 32, causal=True)(sc.randn(2, 5, 16)).shape
        (2, 5, 16)
    """

    def __init__(self, d_model: int, n_heads: int, d_ff: int, causal: bool = False,
                 dropout: float = 0.0, activation: str = "gelu", eps: float = 1e-5,
                 bias: bool = True, dtype: Any = sc.f32, device: Any = "cpu") -> None:  # fmt: skip
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(f"TransformerBlock: activation must be one of "
                             f"{sorted(_ACTIVATIONS)}, got {activation!r}")  # fmt: skip
        self.d_model, self.n_heads, self.d_ff = d_model, n_heads, d_ff
        self.causal, self.activation = causal, activation
        kw = {"dtype": dtype, "device": device}
        self.self_attn = MultiHeadAttention(d_model, n_heads, dropout, bias, True, **kw)
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
        h = self.norm1(x)
        a, _ = self.self_attn(h, h, h, attn_mask=mask, key_padding_mask=key_padding_mask,
                              is_causal=self.causal, need_weights=False)  # fmt: skip
        x = x + self.dropout1(a)
        h = self.linear2(self.dropout(_ACTIVATIONS[self.activation](self.linear1(self.norm2(x)))))
        return x + self.dropout2(h)

    def extra_repr(self) -> str:
        return (f"d_model={self.d_model}, n_heads={self.n_heads}, d_ff={self.d_ff}, "
                f"causal={self.causal}")  # fmt: skip
