"""Fixtures for the shrew_cpu kernel tests (helpers live in ``shrew_cpu.testing``)."""

from __future__ import annotations

import sys

import pytest

# pytest's importlib mode names these modules ``shrew_cpu.tests.*`` and, when the real
# package is not imported yet, registers the *directory* shrew_cpu/ as a namespace-package
# parent. Swap the real package in (keeping the test modules' own entries) before use.
_mod = sys.modules.get("shrew_cpu")
if _mod is not None and getattr(_mod, "__file__", None) is None:
    for _name in [n for n in sys.modules if n == "shrew_cpu" or n.startswith("shrew_cpu.")]:
        if not _name.startswith("shrew_cpu.tests"):
            del sys.modules[_name]
from shrew_core.device import CpuDevice  # noqa: E402
from shrew_cpu import CpuBackend, _config  # noqa: E402


@pytest.fixture(scope="session")
def cpu():
    """The registry's ``cpu`` backend instance (the one tensors created by core use)."""
    from shrew_core.registry import get_backend

    backend = get_backend(CpuDevice())
    assert isinstance(backend, CpuBackend)
    return backend


@pytest.fixture(params=["serial", "parallel"])
def path(request, monkeypatch):
    """Run a test with the default thresholds and with every size forced parallel."""
    if request.param == "parallel":
        monkeypatch.setattr(_config, "PARALLEL_THRESHOLD", 1)
        monkeypatch.setattr(_config, "REDUCE_THRESHOLD", 1)
    return request.param
