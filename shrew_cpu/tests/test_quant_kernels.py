"""The low-bit linear kernel (``CpuBackend.quantized_linear``) against a float64 NumPy
reference built from the integer codes, and against shrew_core's composed default: int8
and packed int4, with and without zero points, 1..G groups, batch 1-4 (GEMV) and above
(dequantise-block + BLAS, also with many small blocks), rows not a multiple of 4, odd K
(int4), empty dims, non-contiguous x, and half / f64 inputs."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from shrew_core import dtypes as D
from shrew_core import fused_defaults as FD
from shrew_core.layout import Layout
from shrew_cpu import quant as Q

# f32 sums of up to K products, reassociated: errors relative to the size of the terms
TERM_TOL = 1e-5


def _check(out, x, w_ref):
    """``out`` ≈ x @ w_refᵀ, the error measured against Σ|x|·|w| (sums that cancel are
    only as exact as their terms)."""
    x = x.astype(np.float64)
    assert out.shape == (x.shape[0], w_ref.shape[0])
    size = np.abs(x) @ np.abs(w_ref).T + 1e-30
    assert_allclose((out.astype(np.float64) - x @ w_ref.T) / size, 0.0, atol=TERM_TOL)


def _pack4(codes: np.ndarray) -> np.ndarray:
    u = (codes.reshape(-1).astype(np.int16) + 8).astype(np.uint8)
    u = np.append(u, np.uint8(0)) if u.size % 2 else u
    return (u[0::2] | (u[1::2] << 4)).astype(np.uint8)


def _case(rng, bits, n, k, groups, asym):
    lo, hi = (-128, 127) if bits == 8 else (-8, 7)
    codes = rng.integers(lo, hi + 1, (n, k)).astype(np.int8)
    scales = (rng.random((n, groups)) + 0.05).astype(np.float32)
    zps = rng.integers(lo // 4, hi // 4, (n, groups)).astype(np.float32) if asym else None
    weight = codes.view(np.uint8).reshape(-1) if bits == 8 else _pack4(codes)
    w = codes.reshape(n, groups, -1).astype(np.float64)
    if asym:
        w = w - zps[:, :, None]
    w_ref = (w * scales[:, :, None]).reshape(n, k)
    return weight, scales.reshape(-1), None if zps is None else zps.reshape(-1), w_ref


def _run(cpu, x, layout, dtype, case, bits, n, k, groups):
    weight, scales, zps, _ = case
    out = cpu.quantized_linear(x, layout, dtype, weight, scales, zps, bits=bits,
                               out_features=n, in_features=k, groups=groups)  # fmt: skip
    return out.reshape(layout.shape[0], n)


SHAPES = [  # (M, N, K, groups): GEMV sizes, the block path, N % 4 != 0, one row, many groups
    (1, 5, 64, 1), (2, 7, 64, 2), (4, 8, 128, 4), (3, 1, 32, 1),
    (5, 6, 64, 2), (17, 9, 96, 3), (64, 12, 128, 1),
    # GEMV groups whose length (int4: bytes, K / groups / 2) is not a multiple of the 16
    # accumulator lanes (the tail loop), shorter than one lane vector, and a long row
    (1, 6, 100, 2), (2, 5, 36, 1), (4, 3, 200, 4), (3, 4, 24, 2), (1, 9, 4096, 32),
]  # fmt: skip


@pytest.mark.parametrize("asym", [False, True], ids=["sym", "asym"])
@pytest.mark.parametrize("bits", [8, 4])
@pytest.mark.parametrize("M,N,K,G", SHAPES)
def test_matches_reference(cpu, bits, asym, M, N, K, G):
    rng = np.random.default_rng(M * 1000 + N * 10 + K + bits)
    case = _case(rng, bits, N, K, G, asym)
    x = rng.standard_normal((M, K)).astype(np.float32)
    out = _run(cpu, x.reshape(-1), Layout.contiguous((M, K)), D.f32, case, bits, N, K, G)
    assert out.dtype == np.float32
    _check(out, x, case[3])


@pytest.mark.parametrize("bits", [8, 4])
@pytest.mark.parametrize("M", [1, 3, 9])
def test_default_composition_agrees(cpu, bits, M):
    """The composed default (what a backend without the kernel runs) gives the same."""
    rng = np.random.default_rng(bits + M)
    n, k, g = 6, 64, 2
    case = _case(rng, bits, n, k, g, asym=True)
    x = rng.standard_normal((M, k)).astype(np.float32)
    layout = Layout.contiguous((M, k))
    fast = _run(cpu, x.reshape(-1), layout, D.f32, case, bits, n, k, g)
    weight, scales, zps, _ = case
    slow = FD.quantized_linear(cpu, x.reshape(-1), layout, D.f32, weight, scales, zps, bits,
                               n, k, g).reshape(M, n)  # fmt: skip
    _check(fast, x, case[3])
    _check(slow, x, case[3])


@pytest.mark.parametrize("M", [1, 6])
@pytest.mark.parametrize("K", [1, 7, 33])
def test_int4_odd_k(cpu, M, K):
    """Rows of an odd K are not byte-aligned (row n starts at nibble n*K)."""
    rng = np.random.default_rng(K)
    case = _case(rng, 4, 5, K, 1, asym=True)
    x = rng.standard_normal((M, K)).astype(np.float32)
    out = _run(cpu, x.reshape(-1), Layout.contiguous((M, K)), D.f32, case, 4, 5, K, 1)
    _check(out, x, case[3])


def test_many_blocks(cpu, monkeypatch):
    """The block path with blocks of 3 rows (the last one partial)."""
    monkeypatch.setattr(Q, "BLOCK_BYTES", 3 * 4 * 64)
    rng = np.random.default_rng(5)
    for bits in (8, 4):
        case = _case(rng, bits, 10, 64, 2, asym=True)
        x = rng.standard_normal((8, 64)).astype(np.float32)
        out = _run(cpu, x.reshape(-1), Layout.contiguous((8, 64)), D.f32, case, bits, 10, 64, 2)
        _check(out, x, case[3])


@pytest.mark.parametrize("M", [2, 7])
def test_non_contiguous_x(cpu, M):
    """x seen transposed with an offset (a view of a bigger storage)."""
    rng = np.random.default_rng(M)
    k, n = 64, 5
    case = _case(rng, 8, n, k, 1, asym=False)
    big = rng.standard_normal(3 + k * M).astype(np.float32)
    layout = Layout((M, k), (1, M), 3)  # element [m, j] at 3 + j*M + m
    x = big[3:].reshape(k, M).T
    out = _run(cpu, big, layout, D.f32, case, 8, n, k, 1)
    _check(out, x, case[3])


@pytest.mark.parametrize("dtype", [D.f16, D.bf16, D.f64])
def test_other_float_dtypes(cpu, dtype):
    rng = np.random.default_rng(1)
    case = _case(rng, 4, 6, 64, 2, asym=True)
    x = rng.standard_normal((2, 64)).astype(dtype.np_dtype)
    out = _run(cpu, x.reshape(-1), Layout.contiguous((2, 64)), dtype, case, 4, 6, 64, 2)
    assert out.dtype == dtype.np_dtype
    if dtype is D.f64:  # the composed default: exact dequantisation, f64 BLAS
        assert_allclose(out, x @ case[3].T, rtol=1e-12, atol=1e-10)
    else:  # computed in f32 from the half values, rounded to the half dtype once
        ref = x.astype(np.float64) @ case[3].T
        eps = 2.0 ** -8 if dtype is D.bf16 else 2.0 ** -11
        assert_allclose(out.astype(np.float64), ref, rtol=eps, atol=1e-3 * np.abs(ref).max())


@pytest.mark.parametrize("M,N,K", [(0, 4, 32), (3, 0, 32), (2, 3, 0)])
def test_empty(cpu, M, N, K):
    weight = np.zeros(N * K, np.uint8)
    out = cpu.quantized_linear(np.zeros(M * K, np.float32), Layout.contiguous((M, K)), D.f32,
                               weight, np.ones(N, np.float32), None, bits=8, out_features=N,
                               in_features=K, groups=1)  # fmt: skip
    assert out.shape == (M * N,)
    assert_allclose(out, np.zeros(M * N))
