"""Every loss, functional and module, against torch: values and input gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import shrew_core as sc
import shrew_nn as nn
import shrew_nn.functional as F

REDUCTIONS = ["mean", "sum", "none"]


def _pair(dtype, device, *arrays):
    s = [sc.tensor(a.astype(dtype) if a.dtype.kind == "f" else a, device=device) for a in arrays]
    t = [torch.tensor(a.astype(dtype) if a.dtype.kind == "f" else a) for a in arrays]
    s[0].requires_grad_()
    t[0].requires_grad_()
    return s, t


def _compare(nnt, s_out, t_out, s_x, t_x, dtype):
    nnt.close(s_out, t_out, dtype, "loss")
    w = np.random.default_rng(1).standard_normal(t_out.shape).astype(dtype)
    g = (s_out * sc.tensor(w, device=s_x.device)).sum().backward()
    (t_out * torch.tensor(w)).sum().backward()
    nnt.close(g[s_x], t_x.grad, dtype, "grad of input")


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", ["mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss"])
def test_regression_losses(device, dtype, nnt, reduction, name):
    x, y = nnt.randn(4, 3), nnt.randn(4, 3, seed=1)
    y[0, 0] = x[0, 0] + 0.3  # inside the quadratic zone
    (sx, sy), (tx, ty) = _pair(dtype, device, x, y)
    _compare(nnt, getattr(F, name)(sx, sy, reduction), getattr(TF, name)(tx, ty,
             reduction=reduction), sx, tx, dtype)  # fmt: skip


@pytest.mark.parametrize("beta", [0.0, 0.5, 2.0])
def test_smooth_l1_beta(device, dtype, nnt, beta):
    (sx, sy), (tx, ty) = _pair(dtype, device, nnt.randn(5, 2), nnt.randn(5, 2, seed=3))
    _compare(nnt, nn.SmoothL1Loss(beta=beta)(sx, sy), torch.nn.SmoothL1Loss(beta=beta)(tx, ty),
             sx, tx, dtype)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_bce(device, dtype, nnt, reduction, weighted):
    p = 1 / (1 + np.exp(-nnt.randn(6, 2) * 3))
    p[0, 0], p[0, 1] = 0.0, 1.0  # log clamps at -100 like torch
    t = (nnt.randn(6, 2, seed=2) > 0).astype(float)
    w = np.abs(nnt.randn(6, 2, seed=4))
    (sp, st, sw), (tp, tt, tw) = _pair(dtype, device, p, t, w)
    s_out = nn.BCELoss(sw if weighted else None, reduction)(sp, st)
    t_out = torch.nn.BCELoss(tw if weighted else None, reduction=reduction)(tp, tt)
    nnt.close(s_out, t_out, dtype, "loss")
    with pytest.raises(ValueError, match="between 0 and 1"):
        F.bce_loss(sp * 2.0, st)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("pos_weight", [False, True])
def test_bce_with_logits(device, dtype, nnt, reduction, pos_weight):
    x = nnt.randn(5, 3) * 4
    x[0] = [120.0, -120.0, 0.0]  # stable for huge logits
    t = np.random.default_rng(3).uniform(size=(5, 3))
    pw = np.array([0.5, 2.0, 3.0])
    (sx, st, spw), (tx, tt, tpw) = _pair(dtype, device, x, t, pw)
    s_out = F.bce_with_logits_loss(sx, st, None, reduction, spw if pos_weight else None)
    t_out = TF.binary_cross_entropy_with_logits(tx, tt, reduction=reduction,
                                                pos_weight=tpw if pos_weight else None)
    _compare(nnt, s_out, t_out, sx, tx, dtype)


CE_CASES = [
    # (input shape, use weight, ignore_index, label_smoothing)
    ((5, 4), False, -100, 0.0),
    ((5, 4), False, 2, 0.0),
    ((5, 4), False, -100, 0.2),
    ((5, 4), False, 1, 0.3),
    ((5, 4), True, -100, 0.0),
    ((5, 4), True, 0, 0.25),
    ((2, 4, 3), False, -100, 0.1),
    ((2, 4, 3, 2), True, 1, 0.0),
    ((4,), False, -100, 0.0),
    ((1, 4), False, -100, 0.0),
]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", CE_CASES, ids=[str(i) for i in range(len(CE_CASES))])
def test_cross_entropy_indices(device, dtype, nnt, reduction, case):
    shape, weighted, ignore, ls = case
    x = nnt.randn(*shape) * 2
    c = shape[0] if len(shape) == 1 else shape[1]
    tshape = () if len(shape) == 1 else (shape[0],) + shape[2:]
    t = np.random.default_rng(5).integers(0, c, size=tshape)
    if ignore >= 0 and t.ndim:
        t.reshape(-1)[0] = ignore
    w = np.abs(nnt.randn(c, seed=6)) + 0.1
    (sx, st, sw), (tx, tt, tw) = _pair(dtype, device, x, t, w)
    s_out = nn.CrossEntropyLoss(sw if weighted else None, ignore, reduction, ls)(sx, st)
    t_out = torch.nn.CrossEntropyLoss(tw if weighted else None, ignore_index=ignore,
                                      reduction=reduction, label_smoothing=ls)(tx, tt)
    _compare(nnt, s_out, t_out, sx, tx, dtype)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted,ls", [(False, 0.0), (True, 0.0), (False, 0.2), (True, 0.1)])
def test_cross_entropy_probabilities(device, dtype, nnt, reduction, weighted, ls):
    x = nnt.randn(4, 3, 2)
    p = np.random.default_rng(2).uniform(size=(4, 3, 2))
    p /= p.sum(1, keepdims=True)
    w = np.abs(nnt.randn(3, seed=6)) + 0.1
    (sx, sp, sw), (tx, tp, tw) = _pair(dtype, device, x, p, w)
    s_out = F.cross_entropy(sx, sp, sw if weighted else None, reduction=reduction,
                            label_smoothing=ls)
    t_out = TF.cross_entropy(tx, tp, tw if weighted else None, reduction=reduction,
                             label_smoothing=ls)
    _compare(nnt, s_out, t_out, sx, tx, dtype)


def test_cross_entropy_stable_for_huge_logits(device):
    x = sc.tensor([[1000.0, -1000.0, 0.0]], device=device)
    loss = F.cross_entropy(x, sc.tensor([1], device=device))
    np.testing.assert_allclose(loss.item(), 2000.0, rtol=1e-6)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted,ignore", [(False, -100), (True, -100), (True, 2), (False, 0)])
def test_nll(device, dtype, nnt, reduction, weighted, ignore):
    x = np.log(np.random.default_rng(0).dirichlet(np.ones(4), size=6))
    t = np.array([0, 2, 3, 1, 2, 0])
    w = np.array([0.5, 1.0, 2.0, 1.5])
    (sx, st, sw), (tx, tt, tw) = _pair(dtype, device, x, t, w)
    s_out = nn.NLLLoss(sw if weighted else None, ignore, reduction)(sx, st)
    t_out = torch.nn.NLLLoss(tw if weighted else None, ignore_index=ignore,
                             reduction=reduction)(tx, tt)
    _compare(nnt, s_out, t_out, sx, tx, dtype)


def test_loss_errors(device):
    x = sc.randn(3, 4, device=device)
    with pytest.raises(sc.ShapeError, match="mse_loss: input shape"):
        F.mse_loss(x, sc.randn(4, 3, device=device))
    with pytest.raises(ValueError, match="reduction must be"):
        nn.MSELoss(reduction="avg")
    with pytest.raises(IndexError, match="out of range for 4 classes"):
        F.cross_entropy(x, sc.tensor([0, 4, 1], device=device))
    with pytest.raises(IndexError, match="out of range for 4 classes"):
        F.nll_loss(x, sc.tensor([0, -3, 1], device=device))
    with pytest.raises(sc.ShapeError, match="target shape"):
        F.cross_entropy(x, sc.tensor([0, 1], device=device))
    with pytest.raises(sc.DTypeError, match="class indices"):
        F.nll_loss(x, sc.randn(3, device=device))
