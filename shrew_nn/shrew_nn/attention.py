"""``MultiHeadAttention``, parameter-compatible with ``torch.nn.MultiheadAttention``
(``in_proj_weight`` [3E, E] or ``q/k/v_proj_weight``, ``in_proj_bias`` [3E],
``bias_k``/``bias_v``, ``out_proj.weight``/``out_proj.bias``)."""

from __future__ import annotations

import math
from typing import Any

import shrew_core as sc
from shrew_core import Tensor

from . import functional as F
from . import init
from ._utils import empty_param
from .linear import Linear
from .module import Module


class MultiHeadAttention(Module):
    """Multi-head scaled dot-product attention.

    Args:
        embed_dim: model width E (of the query and of the output).
        num_heads: heads; E must be divisible by it.
        dropout: dropout on the attention weights (training only).
        bias: biases on the input and output projections.
        batch_first: inputs are ``[N, L, E]`` (default, as in the seed) rather than
            ``[L, N, E]``; unbatched ``[L, E]`` also works.
        add_bias_kv: learn one extra key and value (``bias_k``, ``bias_v`` [1, 1, E])
            appended to every sequence.
        add_zero_attn: append a zero key and value after the projections.
        kdim, vdim: feature sizes of key and value (default E); when either differs the
            projections are separate ``q_proj_weight`` [E, E], ``k_proj_weight`` [E, kdim],
            ``v_proj_weight`` [E, vdim] (torch's names) instead of ``in_proj_weight``.

    Forward:
        ``forward(query, key, value, attn_mask=None, key_padding_mask=None, is_causal=False,
        need_weights=True, average_attn_weights=True) -> (output, weights | None)``.
        ``attn_mask`` is ``[L, S]`` or ``[N*num_heads, L, S]``, bool (True = may NOT attend)
        or additive float; ``key_padding_mask`` is ``[N, S]`` (True = padding). With
        ``is_causal=True`` a causal mask is applied (and combined with ``attn_mask``).
        Every mask is folded into one additive tensor ahead of the fused softmax (the extra
        keys of ``add_bias_kv`` / ``add_zero_attn`` are never masked, as in torch).

    Attributes:
        in_proj_weight: ``[3E, E]`` xavier-uniform (or the three separate weights);
        in_proj_bias: ``[3E]`` zeros; out_proj: ``Linear(E, E)`` with zero bias;
        bias_k, bias_v: ``[1, 1, E]`` xavier-normal (with ``add_bias_kv``).

    Examples:
        >>> import shrew_core as sc, shrew_nn as nn
        >>> mha = nn.MultiHeadAttention(16, 4)
        >>> x = sc.randn(2, 5, 16)
        >>> out, w = mha(x, x, x, is_causal=True)
        >>> out.shape, w.shape
        ((2, 5, 16), (2, 5, 5))
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 batch_first: bool = True, dtype: Any = sc.f32, device: Any = "cpu", *,
                 add_bias_kv: bool = False, add_zero_attn: bool = False,
                 kdim: int | None = None, vdim: int | None = None) -> None:  # fmt: skip
        super().__init__()
        if num_heads < 1 or embed_dim % num_heads:
            raise ValueError(f"MultiHeadAttention: embed_dim ({embed_dim}) must be divisible "
                             f"by num_heads ({num_heads})")  # fmt: skip
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"MultiHeadAttention: dropout must be in [0, 1], got {dropout}")
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads,\
            embed_dim // num_heads
        self.dropout, self.batch_first = float(dropout), batch_first
        self.kdim = embed_dim if kdim is None else kdim
        self.vdim = embed_dim if vdim is None else vdim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.add_zero_attn = add_zero_attn
        kw = {"dtype": dtype, "device": device}
        if self._qkv_same_embed_dim:
            self.in_proj_weight = empty_param(3 * embed_dim, embed_dim, **kw)
            init.xavier_uniform_(self.in_proj_weight)
        else:
            self.in_proj_weight = None
            for name, width in (("q", embed_dim), ("k", self.kdim), ("v", self.vdim)):
                w = empty_param(embed_dim, width, **kw)
                init.xavier_uniform_(w)
                setattr(self, f"{name}_proj_weight", w)
        self.in_proj_bias = empty_param(3 * embed_dim, **kw) if bias else None
        self.out_proj = Linear(embed_dim, embed_dim, bias, **kw)
        if bias:
            init.zeros_(self.out_proj.bias)
        self.bias_k = self.bias_v = None
        if add_bias_kv:
            self.bias_k = init.xavier_normal_(empty_param(1, 1, embed_dim, **kw))
            self.bias_v = init.xavier_normal_(empty_param(1, 1, embed_dim, **kw))

    def _proj(self, x: Tensor, i: int) -> Tensor:
        E = self.embed_dim
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight[i * E : (i + 1) * E]
        else:
            w = getattr(self, "qkv"[i] + "_proj_weight")
        b = None if self.in_proj_bias is None else self.in_proj_bias[i * E : (i + 1) * E]
        return _linear3(x, w, b)

    def forward(self, query: Tensor, key: Tensor, value: Tensor,
                attn_mask: Tensor | None = None, key_padding_mask: Tensor | None = None,
                is_causal: bool = False, need_weights: bool = True,
                average_attn_weights: bool = True) -> tuple[Tensor, Tensor | None]:  # fmt: skip
        E, Hn, D = self.embed_dim, self.num_heads, self.head_dim
        for name, t, width in (("query", query, E), ("key", key, self.kdim),
                               ("value", value, self.vdim)):  # fmt: skip
            if t.ndim not in (2, 3) or t.shape[-1] != width:
                raise sc.ShapeError(f"MultiHeadAttention: expected {name} [N, L, {width}] "
                                    f"(or [L, {width}]), got {t.shape}")  # fmt: skip
        unbatched = query.ndim == 2
        if unbatched:
            query, key, value = query.unsqueeze(0), key.unsqueeze(0), value.unsqueeze(0)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif not self.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        N, L = query.shape[:2]
        S = key.shape[1]
        if key.shape[:2] != value.shape[:2] or key.shape[0] != N:
            raise sc.ShapeError(f"MultiHeadAttention: key {key.shape} and value {value.shape} "
                                f"do not match query {query.shape}")  # fmt: skip
        if self._qkv_same_embed_dim and query is key and key is value:
            qkv = _linear3(query, self.in_proj_weight, self.in_proj_bias)  # one GEMM
            qkv = qkv.reshape(N, L, 3, Hn, D).permute(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
        else:
            q = self._proj(query, 0).reshape(N, L, Hn, D).permute(0, 2, 1, 3)
            k = self._proj(key, 1).reshape(N, S, Hn, D).permute(0, 2, 1, 3)
            v = self._proj(value, 2).reshape(N, S, Hn, D).permute(0, 2, 1, 3)
        k, v, extra = self._extra_keys(k, v)
        mask = self._mask(attn_mask, key_padding_mask, is_causal, N, L, S, query)
        if mask is not None and extra:
            mask = sc.pad(mask, [0, extra])  # the appended keys are never masked
        out, weights = _attention(q, k, v, mask, self.dropout, self.training)
        out = out.permute(0, 2, 1, 3).reshape(N, L, E)
        out = _linear3(out, self.out_proj.weight, self.out_proj.bias)
        if unbatched:
            out = out.squeeze(0)
        elif not self.batch_first:
            out = out.transpose(0, 1)
        if not need_weights:
            return out, None
        if average_attn_weights:
            weights = weights.mean(dim=1)
        return out, (weights.squeeze(0) if unbatched else weights)

    def _extra_keys(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor, int]:
        """Append ``bias_k``/``bias_v`` then a zero key/value to [N, heads, S, D]."""
        N, Hn, _, D = k.shape
        extra = 0
        if self.bias_k is not None:
            k = sc.cat([k, self.bias_k.reshape(1, Hn, 1, D).expand(N, Hn, 1, D)], dim=2)
            v = sc.cat([v, self.bias_v.reshape(1, Hn, 1, D).expand(N, Hn, 1, D)], dim=2)
            extra += 1
        if self.add_zero_attn:
            zero = sc.zeros(N, Hn, 1, D, dtype=k.dtype, device=k.device)
            k, v = sc.cat([k, zero], dim=2), sc.cat([v, zero], dim=2)
            extra += 1
        return k, v, extra

    def _mask(self, attn_mask, key_padding_mask, is_causal, N, L, S, like) -> Tensor | None:
        """Every mask folded into ONE additive tensor broadcastable to [N, heads, L, S]."""
        Hn, dtype = self.num_heads, like.dtype
        mask = F.causal_mask(L, S, dtype, like.device) if is_causal else None
        if attn_mask is not None:
            if attn_mask.shape == (L, S):
                am = F._additive_mask(attn_mask, dtype, "attn_mask")
            elif attn_mask.shape == (N * Hn, L, S):
                am = F._additive_mask(attn_mask, dtype, "attn_mask").reshape(N, Hn, L, S)
            else:
                raise sc.ShapeError(f"MultiHeadAttention: attn_mask must be [{L}, {S}] or "
                                    f"[{N * Hn}, {L}, {S}], got {attn_mask.shape}")  # fmt: skip
            mask = am if mask is None else mask + am
        if key_padding_mask is not None:
            if key_padding_mask.shape != (N, S):
                raise sc.ShapeError(f"MultiHeadAttention: key_padding_mask must be [{N}, {S}], "
                                    f"got {key_padding_mask.shape}")  # fmt: skip
            kpm = F._additive_mask(key_padding_mask, dtype, "key_padding_mask")
            kpm = kpm.reshape(N, 1, 1, S)
            mask = kpm if mask is None else mask + kpm
        return mask

    def extra_repr(self) -> str:
        s = f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout}"
        if not self._qkv_same_embed_dim:
            s += f", kdim={self.kdim}, vdim={self.vdim}"
        if self.bias_k is not None:
            s += ", add_bias_kv=True"
        return s + (", add_zero_attn=True" if self.add_zero_attn else "")


def _attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, dropout_p: float,
               training: bool) -> tuple[Tensor, Tensor]:  # fmt: skip
    """``softmax(q kᵀ / √E + mask) v`` over [N, heads, L|S, E]: (output, weights)."""
    scale = 1.0 / math.sqrt(q.shape[-1])
    weights = F.masked_softmax(q @ k.transpose(-2, -1), mask, scale)
    if dropout_p > 0.0 and training:
        weights = sc.dropout(weights, dropout_p, True)
    return weights @ v, weights


def _linear3(x: Tensor, w: Tensor, b: Tensor | None) -> Tensor:
    """``linear`` over ``[N, L, E]`` as one 2-D GEMM."""
    lead = x.shape[:-1]
    return sc.linear(x.reshape(-1, x.shape[-1]), w, b).reshape(lead + (w.shape[0],))
