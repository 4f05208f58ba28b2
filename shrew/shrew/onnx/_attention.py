"""ONNX converters of ``MultiHeadAttention`` and ``TransformerBlock``.

Attention is spelled out with MatMul/Softmax (ONNX 17 has no attention op): the packed
``in_proj_weight`` is split into q/k/v projections, heads are formed by
``Reshape [0, 0, heads, head_dim]`` + Transpose (any batch and sequence length), and masks
become one additive tensor as in shrew_nn: the causal mask is built from the runtime
sequence lengths (``Range`` + ``Greater``), bool masks become ``-inf`` / 0.
"""

from __future__ import annotations

import math

import shrew_core as sc
import shrew_nn as nn

from ._layers import activation, layer_norm, linear
from .export_module import ModuleExporter, Value, register_converter


def _additive(E: ModuleExporter, mask: Value, dtype) -> str:
    if mask.dtype.is_float:
        return mask.name if mask.dtype == dtype else E.op("Cast", mask, to=_onnx(dtype))
    cond = mask.name if mask.dtype.is_bool else E.op("Cast", mask, to=_onnx(sc.bool_))
    return E.op("Where", cond, E.const(-math.inf, dtype), E.const(0.0, dtype))


def _onnx(dtype) -> int:
    from .dtypes import to_onnx

    return to_onnx(dtype)


def causal_mask(E: ModuleExporter, q: str, k: str, dtype) -> str:
    """Additive ``[L, S]`` mask, ``-inf`` where key j > query i, from the runtime lengths
    of ``q`` and ``k`` (both ``[N, L|S, E]``)."""
    zero, one = E.const(sc.i64.np_dtype.type(0)), E.const(sc.i64.np_dtype.type(1))

    def length(v):
        return E.op("Gather", E.op("Shape", v), one, axis=0)

    rows = E.op("Unsqueeze", E.op("Range", zero, length(q), one), E.ints([1]))
    cols = E.op("Unsqueeze", E.op("Range", zero, length(k), one), E.ints([0]))
    return E.op("Where", E.op("Greater", cols, rows), E.const(-math.inf, dtype),
                E.const(0.0, dtype))  # fmt: skip


def attention(E: ModuleExporter, m, query: Value, key: Value, value: Value, attn_mask=None,
              key_padding_mask=None, is_causal: bool = False, need_weights: bool = True,
              average_attn_weights: bool = True) -> tuple[str, str | None]:  # fmt: skip
    """Nodes computing ``MultiHeadAttention.forward``: (output, weights or None) names."""
    emb, heads, hd = m.embed_dim, m.num_heads, m.head_dim
    dt = query.dtype
    unbatched = query.ndim == 2
    prepared: dict[str, str] = {}

    def prep(v: Value) -> str:
        if v.name not in prepared:
            n = v.name
            if unbatched:
                n = E.op("Unsqueeze", n, E.ints([0]))
            elif not m.batch_first:
                n = E.op("Transpose", n, perm=[1, 0, 2])
            prepared[v.name] = n
        return prepared[v.name]

    q_in, k_in, v_in = prep(query), prep(key), prep(value)
    ws = E.op("Split", E.param(m.in_proj_weight), E.ints([emb] * 3), n_out=3, axis=0)
    bs = [None] * 3 if m.in_proj_bias is None else \
        E.op("Split", E.param(m.in_proj_bias), E.ints([emb] * 3), n_out=3, axis=0)

    def heads_of(x: str, i: int) -> str:
        y = E.op("MatMul", x, E.op("Transpose", ws[i], perm=[1, 0]))
        if bs[i] is not None:
            y = E.op("Add", y, bs[i])
        return E.op("Transpose", E.op("Reshape", y, E.ints([0, 0, heads, hd])),
                    perm=[0, 2, 1, 3])  # fmt: skip

    q, k, v = heads_of(q_in, 0), heads_of(k_in, 1), heads_of(v_in, 2)
    scores = E.op("Mul", E.op("MatMul", q, E.op("Transpose", k, perm=[0, 1, 3, 2])),
                  E.const(1.0 / math.sqrt(hd), dt))  # fmt: skip
    masks = []
    if is_causal:
        masks.append(causal_mask(E, q_in, k_in, dt))
    if attn_mask is not None:
        am = _additive(E, attn_mask, dt)
        if attn_mask.ndim == 3:  # [N*heads, L, S] -> [N, heads, L, S]
            tail = E.op("Slice", E.op("Shape", am), E.ints([1]), E.ints([3]))
            am = E.op("Reshape", am, E.op("Concat", E.ints([-1, heads]), tail, axis=0))
        masks.append(am)
    if key_padding_mask is not None:
        kpm = _additive(E, key_padding_mask, dt)
        if unbatched:
            kpm = E.op("Unsqueeze", kpm, E.ints([0]))
        masks.append(E.op("Reshape", kpm, E.ints([0, 1, 1, -1])))
    for mask in masks:
        scores = E.op("Add", scores, mask)
    weights = E.op("Softmax", scores, axis=-1)
    o = E.op("Transpose", E.op("MatMul", weights, v), perm=[0, 2, 1, 3])
    o = E.op("Reshape", o, E.ints([0, 0, emb]))
    with E.b.scope("out_proj"):
        o = linear(E, Value(o, _rank3(query)), m.out_proj.weight, m.out_proj.bias)
    if unbatched:
        o = E.op("Squeeze", o, E.ints([0]))
    elif not m.batch_first:
        o = E.op("Transpose", o, perm=[1, 0, 2])
    if not need_weights:
        return o, None
    if average_attn_weights:
        weights = E.op("ReduceMean", weights, axes=[1], keepdims=0)
    if unbatched:
        weights = E.op("Squeeze", weights, E.ints([0]))
    return o, weights


def _rank3(v: Value) -> sc.Tensor:
    """An example of rank 3 (what ``linear`` reads to choose MatMul over Gemm)."""
    return v.example if v.ndim == 3 else v.example.unsqueeze(0)


@register_converter(nn.MultiHeadAttention)
def _mha(E: ModuleExporter, m, *args, **kwargs):
    a = E.bind(m, args, kwargs)
    out, weights = E.run(m, *args, **kwargs)
    o, w = attention(E, m, a["query"], a["key"], a["value"], a["attn_mask"],
                     a["key_padding_mask"], bool(a["is_causal"]), bool(a["need_weights"]),
                     bool(a["average_attn_weights"]))  # fmt: skip
    return E.value(o, out), (None if w is None else E.value(w, weights))


@register_converter(nn.TransformerBlock)
def _transformer_block(E: ModuleExporter, m, x: Value, mask=None, key_padding_mask=None):
    out = E.run(m, x, mask, key_padding_mask)
    with E.b.scope("norm1"):
        h = Value(layer_norm(E, m.norm1, x), m.norm1(x.example))
    with E.b.scope("self_attn"):
        a, _ = attention(E, m.self_attn, h, h, h, mask, key_padding_mask, m.causal, False)
    x1 = E.op("Add", x, a)
    with E.b.scope("norm2"):
        h2 = Value(layer_norm(E, m.norm2, Value(x1, x.example)), x.example)
    with E.b.scope("linear1"):
        f = linear(E, h2, m.linear1.weight, m.linear1.bias)
    f = activation(E, m.activation, f, x.dtype)
    with E.b.scope("linear2"):
        f = linear(E, Value(f, x.example), m.linear2.weight, m.linear2.bias)
    return E.value(E.op("Add", x1, f), out)
