"""The vectorisable f32 math of ``kernels.vmath`` (exp, tanh, erf, NaN-propagating max/min) against
NumPy in f64: accuracy in ulps over the whole f32 range, subnormal results, overflow,
underflow, infinities and NaN, and the row kernels that use it on special rows."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numba import njit

from shrew_cpu.kernels.vmath import exp32, ferf, fexp, fmaximum, fminimum, ftanh


@njit(cache=True)
def _exp_all(x, out):
    for i in range(x.size):
        out[i] = fexp(x[i])


@njit(cache=True)
def _tanh_all(x, out):
    for i in range(x.size):
        out[i] = ftanh(x[i])


@njit(cache=True)
def _erf_all(x, out):
    for i in range(x.size):
        out[i] = ferf(x[i])


@njit(cache=True, fastmath={"nsz"})
def _maxmin(a):
    mx = a[0]
    mn = a[0]
    for i in range(1, a.size):
        mx = fmaximum(mx, a[i])
        mn = fminimum(mn, a[i])
    return mx, mn


def _ulps(got, x):
    ref = np.exp(x.astype(np.float64))
    with np.errstate(over="ignore"):
        ulp = np.spacing(ref.astype(np.float32)).astype(np.float64)
    return np.abs(got.astype(np.float64) - ref) / ulp


def test_exp32_accuracy_whole_range():
    rng = np.random.default_rng(0)
    x = np.concatenate([
        rng.uniform(-104.0, 88.72, 1 << 20),
        rng.uniform(-1.0, 1.0, 1 << 16),
        rng.uniform(-1e-6, 1e-6, 1 << 12),
    ]).astype(np.float32)  # fmt: skip
    out = np.empty_like(x)
    _exp_all(x, out)
    normal = np.exp(x.astype(np.float64)) >= np.finfo(np.float32).tiny
    u = _ulps(out, x)
    assert u[normal].max() <= 1.5
    # subnormal results: gradual underflow with one rounding (<= 1 ulp of the subnormal grid)
    assert u[~normal].max() <= 1.0


def test_exp32_special_values():
    f32 = np.float32
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 88.72283, 88.7229, 88.8, 89.0, 1e4,
                  -87.33, -103.27, -103.9, -104.0, -150.0, -1e4, 1e-30, -1e-30,
                  np.finfo(f32).max, -np.finfo(f32).max], f32)  # fmt: skip
    out = np.empty_like(x)
    _exp_all(x, out)
    with np.errstate(over="ignore"):
        ref = np.exp(x)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(ref))
    np.testing.assert_array_equal(np.isinf(out), np.isinf(ref))
    fin = np.isfinite(ref)
    assert _ulps(out[fin], x[fin]).max() <= 1.0
    assert out[3] == 1.0 and out[4] == 1.0
    assert out[x < -104].max() == 0.0
    assert np.all(out[x <= -103.3] >= 0)


def test_fexp_f64_is_libm():
    x = np.linspace(-700, 700, 1001)
    out = np.empty_like(x)
    _exp_all(x, out)
    np.testing.assert_array_equal(out, [math.exp(v) for v in x])


def test_exp32_scalar_typing():
    # inline helper used from jitted code only; f32 in -> f32 out
    @njit
    def one(v):
        return exp32(v)

    assert isinstance(one(np.float32(1.0)), (float, np.floating))
    assert abs(one(np.float32(1.0)) - math.e) < 3e-7


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_fmaximum_reduction_nan_and_zero(dt):
    a = np.array([1.0, -3.0, 7.5, 2.0] * 40, dt)
    assert _maxmin(a) == (7.5, -3.0)
    b = a.copy()
    b[77] = np.nan
    mx, mn = _maxmin(b)
    assert math.isnan(mx) and math.isnan(mn)
    c = np.array([-np.inf] * 33, dt)
    assert _maxmin(c) == (-np.inf, -np.inf)


@pytest.mark.parametrize("log", [False, True])
def test_softmax_special_rows(cpu, log):
    from shrew_core import dtypes as D
    from shrew_core.layout import Layout

    f = np.float32
    rows = np.array([
        [0.0, 1.0, 2.0, 3.0],
        [np.nan, 1.0, 2.0, 3.0],
        [-np.inf, -np.inf, -np.inf, -np.inf],
        [-np.inf, 0.0, 1.0, -np.inf],
        [np.inf, 0.0, 1.0, 2.0],
        [-200.0, 0.0, 80.0, 88.0],
    ], f)  # fmt: skip
    import torch

    fn = cpu.log_softmax if log else cpu.softmax
    got = fn(rows.reshape(-1), Layout.contiguous(rows.shape), D.f32, 1).reshape(rows.shape)
    t = torch.from_numpy(rows.astype(np.float64))
    ref = (torch.log_softmax if log else torch.softmax)(t, 1).numpy()
    np.testing.assert_allclose(got, ref, rtol=2e-5, atol=2e-6, equal_nan=True)


def test_tanh32_accuracy_and_specials():
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.uniform(-12, 12, 1 << 18), rng.uniform(-0.7, 0.7, 1 << 16),
                        rng.uniform(-1e-5, 1e-5, 1 << 10)]).astype(np.float32)  # fmt: skip
    out = np.empty_like(x)
    _tanh_all(x, out)
    ref = np.tanh(x.astype(np.float64))
    ulp = np.spacing(np.abs(ref).astype(np.float32)).astype(np.float64)
    assert (np.abs(out - ref) / ulp).max() <= 3.0
    sp = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 44.0, 90.0, -90.0, 0.625, -0.625,
                   1e-30, np.finfo(np.float32).max], np.float32)  # fmt: skip
    so = np.empty_like(sp)
    _tanh_all(sp, so)
    np.testing.assert_allclose(so, np.tanh(sp), rtol=2e-7, atol=0)
    assert np.isnan(so[0]) and np.signbit(so[4]) and not np.signbit(so[3])
    x64 = np.linspace(-5, 5, 101)
    o64 = np.empty_like(x64)
    _tanh_all(x64, o64)
    np.testing.assert_array_equal(o64, [math.tanh(v) for v in x64])


def test_erf32_accuracy_and_specials():
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.uniform(-6, 6, 1 << 18), rng.uniform(-1.2, 1.2, 1 << 16),
                        rng.uniform(-1e-4, 1e-4, 1 << 10)]).astype(np.float32)  # fmt: skip
    out = np.empty_like(x)
    _erf_all(x, out)
    ref = np.array([math.erf(v) for v in x.astype(np.float64)])
    assert np.abs(out - ref).max() <= 2.5e-7
    small = np.abs(x) < 1
    assert (np.abs(out - ref)[small] / np.abs(ref[small]).clip(1e-30)).max() <= 5e-7
    sp = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 10.0, -10.0, 1.0, -1.0,
                   np.finfo(np.float32).max], np.float32)  # fmt: skip
    so = np.empty_like(sp)
    _erf_all(sp, so)
    ref = np.array([math.erf(v) if not math.isnan(v) else math.nan for v in sp.astype(float)])
    np.testing.assert_allclose(so, ref, rtol=0, atol=2.5e-7)
    assert np.signbit(so[4]) and not np.signbit(so[3])
    x64 = np.linspace(-5, 5, 101)
    o64 = np.empty_like(x64)
    _erf_all(x64, o64)
    np.testing.assert_array_equal(o64, [math.erf(v) for v in x64])


def test_malloc_tuning_is_opt_in(monkeypatch):
    from shrew_cpu import _config

    monkeypatch.setattr(_config, "MALLOC_TUNE", False)
    assert _config.apply_malloc_tuning() is False
    monkeypatch.setattr(_config, "MALLOC_TUNE", True)
    import platform

    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert _config.apply_malloc_tuning() is True
