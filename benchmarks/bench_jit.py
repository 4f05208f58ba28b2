"""The JIT against the interpreter, with torch eager and torch.compile as reference rows.

Run: ``python benchmarks/bench_jit.py [--rounds 15] [--no-compile]`` (``BENCH_THREADS=2`` for
two threads per library; default 1); under pytest-benchmark:
``pytest benchmarks/bench_jit.py`` (the ``test_*`` functions hand one timed body each to the
``benchmark`` fixture).

Cases: ``examples/sw/mnist_mlp.sw`` at batch 1 and 64, and ``tiny_gpt.sw`` at small dims
(vocab 512, d_model 64, 2 layers, 4 heads, batch 2, sequence 16), each forward (no grad) and
forward + backward (cross-entropy on random targets). torch rows run equivalent models
(same layer sizes; the GPT as pre-norm ``TransformerEncoderLayer`` blocks with a causal
mask and a tied head). Times are the fastest single call out of ``--rounds`` rounds of
``inner`` calls each, the implementations alternating (reversed every other round) so
machine load hits them alike. Peak activation memory is measured with tracemalloc (NumPy
registers its buffers there) around one no-grad forward, inputs and params excluded.
"""

from __future__ import annotations

import os

# Threads for every library (BLAS, OpenMP, Numba, torch): BENCH_THREADS, default 1, so that
# a machine shared with other work disturbs each implementation alike. Set before NumPy loads.
THREADS = os.environ.get("BENCH_THREADS", "1")
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, THREADS)

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

import shrew_core as sc  # noqa: E402
import shrew_nn.functional as F  # noqa: E402
from shrew.exec import RuntimeConfig, load_jit, load_program  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "sw"
GPT = dict(vocab=512, d=64, layers=2, heads=4, seq=16, batch=2)


def small_gpt_source(folder: Path) -> Path:
    src = (EXAMPLES / "tiny_gpt.sw").read_text()
    g = GPT
    subs = [
        ("Tensor<[512, 256]", f"Tensor<[{g['seq']}, 256]"),  # wpe, before the vocab
        ("50257", str(g["vocab"])),
        ("256 * 4", str(4 * g["d"])),
        ("256", str(g["d"])),
        ("n_layers: 4", f"n_layers: {g['layers']}"),
        ("n_heads: 4", f"n_heads: {g['heads']}"),
        ("max_seq_len: 512", f"max_seq_len: {g['seq']}"),
        ('precision: "bf16";', ""),
    ]
    for a, b in subs:
        src = src.replace(a, b)
    (folder / "layers").mkdir(exist_ok=True)
    (folder / "layers" / "transformer.sw").write_text(
        (EXAMPLES / "layers" / "transformer.sw").read_text()
    )
    path = folder / "tiny_gpt_small.sw"
    path.write_text(src)
    return path


# ------------------------------------------------------------------ shrew bodies
def shrew_bodies(path: Path, graph: str, feed: dict, target: np.ndarray) -> dict:
    """{"interpreter": (fwd, fwdbwd), "jit": (fwd, fwdbwd)} over the same parameters."""
    ex = load_program(path, RuntimeConfig(seed=0))
    jx = load_jit(path, RuntimeConfig(seed=0))
    jx.load_state_dict(ex.state_dict())
    feed = {k: sc.tensor(v) for k, v in feed.items()}
    y = sc.tensor(target)
    out = {}
    for name, e in (("interpreter", ex), ("jit", jx)):

        def fwd(e=e):
            with sc.no_grad():
                return e.run(graph, feed)

        def fwdbwd(e=e):
            logits = next(iter(e.run(graph, feed).values()))
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
            return loss.backward()

        out[name] = (fwd, fwdbwd)
    out["_executors"] = (ex, jx)
    return out


# ------------------------------------------------------------------ torch bodies
class TorchGPT(torch.nn.Module):
    def __init__(self, vocab, d, layers, heads, seq):
        super().__init__()
        self.wte = torch.nn.Embedding(vocab, d)
        self.wpe = torch.nn.Embedding(seq, d)
        block = dict(d_model=d, nhead=heads, dim_feedforward=4 * d, dropout=0.0,
                     activation="gelu", batch_first=True, norm_first=True)  # fmt: skip
        self.blocks = torch.nn.ModuleList(
            [torch.nn.TransformerEncoderLayer(**block) for _ in range(layers)]
        )
        self.ln = torch.nn.LayerNorm(d)
        self.register_buffer("mask", torch.nn.Transformer.generate_square_subsequent_mask(seq))

    def forward(self, tokens):
        s = tokens.shape[1]
        h = self.wte(tokens) + self.wpe(torch.arange(s))
        for b in self.blocks:
            h = b(h, src_mask=self.mask[:s, :s], is_causal=True)
        return self.ln(h) @ self.wte.weight.T


def torch_bodies(model, x, target, compile_: bool) -> dict:
    y = torch.from_numpy(target).reshape(-1)
    out = {}
    variants = [("torch eager", model)]
    if compile_:
        variants.append(("torch.compile", torch.compile(model)))
    for name, m in variants:

        def fwd(m=m):
            with torch.no_grad():
                return m(x)

        def fwdbwd(m=m):
            logits = m(x)
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y)
            loss.backward()
            return loss

        out[name] = (fwd, fwdbwd)
    return out


# ------------------------------------------------------------------ cases
def mnist_case(batch: int, compile_: bool) -> dict:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 784)).astype(np.float32)
    target = rng.integers(0, 10, batch)
    bodies = shrew_bodies(EXAMPLES / "mnist_mlp.sw", "Forward", {"x": x}, target)
    model = torch.nn.Sequential(
        torch.nn.Linear(784, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10)
    )
    bodies.update(torch_bodies(model, torch.from_numpy(x), target, compile_))
    return bodies


def gpt_case(compile_: bool, folder: Path) -> dict:
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, GPT["vocab"], (GPT["batch"], GPT["seq"]))
    target = rng.integers(0, GPT["vocab"], (GPT["batch"], GPT["seq"]))
    bodies = shrew_bodies(small_gpt_source(folder), "Forward", {"tokens": tokens}, target)
    model = TorchGPT(GPT["vocab"], GPT["d"], GPT["layers"], GPT["heads"], GPT["seq"])
    bodies.update(torch_bodies(model, torch.from_numpy(tokens), target, compile_))
    return bodies


def best_times(fns: dict, rounds: int, inner: int) -> dict[str, float]:
    """The fastest single call of each implementation over ``rounds`` x ``inner`` calls,
    the implementations alternating (reversed every other round)."""
    for fn in fns.values():
        for _ in range(3):
            fn()
    best = {k: float("inf") for k in fns}
    names = list(fns)
    clock = time.perf_counter
    for r in range(rounds):
        for k in names if r % 2 == 0 else reversed(names):
            fn = fns[k]
            for _ in range(inner):
                t0 = clock()
                fn()
                best[k] = min(best[k], clock() - t0)
    return best


def peak_bytes(fn) -> int:
    fn()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    out = fn()
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    del out
    return peak


def run_case(title: str, bodies: dict, rounds: int, inner: int) -> list[str]:
    lines = []
    impls = [k for k in bodies if not k.startswith("_")]
    for mode, idx in (("forward", 0), ("fwd+bwd", 1)):
        times = best_times({k: bodies[k][idx] for k in impls}, rounds, inner)
        interp, jit = times["interpreter"], times["jit"]
        eager = times.get("torch eager")
        for k in impls:
            t = times[k]
            extra = ""
            if k == "jit":
                extra = f"  {interp / jit:.2f}x faster than the interpreter"
                if eager:
                    extra += f", {eager / jit:.2f}x torch eager's speed"
            lines.append(f"{title:22s} {mode:8s} {k:14s} {t * 1e6:10.1f} us{extra}")
    ex, jx = bodies["_executors"]
    mi, mj = peak_bytes(bodies["interpreter"][0]), peak_bytes(bodies["jit"][0])
    stats = jx.stats()
    lines.append(f"{title:22s} peak activation memory: interpreter {mi} B, jit {mj} B "
                 f"({mj / mi:.2f}x); tape: {stats.slots} slots, {stats.reused_slots} reused, "
                 f"{stats.fused_kernels} fused, meter {stats.peak_bytes} B")  # fmt: skip
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--no-compile", action="store_true", help="skip torch.compile rows")
    ap.add_argument("--case", choices=["mnist1", "mnist64", "gpt"], action="append",
                    help="run only these cases (default: all)")  # fmt: skip
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(int(THREADS))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; best of "
          f"{args.rounds} rounds")  # fmt: skip
    compile_ = not args.no_compile
    with tempfile.TemporaryDirectory() as tmp:
        cases = [("mnist_mlp batch 1", lambda: mnist_case(1, compile_), 200),
                 ("mnist_mlp batch 64", lambda: mnist_case(64, compile_), 50),
                 ("tiny_gpt small", lambda: gpt_case(compile_, Path(tmp)), 8)]  # fmt: skip
        keys = dict(zip(["mnist1", "mnist64", "gpt"], cases))
        cases = [keys[k] for k in args.case] if args.case else cases
        for title, make, inner in cases:
            try:
                bodies = make()
                for line in run_case(title, bodies, args.rounds, inner):
                    print(line, flush=True)
            except Exception as e:  # torch.compile failing offline is reported, not hidden
                if compile_ and "compile" in repr(e).lower():
                    print(f"{title}: torch.compile failed: {e!r}; rerun with --no-compile")
                else:
                    raise


# ------------------------------------------------------------------ pytest-benchmark
def _body(impl: str, mode: int, batch: int = 1):
    return mnist_case(batch, False)[impl][mode]


def test_mnist_forward_b1_interpreter(benchmark):
    benchmark(_body("interpreter", 0))


def test_mnist_forward_b1_jit(benchmark):
    benchmark(_body("jit", 0))


def test_mnist_fwdbwd_b64_interpreter(benchmark):
    benchmark(_body("interpreter", 1, 64))


def test_mnist_fwdbwd_b64_jit(benchmark):
    benchmark(_body("jit", 1, 64))


if __name__ == "__main__":
    main()
