"""Cold vs warm first-call times of the cpu backend's Numba kernels.

Run: ``python benchmarks/bench_cpu_compile.py``. Starts two fresh interpreters with the
same empty ``NUMBA_CACHE_DIR``: the first compiles every kernel family (cold), the second
loads them from the on-disk cache (warm). Prints seconds per first call. Under
pytest-benchmark (``pytest benchmarks/bench_cpu_compile.py --benchmark-only``) one round
each of the cold and the warm process, with the per-call seconds in ``extra_info``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

PROBE = r"""
import json, time
import numpy as np
t0 = time.perf_counter()
import shrew_core as sc
import shrew_cpu
t_import = time.perf_counter() - t0
from shrew_cpu import _config
_config.PARALLEL_THRESHOLD = _config.REDUCE_THRESHOLD = 1  # reach the parallel kernels too
res = {"import shrew_core+shrew_cpu": t_import}
def first(name, fn):
    t = time.perf_counter(); fn(); res[name] = time.perf_counter() - t
x = sc.tensor(np.random.rand(64, 64).astype(np.float32))
first("binary f32 (serial+parallel)", lambda: x + x)
first("unary f32 gelu", lambda: sc.gelu(x))
first("sum f32", lambda: x.sum(1))
first("softmax f32", lambda: sc.softmax(x, -1))
first("layer_norm f32", lambda: sc.layer_norm(x, (64,)))
xc = sc.tensor(np.random.rand(2, 3, 8, 8).astype(np.float32))
wc = sc.tensor(np.random.rand(4, 3, 3, 3).astype(np.float32))
first("conv2d f32 (im2col)", lambda: sc.conv2d(xc, wc, padding=1))
first("max_pool2d f32", lambda: sc.max_pool2d(xc, 2))
print(json.dumps(res))
"""


def run(cache: str) -> dict:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache)
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                         check=True)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_first_calls(benchmark, tmp_path, state):
    """One fresh process: cold (empty cache) or warm (the cache a first process filled)."""
    cache = str(tmp_path)
    if state == "warm":
        run(cache)
    benchmark.group = "cpu backend first calls (fresh process)"
    result = benchmark.pedantic(run, args=(cache,), rounds=1, iterations=1)
    benchmark.extra_info.update(result)


def pytest_generate_tests(metafunc):
    if "state" in metafunc.fixturenames:
        metafunc.parametrize("state", ["cold", "warm"])


def main() -> None:
    with tempfile.TemporaryDirectory() as cache:
        cold = run(cache)
        warm = run(cache)
    print(f"{'first call':36} {'cold s':>8} {'warm s':>8}")
    for k in cold:
        print(f"{k:36} {cold[k]:8.3f} {warm[k]:8.3f}")
    print(f"{'total':36} {sum(cold.values()):8.3f} {sum(warm.values()):8.3f}")


if __name__ == "__main__":
    main()
