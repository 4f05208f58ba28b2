"""Fixtures for the shrew_cpu kernel tests (helpers live in ``shrew_cpu.testing``)."""

from __future__ import annotations

import pytest

from shrew_core.device import CpuDevice
from shrew_cpu import CpuBackend, _config


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
