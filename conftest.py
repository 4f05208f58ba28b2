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

import functools
import importlib
import os
import pathlib

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


_SIM_SAMPLE = pathlib.Path(__file__).parent / "shrew_cuda" / "tests" / "sim_sample.txt"


@functools.cache
def _sim_sample() -> frozenset[str]:
    """Node ids of nn/optim tests that also run on the simulated cuda backend."""
    if _GPU or os.environ.get("SHREW_TEST_BACKENDS") or not _SIM_SAMPLE.exists():
        return frozenset()
    lines = _SIM_SAMPLE.read_text().splitlines()
    return frozenset(ln.strip() for ln in lines if ln.strip() and not ln.startswith("#"))


def _prefix(item_or_def) -> str:
    path = pathlib.Path(str(item_or_def.fspath)).resolve().relative_to(_ROOT)
    return f"{path.as_posix()}::{item_or_def.name.partition('[')[0]}"


_ROOT = pathlib.Path(__file__).parent.resolve()


@pytest.hookimpl(tryfirst=True)  # device first in test ids, as with a parametrized fixture
def pytest_generate_tests(metafunc):
    """Parametrize ``device`` over the backends under test (cuda marked ``gpu`` on a GPU);
    without a GPU, the tests named in ``shrew_cuda/tests/sim_sample.txt`` also get a
    simulated ``cuda`` case marked ``cuda`` (other cuda cases are deselected below)."""
    if "device" not in metafunc.fixturenames:
        return
    params = [pytest.param(n, marks=pytest.mark.gpu) if n == "cuda" and _GPU else n
              for n in test_backends()]  # fmt: skip
    prefix = _prefix(metafunc.definition) + "["
    if any(s.startswith(prefix) for s in _sim_sample()):
        params.append(pytest.param("cuda", marks=pytest.mark.cuda))
    metafunc.parametrize("device", params, indirect=True)


def pytest_collection_modifyitems(config, items):
    sample = _sim_sample()
    if not sample:
        return
    drop = [it for it in items
            if _is_sampled_function(it, sample) and it.callspec.params.get("device") == "cuda"
            and f"{_prefix(it)}[{it.callspec.id}]" not in sample]  # fmt: skip
    if drop:
        config.hook.pytest_deselected(items=drop)
        dropped = set(map(id, drop))
        items[:] = [it for it in items if id(it) not in dropped]


def _is_sampled_function(item, sample) -> bool:
    return hasattr(item, "callspec") and any(s.startswith(_prefix(item) + "[") for s in sample)


@pytest.fixture
def device(request) -> str:
    """A device string for each backend under test, e.g. "reference", "cpu"."""
    return request.param
