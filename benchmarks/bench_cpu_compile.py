"""Cold start of the cpu backend: the first training step with an empty Numba cache (every
kernel it needs compiles), the same with the cache filled (kernels load from disk), and
the first call of each kernel family; PyTorch's first step in a fresh process beside it.

Run: ``python benchmarks/bench_cpu_compile.py [--repeat 3] [--python PATH]``. Every number
comes from a fresh interpreter: "cold" ones get a new empty ``NUMBA_CACHE_DIR``, "warm"
ones reuse the cache the cold run filled. Prints wall and CPU seconds (CPU time is what
the process itself spent: less sensitive to other load on a shared machine); best of
``--repeat`` runs. ``--python`` times another environment, e.g. a non-editable install.

Steps (forward, cross-entropy, backward, optimizer step, ``loss.item()``), batch 64:

* ``cnn``: the digits CNN, Conv2d(1, 16, 3, padding=1), ReLU, MaxPool2d(2), Flatten,
  Linear(256, 10) on [64, 1, 8, 8], AdamW;
* ``mlp``: Linear(784, 128), ReLU, Linear(128, 10) on [64, 784], SGD (as ``bench_nn``);
  ``mlp-adam`` the same with AdamW.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

STEP = r"""
import json, sys, time
t0, c0 = time.perf_counter(), time.process_time()
import numpy as np
LIB, KIND = sys.argv[1], sys.argv[2]
if LIB == "shrew":
    import shrew_core as sc, shrew_nn as nn, shrew_optim as optim
    F, tensor, Adam, SGD = nn.functional, sc.tensor, optim.AdamW, optim.SGD
else:
    import torch
    nn, F, tensor = torch.nn, torch.nn.functional, torch.tensor
    Adam, SGD = torch.optim.AdamW, torch.optim.SGD
t_import, c_import = time.perf_counter() - t0, time.process_time() - c0
rng = np.random.default_rng(0)
if KIND == "cnn":
    model = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(16 * 4 * 4, 10))
    x = tensor(rng.standard_normal((64, 1, 8, 8)).astype(np.float32))
else:
    model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    x = tensor(rng.standard_normal((64, 784)).astype(np.float32))
y = tensor(rng.integers(0, 10, 64))
opt = (SGD(model.parameters(), lr=0.01) if KIND == "mlp" else Adam(model.parameters(), lr=1e-3))

def step():
    loss = F.cross_entropy(model(x), y)
    if LIB == "shrew":
        opt.step(loss.backward())
    else:
        opt.zero_grad()
        loss.backward()
        opt.step()
    return loss.item()

res = {"import": (t_import, c_import)}
for name in ("first step", "second step"):
    t, c = time.perf_counter(), time.process_time()
    step()
    res[name] = (time.perf_counter() - t, time.process_time() - c)
print(json.dumps(res))
"""

FAMILIES = r"""
import json, time
import numpy as np
import shrew_core as sc
from shrew_cpu import _config
_config.PARALLEL_THRESHOLD = _config.REDUCE_THRESHOLD = 1  # reach the kernels, not NumPy
_config.CONV_FUSED_MACS = 0
res = {}
def first(name, fn):
    t, c = time.perf_counter(), time.process_time(); fn()
    res[name] = (time.perf_counter() - t, time.process_time() - c)
x = sc.tensor(np.random.rand(64, 64).astype(np.float32))
first("binary f32", lambda: x + x)
first("unary f32 gelu", lambda: sc.gelu(x))
first("sum f32", lambda: x.sum(1))
first("softmax f32", lambda: sc.softmax(x, -1))
first("layer_norm f32", lambda: sc.layer_norm(x, (64,)))
xc = sc.tensor(np.random.rand(2, 3, 8, 8).astype(np.float32))
wc = sc.tensor(np.random.rand(4, 3, 3, 3).astype(np.float32))
first("conv2d f32 (fused forward)", lambda: sc.conv2d(xc, wc, padding=1))
first("max_pool2d f32", lambda: sc.max_pool2d(xc, 2))
print(json.dumps(res))
"""


def run(code: str, args: list[str], cache: str, python: str) -> dict:
    """Run ``code`` in a fresh ``python`` with ``NUMBA_CACHE_DIR=cache``; its JSON result."""
    env = dict(os.environ, NUMBA_CACHE_DIR=cache)
    out = subprocess.run([python, "-c", code, *args], env=env, capture_output=True, text=True,
                         cwd=tempfile.gettempdir())  # fmt: skip
    if out.returncode:
        raise RuntimeError(f"probe failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def cold_and_warm(code: str, args: list[str], python: str, repeat: int) -> tuple[dict, dict]:
    """Best-of-``repeat`` cold (empty cache) and warm (cache filled by that cold run) runs."""
    colds, warms = [], []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as cache:
            colds.append(run(code, args, cache, python))
            warms.append(run(code, args, cache, python))
    best = lambda rs: {k: min((r[k] for r in rs), key=lambda wc: wc[0]) for k in rs[0]}  # noqa: E731
    return best(colds), best(warms)


def _has_torch(python: str) -> bool:
    return subprocess.run([python, "-c", "import torch"], capture_output=True).returncode == 0


def test_first_training_step(benchmark, tmp_path, kind, state):
    """pytest-benchmark: one fresh process per round, cold (empty cache) or warm (the cache a
    first process filled); the per-phase (wall, CPU) seconds go to ``extra_info``."""
    cache = str(tmp_path)
    if state == "warm":
        run(STEP, ["shrew", kind], cache, sys.executable)
    benchmark.group = f"first training step, fresh process: {kind}"
    result = benchmark.pedantic(run, args=(STEP, ["shrew", kind], cache, sys.executable),
                                rounds=1, iterations=1)  # fmt: skip
    benchmark.extra_info.update(result)


def pytest_generate_tests(metafunc):
    if "kind" in metafunc.fixturenames:
        metafunc.parametrize("kind", ["cnn", "mlp", "mlp-adam"])
        metafunc.parametrize("state", ["cold", "warm"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--python", default=sys.executable, help="interpreter to time")
    ap.add_argument("--no-families", action="store_true", help="only the training steps")
    a = ap.parse_args()
    torch_ok = _has_torch(sys.executable)
    print(f"load average {os.getloadavg()[0]:.2f}; best of {a.repeat}; seconds wall / CPU")
    print(f"{'first training step':24} {'cold wall':>9} {'cold cpu':>9} {'warm wall':>9} "
          f"{'warm cpu':>9} {'torch wall':>10} {'import wall':>11}")  # fmt: skip
    for kind in ("cnn", "mlp", "mlp-adam"):
        cold, warm = cold_and_warm(STEP, ["shrew", kind], a.python, a.repeat)
        tw = ""
        if torch_ok:
            t, _ = cold_and_warm(STEP, ["torch", kind], sys.executable, a.repeat)
            tw = f"{t['first step'][0]:10.3f}"
        print(f"{kind:24} {cold['first step'][0]:9.3f} {cold['first step'][1]:9.3f} "
              f"{warm['first step'][0]:9.3f} {warm['first step'][1]:9.3f} {tw:>10} "
              f"{warm['import'][0]:11.3f}")  # fmt: skip
    if a.no_families:
        return
    cold, warm = cold_and_warm(FAMILIES, [], a.python, a.repeat)
    print(f"\n{'first call':30} {'cold wall':>9} {'cold cpu':>9} {'warm wall':>9}")
    for k in cold:
        print(f"{k:30} {cold[k][0]:9.3f} {cold[k][1]:9.3f} {warm[k][0]:9.3f}")
    total = [sum(r[k][i] for k in r) for r, i in ((cold, 0), (cold, 1), (warm, 0))]
    print(f"{'total':30} {total[0]:9.3f} {total[1]:9.3f} {total[2]:9.3f}")


if __name__ == "__main__":
    main()
