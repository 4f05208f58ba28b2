"""Shared helpers for the shrew_optim suite: tolerances, problems, and a torch oracle.

Helpers are handed to tests through fixtures (the workspace runs pytest with
``--import-mode=importlib``, so test modules cannot import this file).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import shrew_core as sc

# Per-dtype tolerances for comparisons with torch, stated once.
TOL = {
    "f32": dict(rtol=2e-5, atol=2e-6),
    "f64": dict(rtol=1e-10, atol=1e-12),
}
NP = {"f32": np.float32, "f64": np.float64}
SHAPES = [(4, 3), (5,), (2, 3, 2)]
STEPS = 50


class Oracle:
    """Runs a shrew optimizer and a torch optimizer on the same parameters and gradients."""

    tol = TOL

    @staticmethod
    def problem(dtype: str, steps: int = STEPS, shapes=SHAPES, seed: int = 0):
        rng = np.random.default_rng(seed)
        init = [rng.standard_normal(s).astype(NP[dtype]) for s in shapes]
        grads = [[rng.standard_normal(s).astype(NP[dtype]) for s in shapes] for _ in range(steps)]
        return init, grads

    @staticmethod
    def params(init, device):
        return [sc.tensor(a, device=device).requires_grad_() for a in init]

    @staticmethod
    def store(params, grads, device) -> sc.GradStore:
        """A GradStore with ``grads[i]`` for ``params[i]`` (None entries are left out)."""
        s = sc.GradStore()
        for p, g in zip(params, grads):
            if g is not None:
                s[p] = sc.tensor(g, device=device)
        return s

    @staticmethod
    def torch_step(topt, tparams, grads) -> None:
        for p, g in zip(tparams, grads):
            p.grad = None if g is None else torch.from_numpy(np.array(g))
        topt.step()

    def run(self, make_shrew, make_torch, device, dtype, steps=STEPS, seed=0, drop=None):
        """Step both for ``steps`` steps; ``drop(step, i)`` True leaves param i without a
        gradient at that step. Returns (shrew params as arrays, torch params as arrays)."""
        init, grads = self.problem(dtype, steps, seed=seed)
        sp = self.params(init, device)
        tp = [torch.tensor(a, requires_grad=True) for a in init]
        sopt, topt = make_shrew(sp), make_torch(tp)
        for k, gs in enumerate(grads):
            gs = [None if drop and drop(k, i) else g for i, g in enumerate(gs)]
            sopt.step(self.store(sp, gs, device))
            self.torch_step(topt, tp, gs)
        return [p.numpy() for p in sp], [p.detach().numpy() for p in tp]

    def assert_close(self, got, want, dtype) -> None:
        for i, (a, b) in enumerate(zip(got, want)):
            np.testing.assert_allclose(a, b, err_msg=f"parameter {i}", **TOL[dtype])


@pytest.fixture
def oracle() -> Oracle:
    return Oracle()


@pytest.fixture(params=["f32", "f64"])
def dtype(request) -> str:
    return request.param
