"""Real-device checks (``-m gpu``; skipped without an NVIDIA GPU): the cuBLAS path over
layouts and dtypes, the CuPy pool behind numba, DLPack with torch.cuda and CuPy, the RNG
against cpu, and the full op-spec / nn / optim suites on cuda (a subprocess with
``SHREW_TEST_BACKENDS=cuda``)."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import shrew_core as sc
import shrew_cuda

pytestmark = pytest.mark.gpu
ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
@pytest.mark.parametrize("case", ["plain", "a_t", "b_t", "both_t", "batched_bcast", "narrow"])
def test_cublas_matmul_layouts(gpu, ct, dtype, case):
    from shrew_cuda import gemm

    assert gemm.use_cublas(sc.as_dtype(dtype))
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 33, 17))
    b = rng.standard_normal((3, 17, 29))
    views = {
        "plain": (lambda t: t, lambda t: t),
        "a_t": (lambda t: t.transpose(-1, -2).contiguous().transpose(-1, -2), lambda t: t),
        "b_t": (lambda t: t, lambda t: t.transpose(-1, -2).contiguous().transpose(-1, -2)),
        "both_t": (lambda t: t.transpose(-1, -2).contiguous().transpose(-1, -2),
                   lambda t: t.transpose(-1, -2).contiguous().transpose(-1, -2)),
        "batched_bcast": (lambda t: t, lambda t: t[:1].expand(3, 17, 29)),
        "narrow": (lambda t: t.narrow(2, 1, 16), lambda t: t.narrow(1, 1, 16)),
    }[case]
    got, want = ct.on_both(lambda x, y: views[0](x) @ views[1](y), a, b, dtype=dtype)
    ct.close(got.to("f64"), want.to("f64"), "float32" if dtype == "float64" else dtype)


def test_pool_is_cupy_and_serves_numba(gpu):
    import cupy

    stats = shrew_cuda.memory_stats()
    assert stats["pool"] == "cupy"
    x = sc.zeros(1 << 20, device="cuda")
    used = cupy.get_default_memory_pool().used_bytes()
    assert used >= 4 << 20
    del x
    hits = shrew_cuda.memory_stats()["cache_hits"]
    y = sc.zeros(1 << 20, device="cuda")
    assert shrew_cuda.memory_stats()["cache_hits"] == hits + 1
    del y


def test_dlpack_round_trips_zero_copy_with_torch_and_cupy(gpu):
    import cupy
    import torch

    t = torch.arange(12, dtype=torch.float32, device="cuda").reshape(3, 4)
    s = sc.from_dlpack(t)
    assert s.device == sc.Device("cuda") and s.shape == (3, 4)
    t[0, 0] = 42.0
    torch.cuda.synchronize()
    assert s.numpy()[0, 0] == 42.0  # shares memory
    back = torch.from_dlpack(s.t())
    assert back.data_ptr() == t.data_ptr() and back.shape == (4, 3)
    c = cupy.from_dlpack(s)
    assert c.data.ptr == t.data_ptr()
    s2 = sc.from_dlpack(cupy.arange(5, dtype=cupy.float64))
    np.testing.assert_array_equal(s2.numpy(), np.arange(5.0))


def test_rng_matches_cpu_on_gpu(gpu):
    for dtype in ("float32", "float64", "float16"):
        sc.manual_seed(3)
        a = sc.uniform((1000,), -1.0, 3.0, dtype=dtype).numpy()
        sc.manual_seed(3)
        b = sc.uniform((1000,), -1.0, 3.0, dtype=dtype, device="cuda").numpy()
        np.testing.assert_array_equal(a, b)


def test_full_suites_on_the_gpu(gpu):
    """The op-spec, nn and optim suites with device=cuda on the real GPU."""
    env = dict(os.environ, SHREW_TEST_BACKENDS="cuda")
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "shrew_core/tests/test_ops.py",
           "shrew_nn/tests", "shrew_optim/tests", "-p", "no:cacheprovider"]
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=3000)
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-3000:]
