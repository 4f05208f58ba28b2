"""The cpu backend through the public tensor API: default device, views, autograd."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

import shrew_core as sc
from shrew_core import dtypes as D
from shrew_cpu import CpuBackend
from shrew_cpu.testing import check


def test_default_device_is_cpu_backend():
    assert isinstance(sc.tensor([1.0, 2.0])._backend, CpuBackend)


def test_views_matmul_softmax_backward():
    rng = np.random.default_rng(60)
    a = rng.standard_normal((8, 6))
    b = rng.standard_normal((8, 5))
    sa = sc.tensor(a, device="cpu").requires_grad_()
    sb = sc.tensor(b, device="cpu").requires_grad_()
    y = sc.softmax(sa.t() @ sb, -1).sum(0)  # transposed operand, reduction
    grads = (y * sc.tensor(np.arange(5.0))).sum().backward()
    ta = torch.from_numpy(a).requires_grad_()
    tb = torch.from_numpy(b).requires_grad_()
    ty = F.softmax(ta.t() @ tb, -1).sum(0)
    (ty * torch.arange(5.0, dtype=torch.float64)).sum().backward()
    check(np.ascontiguousarray(y.numpy()).reshape(-1), ty.detach().numpy(), D.f64)
    check(np.ascontiguousarray(grads[sa].numpy()).reshape(-1), ta.grad.numpy(), D.f64)
    check(np.ascontiguousarray(grads[sb].numpy()).reshape(-1), tb.grad.numpy(), D.f64)


def test_conv_pool_through_api():
    rng = np.random.default_rng(61)
    x = rng.standard_normal((2, 3, 9, 9)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    sx, sw = sc.tensor(x).requires_grad_(), sc.tensor(w).requires_grad_()
    out = sc.max_pool2d(sc.conv2d(sx, sw, padding=1, stride=2), 2)
    grads = out.sum().backward()
    tx, tw = torch.from_numpy(x).requires_grad_(), torch.from_numpy(w).requires_grad_()
    tout = F.max_pool2d(F.conv2d(tx, tw, padding=1, stride=2), 2)
    tout.sum().backward()
    check(np.ascontiguousarray(out.numpy()).reshape(-1), tout.detach().numpy(), D.f32,
          rtol=1e-4, atol=1e-5)  # fmt: skip
    check(np.ascontiguousarray(grads[sx].numpy()).reshape(-1), tx.grad.numpy(), D.f32,
          rtol=1e-4, atol=1e-5)  # fmt: skip
    check(np.ascontiguousarray(grads[sw].numpy()).reshape(-1), tw.grad.numpy(), D.f32,
          rtol=1e-4, atol=1e-4)  # fmt: skip
