"""The torch options issue 18 asked for, against torch in f32 and f64: loss weights as
buffers, Bilinear, Hardtanh, LogSigmoid, bias=False norms, empty BatchNorm batches,
AdaptiveAvgPool2d ``None`` sizes, AvgPool2d ``divisor_override``, LSTM ``proj_size``,
MultiheadAttention ``add_bias_kv``/``add_zero_attn``/``kdim``/``vdim`` and the post-norm
TransformerBlock that torch's default TransformerEncoderLayer loads into."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import shrew_core as sc
import shrew_nn as nn

LOSSES = [
    ("CrossEntropyLoss", {"weight": [0.2, 1.0, 3.0]}),
    ("NLLLoss", {"weight": [0.2, 1.0, 3.0]}),
    ("BCELoss", {"weight": [0.5, 2.0, 1.0]}),
    ("BCEWithLogitsLoss", {"weight": [0.5, 2.0, 1.0], "pos_weight": [1.0, 3.0, 0.5]}),
]


class _Head:
    """A model that owns its loss, as real training code does."""

    def __init__(self, lib, loss, kw):
        class Model(lib.Module):
            def __init__(self):
                super().__init__()
                self.fc = lib.Linear(4, 3)
                self.loss = getattr(lib, loss)(**kw)

        self.model = Model()


@pytest.mark.parametrize("loss,kw", LOSSES, ids=[n for n, _ in LOSSES])
def test_loss_weights_are_buffers(loss, kw, device):
    t = _Head(torch.nn, loss, {k: torch.tensor(v) for k, v in kw.items()}).model
    s = _Head(nn, loss, {k: sc.tensor(v, device=device) for k, v in kw.items()}).model
    s.to(device)
    assert sorted(s.state_dict()) == sorted(t.state_dict())
    assert {n for n, _ in s.named_buffers()} == {f"loss.{k}" for k in kw}
    s.load_state_dict({k: sc.tensor(v.numpy(), device=device)
                       for k, v in t.state_dict().items()})  # strict  # fmt: skip
    t.load_state_dict({k: torch.tensor(v.numpy()) for k, v in s.state_dict().items()})  # strict
    s.to(sc.f64)
    assert all(b.dtype == sc.f64 for b in s.buffers())
    x = np.random.default_rng(0).standard_normal((5, 3))
    if loss == "CrossEntropyLoss" or loss == "NLLLoss":
        target = np.array([0, 2, 1, 2, 0])
        logits = torch.tensor(x).log_softmax(1) if loss == "NLLLoss" else torch.tensor(x)
        args = [logits, torch.tensor(target)]
    else:
        target = np.random.default_rng(1).uniform(size=(5, 3))
        args = [torch.tensor(x).sigmoid() if loss == "BCELoss" else torch.tensor(x),
                torch.tensor(target)]
    want = t.double().loss(*args)
    got = s.loss(*[sc.tensor(a.numpy(), device=device) for a in args])
    np.testing.assert_allclose(got.numpy(), want.detach().numpy(), rtol=1e-12)


CASES = [
    ("bilinear", lambda: nn.Bilinear(3, 4, 5), lambda: torch.nn.Bilinear(3, 4, 5),
     [(6, 3), (6, 4)]),
    ("bilinear-nobias-3d", lambda: nn.Bilinear(2, 3, 2, bias=False),
     lambda: torch.nn.Bilinear(2, 3, 2, bias=False), [(2, 5, 2), (2, 5, 3)]),
    ("bilinear-unbatched", lambda: nn.Bilinear(2, 3, 4), lambda: torch.nn.Bilinear(2, 3, 4),
     [(2,), (3,)]),
    ("hardtanh", lambda: nn.Hardtanh(-0.5, 0.8), lambda: torch.nn.Hardtanh(-0.5, 0.8),
     [(4, 5)]),
    ("logsigmoid", lambda: nn.LogSigmoid(), lambda: torch.nn.LogSigmoid(), [(3, 7)]),
    ("batchnorm-nobias", lambda: nn.BatchNorm1d(4, bias=False),
     lambda: torch.nn.BatchNorm1d(4, bias=False), [(5, 4)]),
    ("groupnorm-nobias", lambda: nn.GroupNorm(2, 4, bias=False),
     lambda: torch.nn.GroupNorm(2, 4, bias=False), [(3, 4, 5)]),
    ("adaptive-3-none", lambda: nn.AdaptiveAvgPool2d((3, None)),
     lambda: torch.nn.AdaptiveAvgPool2d((3, None)), [(2, 3, 5, 6)]),
    ("adaptive-none-4", lambda: nn.AdaptiveAvgPool2d((None, 4)),
     lambda: torch.nn.AdaptiveAvgPool2d((None, 4)), [(3, 5, 7)]),
    ("avgpool-divisor", lambda: nn.AvgPool2d(3, 2, 1, divisor_override=4),
     lambda: torch.nn.AvgPool2d(3, 2, 1, divisor_override=4), [(2, 3, 7, 6)]),
    ("avgpool-divisor-ceil", lambda: nn.AvgPool2d((3, 2), 2, (1, 0), ceil_mode=True,
                                                  divisor_override=3),
     lambda: torch.nn.AvgPool2d((3, 2), 2, (1, 0), ceil_mode=True, divisor_override=3),
     [(1, 2, 6, 7)]),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_new_layers_match_torch(case, device, dtype, nnt):
    _, make_s, make_t, shapes = case
    args = [nnt.randn(*s, seed=i) for i, s in enumerate(shapes)]
    nnt.check_module(make_s().to(device).to(dtype), make_t(), args, dtype, device)


@pytest.mark.parametrize("cls,shape", [("BatchNorm1d", (0, 5, 9)), ("BatchNorm1d", (0, 5)),
                                       ("BatchNorm2d", (0, 5, 2, 2))])
@pytest.mark.parametrize("momentum", [0.3, None])
def test_batchnorm_empty_batch(cls, shape, momentum, device, dtype, nnt):
    """torch: an empty output, the running statistics unchanged, the batch counted."""
    t = getattr(torch.nn, cls)(5, momentum=momentum)
    with torch.no_grad():
        t.running_mean.uniform_(-1, 1)
    m = getattr(nn, cls)(5, momentum=momentum, dtype=dtype, device=device)
    nnt.check_module(m, t, [np.zeros(shape)], dtype, device, train=True)
    assert int(m.num_batches_tracked.item()) == int(t.num_batches_tracked) == 1
    nnt.check_module(m, t, [np.zeros(shape)], dtype, device, train=False)


LSTMP = [
    dict(num_layers=1),
    dict(num_layers=2, bidirectional=True),
    dict(num_layers=2, batch_first=True, bias=False),
]


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
@pytest.mark.parametrize("kw", LSTMP, ids=["1-layer", "2-layer-bidir", "batch-first-nobias"])
@pytest.mark.parametrize("with_state", [False, True])
def test_lstm_proj_size(kw, with_state, device, dtype, nnt):
    t = torch.nn.LSTM(3, 5, proj_size=2, **kw)
    m = nn.LSTM(3, 5, proj_size=2, **kw, dtype=dtype, device=device)
    assert sorted(m.state_dict()) == sorted(t.state_dict())
    d = 2 if kw.get("bidirectional") else 1
    n = kw["num_layers"] * d
    x = nnt.randn(*((2, 4, 3) if kw.get("batch_first") else (4, 2, 3)))
    if not with_state:
        nnt.check_module(m, t, [x], dtype, device)
        return
    h0, c0 = nnt.randn(n, 2, 2, seed=1), nnt.randn(n, 2, 5, seed=2)
    nnt.check_module(m, t, [x, h0, c0], dtype, device,
                     call=lambda mod, x, h, c: mod(x, (h, c)))  # fmt: skip


def test_lstm_proj_size_errors(device):
    with pytest.raises(ValueError, match="smaller than hidden_size"):
        nn.LSTM(3, 4, proj_size=4)
    with pytest.raises(ValueError, match="positive integer or zero"):
        nn.LSTM(3, 4, proj_size=-1)
    m = nn.LSTM(3, 4, proj_size=2, device=device)
    with pytest.raises(sc.ShapeError, match=r"h_0 of shape \(1, 2, 2\)"):
        m(sc.randn(5, 2, 3, device=device), (sc.zeros(1, 2, 4, device=device),
                                             sc.zeros(1, 2, 4, device=device)))


MHA = list(itertools.product([False, True], [False, True], [None, (3, 5)]))


@pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask")  # torch's
@pytest.mark.parametrize("bias_kv,zero_attn,kv", MHA,
                         ids=[f"bkv{int(a)}-zero{int(b)}-kv{c}" for a, b, c in MHA])
def test_attention_extra_keys_and_dims(bias_kv, zero_attn, kv, device, dtype, nnt):
    kd, vd = kv or (None, None)
    kw = dict(add_bias_kv=bias_kv, add_zero_attn=zero_attn, kdim=kd, vdim=vd)
    t = torch.nn.MultiheadAttention(4, 2, batch_first=True, **kw)
    m = nn.MultiheadAttention(4, 2, **kw, dtype=dtype, device=device)
    names = {"q_proj_weight", "k_proj_weight", "v_proj_weight"} if kv else {"in_proj_weight"}
    assert names <= set(m.state_dict()) and sorted(m.state_dict()) == sorted(t.state_dict())
    q, k, v = nnt.randn(2, 3, 4), nnt.randn(2, 5, kd or 4, seed=1), nnt.randn(2, 5, vd or 4,
                                                                            seed=2)
    kpm = np.array([[0, 0, 1, 0, 1], [0, 0, 0, 0, 1]], bool)
    mask = nnt.randn(3, 5, seed=3).astype(dtype)
    nnt.check_module(m, t, [q, k, v, mask, kpm], dtype, device,
                     call=lambda mod, q, k, v, am, pm: mod(q, k, v, attn_mask=am,
                                                           key_padding_mask=pm))  # fmt: skip


def test_attention_kdim_errors(device):
    m = nn.MultiheadAttention(4, 2, kdim=3, vdim=5, device=device)
    with pytest.raises(sc.ShapeError, match=r"expected key \[N, L, 3\]"):
        x = sc.randn(2, 3, 4, device=device)
        m(x, x, x)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("norm_first", [False, True])
def test_torch_default_encoder_layer_loads(batch_first, norm_first, device, dtype, nnt):
    """torch's TransformerEncoderLayer (post-norm, relu, dropout 0.1, sequence-first by
    default) is TransformerBlock(..., activation="relu", norm_first=False,
    batch_first=False): the state dict loads and the outputs match (eval mode: dropout)."""
    t = torch.nn.TransformerEncoderLayer(8, 2, 16, batch_first=batch_first,
                                         norm_first=norm_first)  # fmt: skip
    m = nn.TransformerBlock(8, 2, 16, dropout=0.1, activation="relu", norm_first=norm_first,
                            batch_first=batch_first, dtype=dtype, device=device)  # fmt: skip
    kpm = np.array([[0, 0, 0, 1]] * 3, bool)
    nnt.check_module(m, t, [nnt.randn(3, 4, 8) if batch_first else nnt.randn(4, 3, 8), kpm],
                     dtype, device, train=False,
                     call=lambda mod, x, pm: mod(x, None, pm))  # fmt: skip


def test_transformer_block_callable_activation(device, nnt):
    t = torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, activation=torch.nn.SiLU(),
                                         batch_first=True)  # fmt: skip
    m = nn.TransformerBlock(8, 2, 16, activation=nn.SiLU(), norm_first=False, device=device)
    nnt.check_module(m, t, [nnt.randn(2, 3, 8)], "float32", device)
    with pytest.raises(ValueError, match="activation must be one of"):
        nn.TransformerBlock(8, 2, 16, activation="swish")
