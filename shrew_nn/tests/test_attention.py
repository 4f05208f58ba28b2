"""MultiHeadAttention and TransformerBlock against torch's MultiheadAttention and
TransformerEncoderLayer(norm_first=True, batch_first=True)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import shrew_core as sc
import shrew_nn as nn


def _causal(L):
    return np.triu(np.ones((L, L), dtype=bool), 1)


def _mask_cases():
    return {
        "none": {},
        "bool_attn": {"attn_mask": _causal(4)},
        "float_attn": {"attn_mask": np.random.default_rng(0).standard_normal((4, 4))},
        "per_head": {"attn_mask": np.random.default_rng(1).uniform(size=(2 * 2, 4, 4)) > 0.7},
        "padding": {"key_padding_mask": np.array([[False] * 4, [False, False, True, True]])},
        "both": {"attn_mask": _causal(4),
                 "key_padding_mask": np.array([[False, True, False, False], [False] * 4])},
    }


@pytest.mark.parametrize("masks", list(_mask_cases()))
def test_self_attention_masks(device, dtype, nnt, masks):
    kw = _mask_cases()[masks]
    m = nn.MultiHeadAttention(8, 2, dtype=dtype, device=device)
    t = torch.nn.MultiheadAttention(8, 2, batch_first=True)
    names = list(kw)
    args = [nnt.randn(2, 4, 8)] + [kw[n] for n in names]
    if "attn_mask" in kw and kw["attn_mask"].dtype.kind == "f":
        args[1 + names.index("attn_mask")] = kw["attn_mask"].astype(dtype)

    def call(mod, x, *ms):
        return mod(x, x, x, **dict(zip(names, ms)))

    nnt.check_module(m, t, args, dtype, device, call=call)


def test_is_causal_equals_causal_mask(device, dtype, nnt):
    m = nn.MultiHeadAttention(8, 4, dtype=dtype, device=device)
    t = torch.nn.MultiheadAttention(8, 4, batch_first=True)
    mask = _causal(5)
    nnt.check_module(m, t, [nnt.randn(3, 5, 8), mask], dtype, device,
                     call=lambda mod, x, mk: mod(x, x, x, attn_mask=mk, is_causal=True))


@pytest.mark.parametrize("kw,shapes", [
    ({}, [(2, 3, 8), (2, 5, 8), (2, 5, 8)]),  # cross-attention
    ({"batch_first": False}, [(3, 2, 8), (5, 2, 8), (5, 2, 8)]),
    ({"bias": False}, [(1, 1, 8), (1, 1, 8), (1, 1, 8)]),  # batch 1, sequence 1
    ({}, [(3, 8), (4, 8), (4, 8)]),  # unbatched
])  # fmt: skip
def test_cross_attention(device, dtype, nnt, kw, shapes):
    m = nn.MultiHeadAttention(8, 2, **kw, dtype=dtype, device=device)
    t = torch.nn.MultiheadAttention(8, 2, **{"batch_first": True, **kw})
    args = [nnt.randn(*s, seed=i) for i, s in enumerate(shapes)]
    nnt.check_module(m, t, args, dtype, device)


def test_per_head_weights_and_no_weights(device, dtype, nnt):
    m = nn.MultiHeadAttention(8, 2, dtype=dtype, device=device)
    t = torch.nn.MultiheadAttention(8, 2, batch_first=True)
    nnt.check_module(m, t, [nnt.randn(2, 3, 8)], dtype, device,
                     call=lambda mod, x: mod(x, x, x, average_attn_weights=False))
    out, w = m(*(sc.randn(2, 3, 8, dtype=dtype, device=device),) * 3, need_weights=False)
    assert w is None and out.shape == (2, 3, 8)


def test_attention_dropout(device, nnt):
    m = nn.MultiHeadAttention(8, 2, dropout=0.5, device=device)
    t = torch.nn.MultiheadAttention(8, 2, dropout=0.5, batch_first=True)
    nnt.check_module(m, t, [nnt.randn(2, 3, 8)], "float32", device, train=False,
                     call=lambda mod, x: mod(x, x, x))
    x = sc.randn(2, 3, 8, device=device)
    m.train()
    sc.manual_seed(0)
    a = m(x, x, x)[1].numpy()
    sc.manual_seed(0)
    np.testing.assert_array_equal(a, m(x, x, x)[1].numpy())
    assert (a == 0).any()  # dropped weights (averaged over 2 heads: both dropped)


def test_attention_errors(device):
    m = nn.MultiHeadAttention(8, 2, device=device)
    x = sc.randn(2, 3, 8, device=device)
    with pytest.raises(sc.ShapeError, match=r"expected key \[N, L, 8\]"):
        m(x, sc.randn(2, 3, 6, device=device), x)
    with pytest.raises(sc.ShapeError, match="attn_mask must be"):
        m(x, x, x, attn_mask=sc.zeros(2, 2, device=device))
    with pytest.raises(sc.ShapeError, match="key_padding_mask must be"):
        m(x, x, x, key_padding_mask=sc.zeros(2, 4, device=device))
    with pytest.raises(ValueError, match="divisible by num_heads"):
        nn.MultiHeadAttention(8, 3)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("activation", ["gelu", "relu"])
@pytest.mark.parametrize("shape", [(2, 5, 8), (1, 1, 8)])
def test_transformer_block(device, dtype, nnt, causal, activation, shape):
    m = nn.TransformerBlock(8, 2, 16, causal=causal, activation=activation, dtype=dtype,
                            device=device)
    t = torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, activation=activation,
                                         batch_first=True, norm_first=True)
    L = shape[1]
    mask = torch.nn.Transformer.generate_square_subsequent_mask(L) if causal else None

    def call(mod, x):
        return mod(x) if isinstance(mod, nn.Module) else mod(x, src_mask=mask)

    nnt.check_module(m, t, [nnt.randn(*shape)], dtype, device, call=call)


def test_transformer_block_padding_and_errors(device, nnt):
    m = nn.TransformerBlock(8, 2, 16, device=device)
    t = torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, activation="gelu",
                                         batch_first=True, norm_first=True)
    pad = np.array([[False, False, True], [False, False, False]])
    nnt.check_module(m, t, [nnt.randn(2, 3, 8), pad], "float32", device,
                     call=lambda mod, x, p: mod(x, src_key_padding_mask=p)
                     if not isinstance(mod, nn.Module) else mod(x, key_padding_mask=p))
    with pytest.raises(sc.ShapeError, match="TransformerBlock: expected input"):
        m(sc.randn(2, 3, 4, device=device))
    with pytest.raises(ValueError, match="activation must be one of"):
        nn.TransformerBlock(8, 2, 16, activation="tanh")


def test_masks_reach_the_fused_masked_softmax(device, monkeypatch):
    """attn_mask, key_padding_mask and is_causal arrive as ONE additive mask at the backend's
    masked_softmax (with the 1/sqrt(head_dim) scale), and its backward is the fused one."""
    m = nn.MultiHeadAttention(8, 2, device=device)
    x = sc.randn(2, 4, 8, device=device).requires_grad_()
    backend = x.backend
    seen = []
    for name in ("masked_softmax", "masked_softmax_backward"):
        orig = getattr(backend, name)

        def spy(*args, _orig=orig, _name=name):
            seen.append((_name, args))
            return _orig(*args)

        monkeypatch.setattr(backend, name, spy)
    kpm = sc.tensor(np.array([[False, False, False, True], [False] * 4]), device=device)
    out, _ = m(x, x, x, attn_mask=sc.tensor(_causal(4), device=device), key_padding_mask=kpm,
               is_causal=True)
    out.sum().backward()
    assert [s[0] for s in seen] == ["masked_softmax", "masked_softmax_backward"]
    _, (_, layout, mask, mask_layout, _, dim, scale) = seen[0]
    assert layout.shape == (2, 2, 4, 4) and mask_layout.shape == (2, 2, 4, 4)
    assert mask is not None and dim == 3 and scale == pytest.approx(0.5)


@pytest.mark.parametrize("mask_kind", ["none", "causal", "bool", "float"])
def test_scaled_dot_product_attention_matches_torch(mask_kind, dtype, device, nnt):
    rng = np.random.default_rng(7)
    q, k, v = (rng.standard_normal((2, 3, 5, 4)) for _ in range(3))
    k = k[:, :, :6] if mask_kind != "causal" else k
    v = v[:, :, : k.shape[2]]
    S = k.shape[2]
    bool_mask = rng.random((5, S)) < 0.3
    bool_mask[:, 0] = False  # no fully masked row
    float_mask = rng.standard_normal((1, 3, 5, S))
    ts = [torch.tensor(a, dtype=nnt.TORCH_DTYPE[dtype], requires_grad=True) for a in (q, k, v)]
    ss = [sc.tensor(a, dtype=dtype, device=device).requires_grad_() for a in (q, k, v)]
    kw_t, kw_s = {}, {}
    if mask_kind == "causal":
        kw_t["is_causal"] = kw_s["is_causal"] = True
    elif mask_kind == "bool":  # torch: True = attend; shrew (like nn.MHA): True = masked out
        kw_t["attn_mask"] = torch.tensor(~bool_mask)
        kw_s["attn_mask"] = sc.tensor(bool_mask, device=device)
    elif mask_kind == "float":
        kw_t["attn_mask"] = torch.tensor(float_mask, dtype=nnt.TORCH_DTYPE[dtype])
        kw_s["attn_mask"] = sc.tensor(float_mask, dtype=dtype, device=device)
    expected = torch.nn.functional.scaled_dot_product_attention(*ts, **kw_t)
    out, _ = nn.functional.scaled_dot_product_attention(*ss, **kw_s)
    nnt.close(out, expected, dtype, "sdpa output")
    weight = rng.standard_normal(expected.shape)
    (expected * torch.tensor(weight, dtype=nnt.TORCH_DTYPE[dtype])).sum().backward()
    grads = (out * sc.tensor(weight, dtype=dtype, device=device)).sum().backward()
    for name, s, t in zip("qkv", ss, ts):
        nnt.close(grads[s], t.grad, dtype, f"sdpa grad {name}")
