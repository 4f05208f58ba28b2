"""Helpers for shrew_core's tests: tolerances per dtype, torch/shrew conversions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import shrew_core as sc

# Tolerances per dtype, stated once: (rtol, atol).
TOL = {
    "float64": (1e-9, 1e-10),
    "float32": (2e-5, 2e-5),
    "float16": (2e-2, 2e-2),
    "bfloat16": (5e-2, 5e-2),
}
GRAD_TOL = {"float64": (1e-8, 1e-9), "float32": (1e-4, 1e-4)}

TORCH_DTYPE = {
    "float64": torch.float64,
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "int64": torch.int64,
    "uint8": torch.uint8,
    "bool": torch.bool,
    "uint32": torch.uint32,
}


def to_numpy(t) -> np.ndarray:
    """A float64 (or integer/bool) NumPy copy of a shrew or torch tensor."""
    if isinstance(t, torch.Tensor):
        t = t.detach()
        if t.dtype in (torch.float16, torch.bfloat16):
            t = t.float()
        return t.numpy().copy()
    arr = np.asarray(t.numpy())
    return arr.astype(np.float32) if t.dtype.is_float and t.dtype.itemsize == 2 else arr.copy()


def assert_close(actual, expected, dtype: str, tol=TOL, what: str = "") -> None:
    """Shape, then dtype category, then values — saying which differed."""
    a, e = to_numpy(actual), to_numpy(expected)
    assert a.shape == e.shape, f"{what}: shape {a.shape} != expected {e.shape}"
    assert (a.dtype.kind == "b") == (e.dtype.kind == "b"), f"{what}: dtype {a.dtype} vs {e.dtype}"
    if a.dtype.kind in "biu" and e.dtype.kind in "biu":
        np.testing.assert_array_equal(a, e, err_msg=what)
        return
    rtol, atol = tol.get(dtype, TOL["float32"])
    np.testing.assert_allclose(a, e, rtol=rtol, atol=atol, equal_nan=True, err_msg=what)


@pytest.fixture(autouse=True)
def _seed():
    sc.manual_seed(0)
    yield


import os.path as _p  # noqa: E402
import sys as _sys  # noqa: E402

_sys.path.insert(0, _p.dirname(__file__))  # op_specs.py sits beside the tests
