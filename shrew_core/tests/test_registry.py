"""Backend discovery through entry points, runtime registration and clear errors."""

from __future__ import annotations

import pytest

import shrew_core as sc
from shrew_core import registry


def test_reference_backend_is_found_through_its_entry_point():
    assert "reference" in sc.available_backends()
    cls = sc.get_backend_class("reference")
    assert cls.__module__ == "shrew_reference_backend"
    # the reference backend overrides no optional kernel: it runs on the defaults
    for name in ("softmax", "layer_norm", "cross_entropy", "adam_update", "fused_elementwise"):
        assert getattr(cls, name) is getattr(sc.Backend, name)


def test_missing_backend_names_the_package_to_install():
    if "cuda" not in sc.available_backends():
        with pytest.raises(sc.BackendError, match="pip install shrew-cuda"):
            sc.zeros(2, device="cuda")
    else:  # installed: runs (a GPU, or the CUDA simulator) or names the missing GPU
        try:
            assert sc.zeros(2, device="cuda").device == sc.Device("cuda")
        except sc.DeviceError as exc:
            assert "no CUDA GPU is available" in str(exc)
    with pytest.raises(sc.BackendError, match="no backend named 'nope'"):
        sc.zeros(2, device="nope")


def test_register_backend_at_runtime():
    ref = sc.get_backend_class("reference")

    class Mine(ref):
        name = "mine"

    sc.register_backend("mine", Mine)
    try:
        t = sc.ones(3, device="mine") * 2
        assert t.device == sc.Device("mine") and t.tolist() == [2.0, 2.0, 2.0]
        assert isinstance(t.backend, Mine)
    finally:
        registry._classes.pop("mine", None)
        registry._instances.pop(sc.Device("mine"), None)


def test_register_backend_rejects_non_backends():
    with pytest.raises(sc.BackendError, match="not a Backend subclass"):
        sc.register_backend("bad", object)


def test_device_strings():
    assert sc.as_device("cuda:1") == sc.CudaDevice(1)
    assert sc.as_device("cpu") == sc.CpuDevice()
    with pytest.raises(sc.DeviceError, match="cannot parse device"):
        sc.as_device("cuda:x")
