"""The per-op host path of shrew_core, compiled (Cython ``_speedups``) vs pure Python (``_shapes``).

Run: ``python benchmarks/bench_core_hotpath.py [--rounds 5]``. Prints microseconds per call
(best of the interleaved samples) and the speed-up (Python / Cython) for the shape
arithmetic every op performs and for the backward graph walk, then (``PER_OP``) the front
end's whole cost per op on the ``cpu`` backend -- a 4x4 mul + sum + backward, where the
work is nil, then single ops on [8,16] tensors -- beside PyTorch's (one thread). Under
pytest-benchmark: ``pytest benchmarks/bench_core_hotpath.py --benchmark-only``. For
instruction counts, which a shared machine does not disturb, run ``tiny_step`` under
``valgrind --tool=callgrind`` at two iteration counts.
"""

from __future__ import annotations

import _compare

import shrew_core as sc
from shrew_core import _shapes, _speedups

BENCH = _compare.Bench("shrew_core host path: pure Python vs Cython", baseline=("cython",),
                       stat="min", rounds=5, unit="us", ratio_label="speed-up")  # fmt: skip
SHAPE, STRIDES = (8, 16, 32, 64), (32768, 2048, 64, 1)
CALLS = {
    "broadcast_shapes": lambda m: m.broadcast_shapes((8, 1, 32, 64), (16, 1, 64)),
    "broadcast_strides": lambda m: m.broadcast_strides((1, 32, 64), (2048, 64, 1), SHAPE),
    "is_contiguous": lambda m: m.is_contiguous(SHAPE, STRIDES),
    "view_strides": lambda m: m.view_strides(SHAPE, STRIDES, (128, 2048)),
    "contiguous_strides": lambda m: m.contiguous_strides(SHAPE),
}


def _pair(call):
    def build():
        return {"python": lambda: call(_shapes), "cython": lambda: call(_speedups)}
    return build


for _name, _call in CALLS.items():
    BENCH.case(_name, _name, ("python", "cython"))(_pair(_call))


@BENCH.case("topo_order", "topo_order (2000-node graph)", ("python", "cython"))
def topo_order():
    x = sc.ones(4, device="reference").requires_grad_()
    y = x
    for _ in range(2000):
        y = y * 1.0
    return _pair(lambda m: m.topo_order(y))()


PER_OP = _compare.Bench("per-op overhead: tiny 4x4 mul + sum + backward", baseline=("torch",),
                        stat="min", unit="us")  # fmt: skip


def tiny_step(lib: str, a, b) -> None:
    """Two fresh leaf tensors, mul, sum, backward: the per-op overhead benchmark."""
    if lib == "shrew":
        p, q = sc.tensor(a).requires_grad_(), sc.tensor(b).requires_grad_()
    else:
        import torch

        p = torch.from_numpy(a.copy()).requires_grad_()
        q = torch.from_numpy(b.copy()).requires_grad_()
    (p * q).sum().backward()


@PER_OP.case("tiny_step", "4x4 mul+sum+backward (cpu)", ("shrew", "torch"))
def tiny():
    import numpy as np
    import torch

    torch.set_num_threads(1)
    a, b = np.random.rand(4, 4).astype(np.float32), np.random.rand(4, 4).astype(np.float32)
    return {lib: (lambda lib=lib: tiny_step(lib, a, b)) for lib in ("shrew", "torch")}


def _small_op(build_both):
    """A case whose build returns {"shrew": fn, "torch": fn} from small cpu tensors."""
    def build():
        import numpy as np
        import torch

        torch.set_num_threads(1)
        rng = np.random.default_rng(0)
        x, w, b = (rng.standard_normal(s).astype(np.float32) for s in ((8, 16), (16, 16), (16,)))
        s_args = (sc.tensor(x), sc.tensor(w), sc.tensor(b), x)
        t_args = tuple(torch.from_numpy(a.copy()) for a in (x, w, b)) + (x,)
        return build_both(s_args, t_args, torch)
    return build


#: One op each on [8,16] f32 tensors (no grad): what the front end costs per op.
SMALL_OPS = {
    "create": lambda m, x, w, b, a: m.tensor(a),
    "mul": lambda m, x, w, b, a: x * x,
    "mul broadcast": lambda m, x, w, b, a: x * b,
    "sum": lambda m, x, w, b, a: x.sum(),
    "exp": lambda m, x, w, b, a: x.exp(),
    "matmul": lambda m, x, w, b, a: x @ w,
    "reshape": lambda m, x, w, b, a: x.reshape(16, 8),
}
for _name, _op in SMALL_OPS.items():
    PER_OP.case(_name.replace(" ", "_"), f"{_name} [8,16]", ("shrew", "torch"))(_small_op(
        lambda s, t, torch, op=_op: {"shrew": lambda: op(sc, *s), "torch": lambda: op(torch, *t)}))


@PER_OP.case("linear", "linear [8,16] x [16,16] + b", ("shrew", "torch"))
@_small_op
def _linear(s, t, torch):
    return {"shrew": lambda: sc.linear(*s[:3]), "torch": lambda: torch.nn.functional.linear(*t[:3])}


test_benchmark = BENCH.pytest_test()
test_per_op = PER_OP.pytest_test()

if __name__ == "__main__":
    BENCH.main()
    PER_OP.main()
