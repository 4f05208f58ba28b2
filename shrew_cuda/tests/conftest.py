"""Helpers for shrew_cuda's tests, handed out as fixtures (``--import-mode=importlib``).

The root conftest turns on the CUDA simulator when no GPU is present, so the ``cuda``
marked tests run everywhere; ``gpu`` tests need a real device and are skipped without one.
"""

from __future__ import annotations

import os
import pathlib
import sys

import numpy as np
import pytest

import shrew_core as sc
import shrew_cuda

_HERE = pathlib.Path(__file__).parent


def pytest_collection_modifyitems(items):
    """The simulator computes on NumPy scalars, which warn where a GPU silently follows IEEE
    (log(0) = -inf, inf - inf = nan): expected in the edge-case tests, noise here."""
    for item in items:
        if _HERE in pathlib.Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.filterwarnings("ignore::RuntimeWarning"))


# Tolerances per dtype, stated once: (rtol, atol).
TOL = {
    "float64": (1e-10, 1e-12),
    "float32": (2e-5, 2e-6),
    "float16": (2e-3, 2e-3),
    "bfloat16": (1.6e-2, 1.6e-2),
}


def close(actual, expected, dtype: str = "float32", what: str = "") -> None:
    """Shape, then dtype, then values."""
    a = np.asarray(actual.numpy() if isinstance(actual, sc.Tensor) else actual)
    e = np.asarray(expected.numpy() if isinstance(expected, sc.Tensor) else expected)
    assert a.shape == e.shape, f"{what}: shape {a.shape} != {e.shape}"
    if isinstance(actual, sc.Tensor) and isinstance(expected, sc.Tensor):
        assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    if a.dtype.kind in "biu":
        np.testing.assert_array_equal(a, e, err_msg=what)
        return
    rtol, atol = TOL[dtype]
    np.testing.assert_allclose(a.astype(np.float64), e.astype(np.float64), rtol=rtol, atol=atol,
                               equal_nan=True, err_msg=what)  # fmt: skip


def on_both(fn, *arrays, dtype=None):
    """``fn`` applied to the arrays as cpu tensors and as cuda tensors."""
    outs = []
    for dev in ("cpu", "cuda"):
        outs.append(fn(*[sc.tensor(a, dtype=dtype, device=dev) for a in arrays]))
    return outs


@pytest.fixture
def ct():
    """This module's helpers: ``ct.close``, ``ct.on_both``, ``ct.TOL``."""
    return sys.modules[__name__]


@pytest.fixture
def gpu():
    if not shrew_cuda.is_available() or shrew_cuda.is_simulated():
        pytest.skip("needs an NVIDIA GPU (run on a GPU machine: python -m pytest -m gpu)")


@pytest.fixture(autouse=True)
def _seed():
    sc.manual_seed(0)
    yield


if os.environ.get("SHREW_CUDA_PTX_RECORD"):  # python -m shrew_cuda.ptxcheck
    from shrew_cuda.ptxcheck import install_recorder

    install_recorder(os.environ["SHREW_CUDA_PTX_RECORD"])
