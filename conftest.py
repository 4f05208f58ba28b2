"""Workspace-wide pytest configuration: which backends the suites run on.

``SHREW_TEST_BACKENDS=reference,cpu`` picks backends explicitly; by default every
installed backend, with ``cuda`` only where a real GPU is present (its cases are then
marked ``gpu``). Test modules get a ``device`` fixture parametrized over them.

CUDA without a GPU: before anything imports numba, this file sets
``NUMBA_ENABLE_CUDASIM=1`` when no NVIDIA GPU is found (and the variable is unset), so
the ``cuda``-marked CI subset in ``shrew_cuda/tests`` runs the numba.cuda kernels on the
simulator in the same ``python -m pytest``. Only numba.cuda reads the variable: CPU
kernels and the other suites are unaffected.
"""

from __future__ import annotations

import importlib
import os

import pytest


def _gpu_present() -> bool:
    try:
        from shrew_cuda._runtime import gpu_present  # ctypes probe, imports no numba
    except ImportError:
        return False
    return gpu_present()


_GPU = _gpu_present()
if not _GPU:
    os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

# pytest's importlib mode names test modules after their path ("shrew_ir.tests.test_x") and
# would register empty namespace modules for missing parents such as "shrew_ir". Importing
# every installed Shrew package first makes those parents the real packages.
for _name in ("shrew_core", "shrew_cpu", "shrew_cuda", "shrew_ir", "shrew_nn", "shrew_optim",
              "shrew_data", "shrew", "shrew_cli"):  # fmt: skip
    try:
        importlib.import_module(_name)
    except ImportError:  # a package that is not installed has no tests to run either
        pass


def test_backends() -> list[str]:
    import shrew_core

    wanted = os.environ.get("SHREW_TEST_BACKENDS")
    if wanted:
        names = wanted.split(",")
    else:
        names = [b for b in shrew_core.available_backends() if b != "cuda" or _GPU]
    return [n.strip() for n in names if n.strip()]


test_backends.__test__ = False  # not a test


def _device_params():
    return [pytest.param(n, marks=pytest.mark.gpu) if n == "cuda" and _GPU else n
            for n in test_backends()]  # fmt: skip


@pytest.fixture(params=_device_params())
def device(request) -> str:
    """A device string for each backend under test, e.g. "reference", "cpu"."""
    return request.param
