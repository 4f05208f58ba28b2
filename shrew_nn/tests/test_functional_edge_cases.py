"""shrew_nn.functional on the inputs where it used to disagree with PyTorch (issue 17):
negative ``padding_idx``, empty batches for group_norm / batch_norm."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import shrew_core as sc
import shrew_nn.functional as F


@pytest.mark.parametrize("padding_idx", [-1, -5, 2])
def test_embedding_negative_padding_idx_wraps(device, dtype, nnt, padding_idx):
    w = np.random.default_rng(0).standard_normal((5, 3))
    idx = np.array([[4, 0], [2, 4]])
    wt = torch.tensor(w, dtype=nnt.TORCH_DTYPE[dtype], requires_grad=True)
    ws = sc.tensor(w, dtype=dtype, device=device).requires_grad_()
    out_t = TF.embedding(torch.tensor(idx), wt, padding_idx=padding_idx)
    out_s = F.embedding(sc.tensor(idx, device=device), ws, padding_idx=padding_idx)
    nnt.close(out_s, out_t, dtype, "embedding output")
    g = np.random.default_rng(1).standard_normal(out_t.shape)
    (out_t * torch.tensor(g, dtype=wt.dtype)).sum().backward()
    grads = (out_s * sc.tensor(g, dtype=dtype, device=device)).sum().backward()
    nnt.close(grads[ws], wt.grad, dtype, "embedding weight gradient")
    assert not np.any(grads[ws].numpy()[padding_idx % 5]), "the padding row got a gradient"


def test_embedding_padding_idx_out_of_range(device):
    w = sc.randn(5, 3, device=device).requires_grad_()
    with pytest.raises(sc.IndexOutOfRangeError, match="padding_idx -6 is out of range"):
        F.embedding(sc.tensor([0, 1], device=device), w, padding_idx=-6)


def test_group_norm_empty_batch(device, dtype, nnt):
    x = sc.zeros(0, 2, dtype=dtype, device=device).requires_grad_()
    w = sc.ones(2, dtype=dtype, device=device).requires_grad_()
    out = F.group_norm(x, 1, w, sc.zeros(2, dtype=dtype, device=device))
    want = TF.group_norm(torch.zeros(0, 2, dtype=nnt.TORCH_DTYPE[dtype]), 1)
    nnt.close(out, want, dtype, "group_norm of an empty batch")
    grads = out.sum().backward()
    assert grads[x].shape == (0, 2) and grads[w].numpy().tolist() == [0.0, 0.0]


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(0,), (0, 3, 2)])
def test_batch_norm_empty_input(device, dtype, nnt, training, shape):
    c = shape[1] if len(shape) > 1 else 0
    rm, rv = np.full(c, 0.5), np.full(c, 2.0)
    x = np.zeros(shape)
    want = TF.batch_norm(
        torch.tensor(x), torch.tensor(rm), torch.tensor(rv), training=training
    )
    srm, srv = sc.tensor(rm, dtype=dtype, device=device), sc.tensor(rv, dtype=dtype, device=device)
    out = F.batch_norm(sc.tensor(x, dtype=dtype, device=device), srm, srv, training=training)
    assert out.shape == tuple(want.shape) and out.dtype == sc.as_dtype(dtype)
    nnt.close(srm, torch.tensor(rm), dtype, "running_mean is left alone")
    nnt.close(srv, torch.tensor(rv), dtype, "running_var is left alone")
