"""shrew_nn vs PyTorch, side by side in one run (CPU; shrew on the Numba ``cpu`` backend).

Cases (each forward + backward; the MLP case is a full SGD train step):

* conv:  Conv2d(16, 32, 3, padding=1) on [32, 16, 28, 28]
* lstm:  LSTM(128, 256) over 64 steps, batch 32 (torch: best of oneDNN on/off)
* mha:   MultiHeadAttention(256, 4 heads) self-attention, seq 128, batch 8
* mlp:   784-128-10 MLP, batch 64: forward, cross-entropy, backward, SGD step

Run: ``python benchmarks/bench_nn.py [--repeat 7] [--threads N] [--only conv,lstm]``.
Prints milliseconds (best of ``repeat`` runs after warm-up, shrew and torch timed in
alternation) and the ratio shrew / torch (< 1 means shrew is faster).

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
import time
import warnings

# torch's OpenMP workers sleep between parallel regions instead of spinning against the
# threads (OpenBLAS's, shrew_cpu's) that run next in this process. Not set in the
# --import-order children, which measure without it.
if "--shrew-first" not in sys.argv and "--torch-first" not in sys.argv:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
if "--shrew-first" in sys.argv:
    import shrew_core  # noqa: F401 - import order is the point
    import shrew_cpu  # noqa: F401 - the backend (shrew_core loads it on first use)

import numpy as np  # noqa: E402
import torch  # noqa: E402

import shrew_core as sc  # noqa: E402
import shrew_nn as nn  # noqa: E402
import shrew_nn.functional as F  # noqa: E402

DEVICE = "cpu"


def _best_ms(*fns, repeat: int, warmup: int = 2) -> list[float]:
    """Best-of-``repeat`` milliseconds of each function, timed in alternation so that load
    from other processes on a shared machine hits every contestant alike."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    best = [float("inf")] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - t0)
    return [b * 1e3 for b in best]


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


def bench_conv(repeat):
    t = torch.nn.Conv2d(16, 32, 3, padding=1)
    s = nn.Conv2d(16, 32, 3, padding=1, device=DEVICE)
    _copy(s, t)
    x = np.random.default_rng(0).standard_normal((32, 16, 28, 28)).astype(np.float32)
    rs, rt = _fb_pair(s, t, x, lambda m, v: m(v), lambda m, v: m(v))
    ms, mt = _best_ms(rs, rt, repeat=repeat)
    return ms, mt, ""


def bench_lstm(repeat):
    t = torch.nn.LSTM(128, 256)
    s = nn.LSTM(128, 256, device=DEVICE)
    _copy(s, t)
    x = np.random.default_rng(0).standard_normal((64, 32, 128)).astype(np.float32)
    rs, rt = _fb_pair(s, t, x, lambda m, v: m(v)[0], lambda m, v: m(v)[0])
    def rt_off():
        with torch.backends.mkldnn.flags(enabled=False):
            rt()

    ms, on, off = _best_ms(rs, rt, rt_off, repeat=repeat)
    note = f"torch oneDNN on {on:.1f} ms / off {off:.1f} ms"
    return ms, min(on, off), note


def bench_mha(repeat):
    t = torch.nn.MultiheadAttention(256, 4, batch_first=True)
    s = nn.MultiHeadAttention(256, 4, device=DEVICE)
    _copy(s, t)
    x = np.random.default_rng(0).standard_normal((8, 128, 256)).astype(np.float32)
    rs, rt = _fb_pair(s, t, x, lambda m, v: m(v, v, v, need_weights=False)[0],
                      lambda m, v: m(v, v, v, need_weights=False)[0])  # fmt: skip
    ms, mt = _best_ms(rs, rt, repeat=repeat)
    return ms, mt, "self-attention, no weights"


def bench_mlp(repeat):
    t = torch.nn.Sequential(torch.nn.Linear(784, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    s = nn.Sequential(nn.Linear(784, 128, device=DEVICE), nn.ReLU(),
                      nn.Linear(128, 10, device=DEVICE))  # fmt: skip
    _copy(s, t)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 784)).astype(np.float32)
    y = rng.integers(0, 10, 64)
    xs, ys = sc.tensor(x, device=DEVICE), sc.tensor(y, device=DEVICE)
    xt, yt = torch.tensor(x), torch.tensor(y)
    topt = torch.optim.SGD(t.parameters(), lr=0.01)
    params = list(s.parameters())
    try:
        from shrew_optim import SGD

        sopt = SGD(params, lr=0.01)
        step, note = sopt.step, "shrew_optim.SGD"
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

    ms, mt = _best_ms(run_s, run_t, repeat=repeat * 10)
    return ms, mt, note


CASES = {"conv": ("Conv2d fwd+bwd [32,16,28,28] x 32 3x3", bench_conv),
         "lstm": ("LSTM(128,256) T=64 B=32 fwd+bwd", bench_lstm),
         "mha": ("MHA d=256 h=4 L=128 B=8 fwd+bwd", bench_mha),
         "mlp": ("MLP 784-128-10 B=64 train step", bench_mlp)}  # fmt: skip


def import_order_rows(repeat: int) -> None:
    """The mha case in two fresh processes (torch first, shrew first), no OMP_WAIT_POLICY."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    for flag in ("--torch-first", "--shrew-first"):
        out = subprocess.run([sys.executable, __file__, "--only", "mha", "--repeat", str(repeat),
                              flag], env=env, capture_output=True, text=True, check=True)
        print(f"{out.stdout.strip().splitlines()[-1]}; {flag[2:]}, no OMP_WAIT_POLICY")


def main() -> None:
    warnings.filterwarnings("ignore", category=UserWarning)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--only", default="", help="comma-separated subset of " + ",".join(CASES))
    ap.add_argument("--import-order", action="store_true",
                    help="also time mha with torch / shrew imported first (fresh processes)")
    ap.add_argument("--torch-first", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--shrew-first", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    names = [n for n in args.only.split(",") if n] or list(CASES)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; shrew backend "
          f"{DEVICE!r}")  # fmt: skip
    print(f"{'case':38s} {'shrew ms':>9s} {'torch ms':>9s} {'ratio':>6s}  note")
    for name in names:
        title, fn = CASES[name]
        ms, mt, note = fn(args.repeat)
        print(f"{title:38s} {ms:9.2f} {mt:9.2f} {ms / mt:6.2f}  {note}", flush=True)
    if args.import_order:
        import_order_rows(args.repeat)


if __name__ == "__main__":
    main()
