"""shrew_nn vs PyTorch, side by side in one run (CPU; shrew on the Numba ``cpu`` backend).

Cases (each forward + backward; the MLP case is a full SGD train step):

* conv:  Conv2d(16, 32, 3, padding=1) on [32, 16, 28, 28]
* lstm:  LSTM(128, 256) over 64 steps, batch 32 (torch: best of oneDNN on/off)
* mha:   MultiHeadAttention(256, 4 heads) self-attention, seq 128, batch 8
* mlp:   784-128-10 MLP, batch 64: forward, cross-entropy, backward, SGD step
* mlp-tiny: the same step for a 16-32-4 MLP, batch 8: nothing but per-op cost

Run: ``python benchmarks/bench_nn.py [--rounds 7] [--only conv,lstm,mlp-tiny]``: milliseconds
(best of ``rounds`` samples after warm-up, the contestants timed in alternation) and the
ratio shrew / torch's fastest (< 1 means shrew is faster). Under pytest-benchmark:
``pytest benchmarks/bench_nn.py --benchmark-only``.

``--import-order`` runs the mha case twice more, each in a fresh process without
``OMP_WAIT_POLICY`` in the environment: once importing torch before shrew, once shrew
before torch. OpenMP runtimes read their settings when the first library loads them, so
a backend on OpenMP behaves differently in the two orders; shrew_cpu's worker threads
(no OpenMP) must not.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

if "--shrew-first" in sys.argv:  # the import order is the point of --import-order
    import shrew_core  # noqa: F401
    import shrew_cpu  # noqa: F401 - the backend (shrew_core loads it on first use)

import _compare  # noqa: E402, I001 - before torch: sets OMP_WAIT_POLICY (not in those children)
import numpy as np  # noqa: E402
import torch  # noqa: E402

import shrew_core as sc  # noqa: E402
import shrew_nn as nn  # noqa: E402
import shrew_nn.functional as F  # noqa: E402

DEVICE = "cpu"
BENCH = _compare.Bench("shrew_nn vs PyTorch (shrew on the Numba cpu backend)",
                       baseline=("torch", "torch-no-onednn"), stat="min", rounds=7)


def _copy(shrew_mod, torch_mod) -> None:
    shrew_mod.load_state_dict({k: sc.tensor(v.detach().numpy().copy(), device=DEVICE)
                               for k, v in torch_mod.state_dict().items()})  # fmt: skip


def _weights(shape):
    return np.random.default_rng(1).standard_normal(shape).astype(np.float32)


def _fb_pair(shrew_mod, torch_mod, x_np, call_s, call_t):
    """Forward + backward closures: loss = sum(out * fixed random weights)."""
    xs = sc.tensor(x_np, device=DEVICE).requires_grad_()
    xt = torch.tensor(x_np, requires_grad=True)
    out_shape = tuple(call_t(torch_mod, xt).shape)
    ws, wt = sc.tensor(_weights(out_shape), device=DEVICE), torch.tensor(_weights(out_shape))

    def run_s():
        (call_s(shrew_mod, xs) * ws).sum().backward()

    def run_t():
        torch_mod.zero_grad(set_to_none=True)
        xt.grad = None
        (call_t(torch_mod, xt) * wt).sum().backward()

    return run_s, run_t


@BENCH.case("conv", "Conv2d fwd+bwd [32,16,28,28] x 32 3x3", ("shrew", "torch"))
def conv():
    t = torch.nn.Conv2d(16, 32, 3, padding=1)
    s = nn.Conv2d(16, 32, 3, padding=1, device=DEVICE)
    _copy(s, t)
    x = np.random.default_rng(0).standard_normal((32, 16, 28, 28)).astype(np.float32)
    rs, rt = _fb_pair(s, t, x, lambda m, v: m(v), lambda m, v: m(v))
    return {"shrew": rs, "torch": rt}


@BENCH.case("lstm", "LSTM(128,256) T=64 B=32 fwd+bwd", ("shrew", "torch", "torch-no-onednn"))
def lstm():
    t = torch.nn.LSTM(128, 256)
    s = nn.LSTM(128, 256, device=DEVICE)
    _copy(s, t)
    x = np.random.default_rng(0).standard_normal((64, 32, 128)).astype(np.float32)
    rs, rt = _fb_pair(s, t, x, lambda m, v: m(v)[0], lambda m, v: m(v)[0])

    def rt_off():
        with torch.backends.mkldnn.flags(enabled=False):
            rt()

    return {"shrew": rs, "torch": rt, "torch-no-onednn": rt_off}, "ratio vs torch's best"


@BENCH.case("mha", "MHA d=256 h=4 L=128 B=8 fwd+bwd", ("shrew", "torch"))
def mha():
    t = torch.nn.MultiheadAttention(256, 4, batch_first=True)
    s = nn.MultiHeadAttention(256, 4, device=DEVICE)
    _copy(s, t)
    x = np.random.default_rng(0).standard_normal((8, 128, 256)).astype(np.float32)
    rs, rt = _fb_pair(s, t, x, lambda m, v: m(v, v, v, need_weights=False)[0],
                      lambda m, v: m(v, v, v, need_weights=False)[0])  # fmt: skip
    return {"shrew": rs, "torch": rt}, "self-attention, no weights"


def _mlp_case(d_in: int, hidden: int, classes: int, batch: int):
    """A Linear-ReLU-Linear classifier's SGD training step, shrew and torch."""
    def build():
        t = torch.nn.Sequential(torch.nn.Linear(d_in, hidden), torch.nn.ReLU(),
                                torch.nn.Linear(hidden, classes))  # fmt: skip
        s = nn.Sequential(nn.Linear(d_in, hidden, device=DEVICE), nn.ReLU(),
                          nn.Linear(hidden, classes, device=DEVICE))  # fmt: skip
        _copy(s, t)
        rng = np.random.default_rng(0)
        x = rng.standard_normal((batch, d_in)).astype(np.float32)
        y = rng.integers(0, classes, batch)
        xs, ys = sc.tensor(x, device=DEVICE), sc.tensor(y, device=DEVICE)
        xt, yt = torch.tensor(x), torch.tensor(y)
        topt = torch.optim.SGD(t.parameters(), lr=0.01)
        params = list(s.parameters())
        try:
            from shrew_optim import SGD

            step, note = SGD(params, lr=0.01).step, "shrew_optim.SGD"
        except ImportError:  # shrew_nn alone: a plain in-place update
            def step(grads):
                with sc.no_grad():
                    for p in params:
                        p.detach().sub_(grads[p] * 0.01)

            note = "in-place update"

        def run_s():
            step(F.cross_entropy(s(xs), ys).backward())

        def run_t():
            topt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(t(xt), yt).backward()
            topt.step()

        return {"shrew": run_s, "torch": run_t}, note
    return build


BENCH.case("mlp", "MLP 784-128-10 B=64 train step", ("shrew", "torch"))(_mlp_case(784, 128, 10, 64))
BENCH.case("mlp-tiny", "MLP 16-32-4 B=8 train step (per-op cost)",
           ("shrew", "torch"))(_mlp_case(16, 32, 4, 8))  # fmt: skip


test_benchmark = BENCH.pytest_test()


def import_order_rows(rounds: int) -> None:
    """The mha case in two fresh processes (torch first, shrew first), no OMP_WAIT_POLICY."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env["SHREW_BENCH_DEFAULT_OMP"] = "1"
    for flag in ("--torch-first", "--shrew-first"):
        argv = [sys.executable, __file__, "--only", "mha", "--rounds", str(rounds), flag]
        out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
        rows = [ln for ln in out.stdout.strip().splitlines() if ln.strip()]
        print(f"{rows[-1]}   ({flag[2:]}, no OMP_WAIT_POLICY)")


def _options(ap) -> None:
    ap.add_argument("--import-order", action="store_true",
                    help="also time mha with torch / shrew imported first (fresh processes)")
    ap.add_argument("--torch-first", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--shrew-first", action="store_true", help=argparse.SUPPRESS)

if __name__ == "__main__":
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; shrew backend "
          f"{DEVICE!r}")  # fmt: skip
    BENCH.main(configure=_options)
    if BENCH.options.get("import_order"):
        import_order_rows(BENCH.rounds)
