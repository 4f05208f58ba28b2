"""Linear, Embedding, Identity, Flatten, activations and Dropout against torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import shrew_core as sc
import shrew_nn as nn


@pytest.mark.parametrize("shape", [(3, 5), (1, 5), (2, 3, 5), (5,)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear(device, dtype, shape, bias, nnt):
    m = nn.Linear(5, 4, bias=bias, dtype=dtype, device=device)
    nnt.check_module(m, torch.nn.Linear(5, 4, bias=bias), [nnt.randn(*shape)], dtype, device)


def test_linear_bad_input(device):
    m = nn.Linear(5, 4, device=device)
    with pytest.raises(sc.ShapeError, match=r"Linear: expected input \[\.\.\., 5\]"):
        m(sc.randn(2, 3, device=device))


@pytest.mark.parametrize("padding_idx", [None, 1])
def test_embedding(device, dtype, padding_idx, nnt):
    t = torch.nn.Embedding(6, 3, padding_idx=padding_idx)
    m = nn.Embedding(6, 3, padding_idx=padding_idx, dtype=dtype, device=device)
    idx = np.array([[0, 1, 5], [1, 1, 2]])
    nnt.check_module(m, t, [idx], dtype, device)
    if padding_idx is not None:
        fresh = nn.Embedding(6, 3, padding_idx=padding_idx, device=device)
        assert not np.any(fresh.weight.numpy()[padding_idx])


def test_embedding_float_indices_error(device):
    with pytest.raises(sc.DTypeError, match="embedding: indices must be integers"):
        nn.Embedding(4, 2, device=device)(sc.randn(3, device=device))


ACTS = [
    (lambda: nn.ReLU(), lambda: torch.nn.ReLU()),
    (lambda: nn.GELU(), lambda: torch.nn.GELU()),
    (lambda: nn.GeLU("tanh"), lambda: torch.nn.GELU("tanh")),
    (lambda: nn.SiLU(), lambda: torch.nn.SiLU()),
    (lambda: nn.LeakyReLU(0.2), lambda: torch.nn.LeakyReLU(0.2)),
    (lambda: nn.ELU(0.7), lambda: torch.nn.ELU(0.7)),
    (lambda: nn.Mish(), lambda: torch.nn.Mish()),
    (lambda: nn.Sigmoid(), lambda: torch.nn.Sigmoid()),
    (lambda: nn.Tanh(), lambda: torch.nn.Tanh()),
    (lambda: nn.Softplus(2.0, 5.0), lambda: torch.nn.Softplus(2.0, 5.0)),
    (lambda: nn.Softmax(dim=1), lambda: torch.nn.Softmax(dim=1)),
    (lambda: nn.LogSoftmax(dim=-1), lambda: torch.nn.LogSoftmax(dim=-1)),
    (lambda: nn.Identity(), lambda: torch.nn.Identity()),
    (lambda: nn.Flatten(), lambda: torch.nn.Flatten()),
    (lambda: nn.Flatten(0, 1), lambda: torch.nn.Flatten(0, 1)),
]


@pytest.mark.parametrize("make", ACTS, ids=[str(i) for i in range(len(ACTS))])
def test_activation(device, dtype, make, nnt):
    x = nnt.randn(2, 3, 4) * 3
    x[0, 0, :2] = [40.0, -40.0]  # saturated regions
    nnt.check_module(make[0](), make[1](), [x], dtype, device)


def test_dropout_train_eval_and_seed(device):
    x = sc.ones(200, 50, dtype="f64", device=device).requires_grad_()
    d = nn.Dropout(0.3)
    sc.manual_seed(7)
    y1 = d(x)
    sc.manual_seed(7)
    y2 = d(x)
    np.testing.assert_array_equal(y1.numpy(), y2.numpy())
    vals = y1.numpy()
    assert set(np.unique(vals)) <= {0.0, 1.0 / 0.7}
    assert abs((vals == 0).mean() - 0.3) < 0.02
    g = y1.sum().backward()[x]
    np.testing.assert_allclose(g.numpy(), vals)  # d/dx (x * mask / (1-p)) = mask / (1-p)
    d.eval()
    assert d(x) is x
    with pytest.raises(ValueError, match="p must be in"):
        nn.Dropout(1.5)


def test_functional_dropout_identity_when_p_zero(device, nnt):
    x = sc.randn(3, 3, device=device)
    nnt.close(nn.functional.dropout(x, 0.0), x.numpy(), "float32")
