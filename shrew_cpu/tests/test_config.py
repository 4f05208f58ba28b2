"""``_config.apply_wide_vectors``: when it hands Numba the host's features without LLVM's
256-bit preference, and when it leaves Numba's configuration alone."""

from __future__ import annotations

import pytest
from numba.core import codegen, config

from shrew_cpu import _config


@pytest.fixture
def host(monkeypatch):
    """Numba's CPU settings as on a fresh process without user overrides; returns a
    function that sets the host's feature string."""
    monkeypatch.setattr(config, "CPU_NAME", None)
    monkeypatch.setattr(config, "CPU_FEATURES", None)
    monkeypatch.setattr(_config, "WIDE_VECTORS", True)

    def set_features(features: str) -> None:
        monkeypatch.setattr(codegen, "get_host_cpu_features", lambda: features)

    return set_features


def test_avx512_host_drops_the_256_bit_preference(host):
    host("+64bit,+avx2,+avx512f,+fma")
    assert _config.apply_wide_vectors() is True
    assert config.CPU_FEATURES == "+64bit,+avx2,+avx512f,+fma,-prefer-256-bit"


@pytest.mark.parametrize("features", ["+64bit,+avx2,+fma", "+64bit,-avx512f,+avx2", ""])
def test_hosts_without_avx512_are_left_alone(host, features):
    host(features)
    assert _config.apply_wide_vectors() is False
    assert config.CPU_FEATURES is None


@pytest.mark.parametrize("override", ["CPU_NAME", "CPU_FEATURES", "off"])
def test_user_settings_win(host, monkeypatch, override):
    host("+64bit,+avx512f")
    if override == "off":
        monkeypatch.setattr(_config, "WIDE_VECTORS", False)
    else:
        monkeypatch.setattr(config, override, "haswell" if override == "CPU_NAME" else "+avx2")
    before = config.CPU_FEATURES
    assert _config.apply_wide_vectors() is False
    assert config.CPU_FEATURES == before
