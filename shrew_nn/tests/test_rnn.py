"""Recurrent layers and cells against torch: outputs, final states and every gradient."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import shrew_core as sc
import shrew_nn as nn

LAYERS = [
    # kwargs, input shape (T, B, I) unless batch_first
    ({}, (5, 3, 4)),
    ({"num_layers": 2, "bidirectional": True}, (4, 2, 4)),
    ({"batch_first": True, "bias": False}, (2, 3, 4)),
    ({"num_layers": 2}, (1, 1, 4)),  # sequence 1, batch 1
    ({"bidirectional": True, "batch_first": True}, (1, 6, 4)),
    ({}, (3, 4)),  # unbatched
]


def _call_with_state(mode, states):
    def call(m, x, *st):
        if mode == "LSTM":
            return m(x, tuple(st) if st else None)
        return m(x, st[0] if st else None)

    return call


@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("case", LAYERS, ids=[str(i) for i in range(len(LAYERS))])
def test_recurrent_layer(device, dtype, nnt, mode, case):
    kw, shape = case
    m = getattr(nn, mode)(4, 5, **kw, dtype=dtype, device=device)
    t = getattr(torch.nn, mode)(4, 5, **kw)
    nnt.check_module(m, t, [nnt.randn(*shape)], dtype, device, call=_call_with_state(mode, 0))


@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN"])
def test_recurrent_initial_states(device, dtype, nnt, mode):
    kw = {"num_layers": 2, "bidirectional": True, "batch_first": True}
    m = getattr(nn, mode)(3, 4, **kw, dtype=dtype, device=device)
    t = getattr(torch.nn, mode)(3, 4, **kw)
    states = [nnt.randn(4, 2, 4, seed=s) for s in range(2 if mode == "LSTM" else 1)]
    nnt.check_module(m, t, [nnt.randn(2, 3, 3), *states], dtype, device,
                     call=_call_with_state(mode, len(states)))


def test_rnn_relu(device, dtype, nnt):
    m = nn.RNN(3, 4, nonlinearity="relu", num_layers=2, dtype=dtype, device=device)
    t = torch.nn.RNN(3, 4, nonlinearity="relu", num_layers=2)
    nnt.check_module(m, t, [nnt.randn(4, 2, 3)], dtype, device)


def test_dropout_between_layers(device):
    m = nn.LSTM(3, 4, num_layers=2, dropout=0.5, device=device)
    x = sc.randn(5, 2, 3, device=device)
    m.eval()
    a = m(x)[0].numpy()
    np.testing.assert_array_equal(a, m(x)[0].numpy())  # eval: deterministic
    m.train()
    sc.manual_seed(1)
    b = m(x)[0].numpy()
    sc.manual_seed(1)
    np.testing.assert_array_equal(b, m(x)[0].numpy())  # seeded
    assert not np.allclose(a, b)  # the dropout mask changed the second layer's input


CELLS = [({}, (3, 4)), ({"bias": False}, (1, 4)), ({}, (4,))]


@pytest.mark.parametrize("mode", ["LSTMCell", "GRUCell", "RNNCell"])
@pytest.mark.parametrize("case", CELLS, ids=[str(i) for i in range(len(CELLS))])
@pytest.mark.parametrize("with_state", [False, True])
def test_cells(device, dtype, nnt, mode, case, with_state):
    kw, shape = case
    m = getattr(nn, mode)(4, 5, **kw, dtype=dtype, device=device)
    t = getattr(torch.nn, mode)(4, 5, **kw)
    hshape = shape[:-1] + (5,)
    states = []
    if with_state:
        states = [nnt.randn(*hshape, seed=s) for s in range(2 if mode == "LSTMCell" else 1)]
    nnt.check_module(m, t, [nnt.randn(*shape), *states], dtype, device,
                     call=_call_with_state(mode[:-4], len(states)))


def test_rnn_cell_relu(device, dtype, nnt):
    m = nn.RNNCell(3, 4, nonlinearity="relu", dtype=dtype, device=device)
    nnt.check_module(m, torch.nn.RNNCell(3, 4, nonlinearity="relu"), [nnt.randn(2, 3)], dtype,
                     device)


def test_long_sequence_gradients(device, nnt):
    """64 steps: the hand-written backward stays exact over a long chain."""
    m = nn.LSTM(3, 4, dtype="float64", device=device)
    nnt.check_module(m, torch.nn.LSTM(3, 4), [nnt.randn(64, 2, 3) * 0.5], "float64", device)


def test_recurrent_errors(device):
    lstm = nn.LSTM(4, 5, num_layers=2, device=device)
    with pytest.raises(sc.ShapeError, match="expected input_size 4"):
        lstm(sc.randn(3, 2, 5, device=device))
    with pytest.raises(sc.ShapeError, match="expected input"):
        lstm(sc.randn(3, device=device))
    with pytest.raises(sc.ShapeError, match=r"expected h_0 of shape \(2, 2, 5\)"):
        lstm(sc.randn(3, 2, 4, device=device), (sc.zeros(1, 2, 5, device=device),
                                                sc.zeros(2, 2, 5, device=device)))
    with pytest.raises(sc.ShapeError, match="LSTMCell: expected input"):
        nn.LSTMCell(4, 5, device=device)(sc.randn(2, 3, device=device))
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.RNN(2, 2, nonlinearity="gelu")
    with pytest.raises(nn.StateDictError, match=r"size mismatch for .weight_ih_l0.*\(18, 4\)"):
        nn.GRU(4, 5).load_state_dict(
            {k: sc.tensor(v.numpy()) for k, v in torch.nn.GRU(4, 6).state_dict().items()})


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_cell_update_is_the_backend_kernel(device, monkeypatch, mode):
    """Every step's cell update, forward and backward, is one call of the backend's fused
    cell method (the reference backend's are the composed defaults, cpu's the Numba ones)."""
    x = sc.randn(6, 3, 4, device=device).requires_grad_()
    m = getattr(nn, mode)(4, 5, bidirectional=True, device=device)
    backend = x.backend
    calls = {}
    kind = mode.lower()
    for name in (f"{kind}_cell_forward", f"{kind}_cell_backward"):
        orig = getattr(backend, name)

        def spy(*args, _orig=orig, _name=name):
            calls[_name] = calls.get(_name, 0) + 1
            return _orig(*args)

        monkeypatch.setattr(backend, name, spy)
    m(x)[0].sum().backward()
    assert calls == {f"{kind}_cell_forward": 12, f"{kind}_cell_backward": 12}
