"""Helpers for the shrew_nn suite: compare a shrew module with its PyTorch twin.

Tolerances are stated once, per dtype, in ``TOL``. ``check_module`` copies the torch
module's state dict into the shrew module, runs both on the same inputs and compares the
outputs, the gradients of every floating input and of every parameter (by name), and the
buffers after the forward pass.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose

import shrew_core as sc

TOL = {
    "float32": {"rtol": 2e-4, "atol": 2e-5},
    "float64": {"rtol": 1e-9, "atol": 1e-11},
}
TORCH_DTYPE = {"float32": torch.float32, "float64": torch.float64}
DTYPES = ["float32", "float64"]

torch.set_num_threads(1)


@pytest.fixture(params=DTYPES)
def dtype(request) -> str:
    return request.param


def close(actual, expected, dtype: str, what: str = "") -> None:
    """Shape, then dtype family, then values."""
    a = np.asarray(actual.numpy() if isinstance(actual, sc.Tensor) else actual)
    e = expected.detach().numpy() if isinstance(expected, torch.Tensor) else np.asarray(expected)
    assert a.shape == e.shape, f"{what}: shape {a.shape} != torch {e.shape}"
    assert_allclose(a, e, err_msg=what, **TOL[dtype])


def load_torch(module, torch_module, device) -> None:
    """torch -> shrew through a plain dict of shrew tensors."""
    sd = {k: sc.tensor(v.detach().numpy().copy(), device=device)
          for k, v in torch_module.state_dict().items()}  # fmt: skip
    module.load_state_dict(sd)


def _flat(out) -> list:
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _flat(o)]
    return [] if out is None else [out]


def check_module(module, torch_module, inputs: list, dtype: str, device: str,
                 train: bool = True, grads: bool = True, call=None) -> None:  # fmt: skip
    """Compare ``module(*inputs)`` with ``torch_module(*inputs)``: outputs, input and
    parameter gradients, buffers. ``inputs`` are NumPy arrays (floats get gradients) or
    ``None``; ``call(m, *args)`` overrides how the module is called."""
    torch_module.to(TORCH_DTYPE[dtype])
    load_torch(module, torch_module, device)
    module.train(train)
    torch_module.train(train)
    s_in, t_in = [], []
    for x in inputs:
        if x is None:
            s_in.append(None)
            t_in.append(None)
            continue
        x = np.asarray(x)
        if x.dtype.kind == "f":
            x = x.astype(dtype)
            s_in.append(sc.tensor(x, device=device).requires_grad_(grads))
            t_in.append(torch.tensor(x, requires_grad=grads))
        else:
            s_in.append(sc.tensor(x, device=device))
            t_in.append(torch.tensor(x))
    call = call or (lambda m, *a: m(*a))
    s_out, t_out = _flat(call(module, *s_in)), _flat(call(torch_module, *t_in))
    assert len(s_out) == len(t_out), f"{len(s_out)} outputs vs torch {len(t_out)}"
    for i, (s, t) in enumerate(zip(s_out, t_out)):
        close(s, t, dtype, f"output {i}")
    for name, buf in torch_module.named_buffers():
        close(dict(module.named_buffers())[name], buf, dtype, f"buffer {name}")
    if not grads:
        return
    rng = np.random.default_rng(0)
    weights = [rng.standard_normal(t.shape).astype(dtype) for t in t_out]
    s_loss = sum((s * sc.tensor(w, device=device)).sum() for s, w in zip(s_out, weights))
    t_loss = sum((t * torch.tensor(w)).sum() for t, w in zip(t_out, weights))
    gs = s_loss.backward()
    t_loss.backward()
    for i, (s, t) in enumerate(zip(s_in, t_in)):
        if s is not None and s.requires_grad:
            close(gs[s], t.grad, dtype, f"grad of input {i}")
    s_params = dict(module.named_parameters())
    t_params = dict(torch_module.named_parameters())
    assert sorted(s_params) == sorted(t_params), "parameter names differ from torch's"
    for name, tp in t_params.items():
        if tp.grad is None:
            assert s_params[name] not in gs or not np.any(gs[s_params[name]].numpy())
            continue
        close(gs[s_params[name]], tp.grad, dtype, f"grad of {name}")


def randn(*shape, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


@pytest.fixture
def nnt():
    """This module's helpers (``nnt.check_module``, ``nnt.close``, ``nnt.randn``, ``nnt.TOL``):
    with ``--import-mode=importlib`` test files cannot import conftest directly."""
    return sys.modules[__name__]


class Adam:
    """A minimal Adam for the end-to-end tests (shrew_nn does not depend on shrew_optim)."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8):
        self.params, self.lr, self.betas, self.eps = list(params), lr, betas, eps
        self.m = [p.zeros_like() for p in self.params]
        self.v = [p.zeros_like() for p in self.params]
        self.t = 0

    def step(self, grads) -> None:
        self.t += 1
        b1, b2 = self.betas
        c1, c2 = 1 - b1**self.t, 1 - b2**self.t
        with sc.no_grad():
            for i, p in enumerate(self.params):
                g = grads.get(p)
                if g is None:
                    continue
                self.m[i] = self.m[i] * b1 + g * (1 - b1)
                self.v[i] = self.v[i] * b2 + g * g * (1 - b2)
                upd = (self.m[i] / c1) / ((self.v[i] / c2).sqrt() + self.eps)
                p.detach().sub_(upd * self.lr)
