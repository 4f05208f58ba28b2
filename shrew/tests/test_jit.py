"""The JIT (load_jit -> JitExecutor) against the interpreter: every example program, random
programs, gradients, buffer reuse and measured memory, fused kernels and their disk cache,
negative dims, errors.

Tolerances: exact (assert_array_equal) where the tape runs the interpreter's own
arithmetic; f32 rtol 1e-5 / atol 1e-6 (f64 1e-12) where a generated kernel is involved;
gradients rtol 1e-5 and atol 1e-5 x max|gradient| (f64 1e-11), since a fused kernel's
backward sums broadcast dims in another order.
"""

from __future__ import annotations

import re
import shutil
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import shrew_core as sc
import shrew_ir
from shrew.exec import ExecutionError, JitExecutor, RuntimeConfig, load_jit, load_program
from shrew.exec.jit import cache_dir

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "sw"
SHARED = REPO.parent / "shared" / "sw-examples"
TOL = {"float32": dict(rtol=1e-5, atol=1e-6), "float64": dict(rtol=1e-12, atol=1e-12)}
GRAD_TOL = {"float32": 1e-5, "float64": 1e-11}


def small_gpt(path: Path, tmp: Path) -> Path:
    """tiny_gpt.sw at small dims (vocab 97, d_model 32, 2 layers), imports copied along."""
    src = path.read_text()
    for a, b in [("50257", "97"), ("256 * 4", "128"), ("256", "32"), ("n_layers: 4", "n_layers: 2"),
                 ("max_seq_len: 512", "max_seq_len: 16"), ("[512, 32]", "[16, 32]")]:  # fmt: skip
        src = src.replace(a, b)
    shutil.copytree(path.parent / "layers", tmp / "layers", dirs_exist_ok=True)
    out = tmp / path.name
    out.write_text(src)
    return out


def sample_inputs(ex, graph: str, rng, batch: int = 3, seq: int = 5) -> dict:
    _, g = ex._graph(graph)
    feed = {}
    for nid in g.inputs:
        node = g.nodes[nid]
        dims = []
        for d in node.type.dims:
            if isinstance(d, shrew_ir.Fixed):
                dims.append(d.value)
            else:
                dims.append(seq if "seq" in str(d).lower() else batch)
        if node.type.dtype.startswith("f"):
            dtype = np.float64 if node.type.dtype == "f64" else np.float32
            feed[node.name] = rng.standard_normal(dims).astype(dtype)
        else:
            feed[node.name] = rng.integers(0, 10, dims)
    return feed


def pair(source, device="cpu", level=2, **kw):
    """An interpreter and a JIT over the same program and the same parameter values."""
    cfg = dict(device=device, seed=0, optimize_level=level, **kw)
    ex = load_program(source, RuntimeConfig(**cfg))
    jx = load_jit(source, RuntimeConfig(**cfg))
    jx.load_state_dict(ex.state_dict())
    return ex, jx


def assert_close(got, want, exact=False, what="", grad=False):
    got, want = got.numpy(), want.numpy()
    assert got.shape == want.shape, what
    assert got.dtype == want.dtype, what
    if exact or want.dtype.kind not in "f":
        np.testing.assert_array_equal(got, want, err_msg=what)
    elif grad:  # sums over a batch in another order: relative to the gradient's scale
        tol = GRAD_TOL[want.dtype.name]
        scale = max(1.0, float(np.abs(want).max())) if want.size else 1.0
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * scale, err_msg=what)
    else:
        np.testing.assert_allclose(got, want, err_msg=what, **TOL[want.dtype.name])


def check_program(ex, jx, graph, feed, exact=False, grad=True, runs=2):
    """Outputs (no-grad and grad) and every parameter's gradient match, over several runs
    (the first run traces and compiles, later ones execute the tape)."""
    with sc.no_grad():
        want = ex.run(graph, feed)
        for _ in range(runs):
            got = jx.run(graph, feed)
            for name in want:
                assert_close(got[name], want[name], exact, f"output {name}")
    if not grad or not ex.parameters(graph):
        return
    for _ in range(runs):
        want = ex.run(graph, feed)
        got = jx.run(graph, feed)
        loss_w = sum((t.to("f64") ** 2).sum() for t in want.values() if t.dtype.is_float)
        loss_g = sum((t.to("f64") ** 2).sum() for t in got.values() if t.dtype.is_float)
        assert loss_g.requires_grad == loss_w.requires_grad
        if not loss_w.requires_grad:
            return
        gw, gg = loss_w.backward(), loss_g.backward()
        for (name, pw), pg in zip(ex.named_params().items(), jx.named_params().values()):
            if pw in gw:
                assert_close(gg[pg], gw[pw], False, f"gradient of {name}", grad=True)


EXAMPLE_FILES = sorted(EXAMPLES.glob("*.sw")) + sorted(
    p for p in SHARED.glob("**/*.sw") if "layers" not in p.parts
)


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_example_program_matches_the_interpreter(path, tmp_path):
    if path.name == "tiny_gpt.sw":
        path = small_gpt(path, tmp_path)
    ex, jx = pair(path)
    rng = np.random.default_rng(0)
    for graph in ex.graph_names():
        check_program(ex, jx, graph, sample_inputs(ex, graph, rng))


def test_mnist_tape_fuses_the_epilogue_and_is_exact():
    ex, jx = pair(EXAMPLES / "mnist_mlp.sw")
    x = np.random.default_rng(0).standard_normal((4, 784)).astype(np.float32)
    check_program(ex, jx, "Forward", {"x": x}, exact=True)
    with sc.no_grad():
        jx.run("Forward", {"x": x})
    stats = jx.stats("Forward")
    assert stats.fused_kernels == 1  # linear + bias + relu as GEMM then one kernel
    assert "Gemm linear + Fused[relu(($0 + $1))]" in jx.dump("Forward")
    assert stats.frees == 1 and stats.slots == 2


# ------------------------------------------------------------------ random programs
TEMPLATES = [
    "relu({0})", "tanh({0})", "sigmoid({0})", "{0} + {1}", "{0} - {1}", "{0} * {1}",
    "matmul({0}, w)", "matmul({0}, transpose(w))", "matmul({0}, transpose(w)) + bias",
    "{0} * 2.0 + 1.0", "{0} + bias", "softmax({0})", "{0} / (abs({1}) + 1.0)", "square({0})",
    "maximum({0}, {1})", "silu({0})", "gelu({0}, approximate: \"tanh\")", "exp(-abs({0}))",
    "leaky_relu({0}, negative_slope: 0.2)", "where({0} > {1}, {0}, {1} * 0.5)",
    "sum({0}, dim: -1, keepdim: true) + {1}", "transpose({0}) * 1.5", "clamp({0}, min: -0.5)",
    "layer_norm({0})",
]  # fmt: skip


@st.composite
def programs(draw):
    names = ["a", "b"]
    lines = []
    for i in range(draw(st.integers(2, 8))):
        template = draw(st.sampled_from(TEMPLATES))
        lines.append(f"node n{i} {{ op: {template.format(*draw(st.permutations(names))[:2])}; }};")
        names.append(f"n{i}")
    outs = {names[-1], draw(st.sampled_from(names[2:]))}
    body = " ".join(lines + [f"output {o};" for o in sorted(outs)])
    return (
        "@graph G { input a: Tensor<[4, 4], f32>; input b: Tensor<[4, 4], f32>;"
        ' param w: Tensor<[4, 4], f32> { init: "normal(0, 0.5)"; };'
        ' param bias: Tensor<[4], f32> { init: "normal(0, 0.5)"; };' + body + " }"
    )


@settings(max_examples=14, deadline=None, suppress_health_check=list(HealthCheck))
@given(programs(), st.sampled_from([0, 2]), st.integers(0, 2**31 - 1))
def test_random_programs_match_the_interpreter(source, level, seed):
    ex, jx = pair(source, level=level)
    rng = np.random.default_rng(seed)
    feed = {k: rng.standard_normal((4, 4)).astype(np.float32) for k in "ab"}
    check_program(ex, jx, "G", feed)


# ------------------------------------------------------------------ gradients through kernels
BROADCAST = """
@graph G {
    input x: Tensor<[Batch, 6], f32>;
    input s: Tensor<[Batch, 1], f32>;
    param w: Tensor<[6, 6], f32> { init: "normal(0, 0.5)"; };
    param b: Tensor<[6], f32> { init: "normal(0, 0.5)"; };
    param c: Tensor<[1], f32> { init: "ones"; };
    node h { op: gelu(linear(x, w, b)); };
    node t { op: transpose(h); };
    node m { op: tanh(h * s + c) * sigmoid(transpose(t) - 0.5); };
    node y { op: softmax(m) * (m + h); };
    output y;
}
"""


def test_gradients_through_fused_broadcast_and_strided_inputs():
    ex, jx = pair(BROADCAST)
    rng = np.random.default_rng(1)
    feed = {"x": rng.standard_normal((5, 6)).astype(np.float32),
            "s": rng.standard_normal((5, 1)).astype(np.float32)}  # fmt: skip
    check_program(ex, jx, "G", feed, runs=3)
    assert jx.stats("G").fused_kernels >= 2


def test_f64_and_bool_chains():
    src = """@graph G { input x: Tensor<[3, 5], f64>; param w: Tensor<[5], f64> { init: "ones"; };
        node m { op: (x * w > 0.5) && (x < 2.0); }; node y { op: where(m, exp(x) * w, -x); };
        output m; output y; }"""
    ex, jx = pair(src)
    x = np.random.default_rng(2).standard_normal((3, 5)) * 2
    check_program(ex, jx, "G", {"x": x})
    assert jx.run("G", {"x": x})["m"].dtype is sc.bool_


def test_negative_dims_match_the_interpreter():
    src = """@graph G { input x: Tensor<[2, 3, 4], f32>;
        node s { op: softmax(x); }; node l { op: log_softmax(x, dim: -2); };
        node c { op: concat(s, l, dim: -1); }; node p { op: split(c, chunks: 2, dim: -1); };
        node r { op: sum(p[1], dim: -1) + mean(x, dim: [-1, -2], keepdim: false)[0]; };
        node t { op: transpose(x, dim0: -1, dim1: -3); };
        output r; output t; }"""
    ex, jx = pair(src)
    x = np.random.default_rng(3).standard_normal((2, 3, 4)).astype(np.float32)
    check_program(ex, jx, "G", {"x": x}, exact=True, grad=False)


# ------------------------------------------------------------------ memory
DEEP = """
@graph G {
    input x: Tensor<[Batch, 32], f32>;
    param w1: Tensor<[32, 32], f32> { init: "normal(0, 0.2)"; };
    param w2: Tensor<[32, 32], f32> { init: "normal(0, 0.2)"; };
    param w3: Tensor<[32, 32], f32> { init: "normal(0, 0.2)"; };
    node h1 { op: tanh(matmul(x, w1)); };
    node h2 { op: tanh(matmul(h1, w2)) + h1; };
    node h3 { op: tanh(matmul(h2, w3)) * 0.5 + h2; };
    node h4 { op: softmax(h3) + h3; };
    output y: h4 * 2.0;
}
"""


def _traced_peak(fn) -> int:
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    out = fn()
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    del out
    return peak


def test_buffers_are_reused_and_peak_memory_is_lower():
    ex, jx = pair(DEEP, level=1)
    x = sc.tensor(np.random.default_rng(4).standard_normal((256, 32)).astype(np.float32))
    check_program(ex, jx, "G", {"x": x}, grad=False)
    with sc.no_grad():
        jx.run("G", {"x": x})
        stats = jx.stats("G")
        assert stats.reused_slots >= 2, jx.dump("G")
        assert stats.slots < stats.instructions
        assert stats.peak_bytes < stats.intermediate_bytes / 2, stats
        jit_peak = _traced_peak(lambda: jx.run("G", {"x": x}))
        interp_peak = _traced_peak(lambda: ex.run("G", {"x": x}))
    assert stats.peak_bytes <= jit_peak * 1.05  # the meter counts real buffers
    assert jit_peak < 0.6 * interp_peak, (jit_peak, interp_peak)


def test_training_runs_never_reuse_buffers_saved_for_backward():
    ex, jx = pair(DEEP, level=1)
    rng = np.random.default_rng(5)
    xs = [sc.tensor(rng.standard_normal((8, 32)).astype(np.float32)) for _ in range(3)]
    want = [ex.run("G", {"x": x})["y"] for x in xs]
    got = [jx.run("G", {"x": x})["y"] for x in xs]  # three live graphs, then backward each
    for w, g in zip(want, got):
        gw, gg = w.sum().backward(), g.sum().backward()
        for pw, pg in zip(ex.parameters(), jx.parameters()):
            assert_close(gg[pg], gw[pw], grad=True)
    stats = jx.stats("G")
    assert stats.fused_kernels >= 3


# ------------------------------------------------------------------ kernels and the cache
def test_generated_kernels_are_cached_on_disk_by_hash(tmp_path, monkeypatch):
    monkeypatch.setenv("SHREW_CACHE_DIR", str(tmp_path))
    src = "@graph G { input x: Tensor<[3, 3], f32>; output y: cos(x) * 3.25 - sin(x); }"
    ex, jx = pair(src)
    check_program(ex, jx, "G", {"x": np.eye(3, dtype=np.float32)}, grad=False)
    files = list((tmp_path / "jit").glob("k_*.py"))
    assert len(files) == 1
    text = files[0].read_text()
    assert "(cos($0) * 3.25) - sin($0)" in text.replace("((", "(")
    assert re.fullmatch(r"k_[0-9a-f]{24}\.py", files[0].name)
    assert jx.stats("G").fused_kernels == 1


def test_generated_kernels_change_with_shrew_cpu_kernel_modules(tmp_path, monkeypatch):
    """The generated code inlines shrew_cpu's vmath functions, whose edits Numba's cache
    (stamped by the generated file alone) would not see: their stamp is in the source, so
    a changed kernel module gives a new file (and a new compile), never stale code."""
    from shrew.exec.jit import codegen
    from shrew_cpu import _cache

    monkeypatch.setenv("SHREW_CACHE_DIR", str(tmp_path))
    src = "@graph G { input x: Tensor<[3, 3], f32>; output y: exp(x) * 0.5 + x; }"
    ex, jx = pair(src)
    check_program(ex, jx, "G", {"x": np.eye(3, dtype=np.float32)}, grad=False)
    (first,) = (tmp_path / "jit").glob("k_*.py")
    assert f"# shrew_cpu kernels {_cache.sources_stamp().hex()[:16]}" in first.read_text()
    monkeypatch.setattr(codegen, "_kernels_stamp", lambda: "0123456789abcdef")
    ex, jx = pair(src)
    check_program(ex, jx, "G", {"x": np.eye(3, dtype=np.float32)}, grad=False)
    files = sorted((tmp_path / "jit").glob("k_*.py"))
    assert len(files) == 2
    assert any("# shrew_cpu kernels 0123456789abcdef" in f.read_text() for f in files)


def test_cache_dir_falls_back_when_unwritable(tmp_path, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    monkeypatch.setenv("SHREW_CACHE_DIR", str(locked / "sub"))
    monkeypatch.setenv("HOME", str(locked))
    try:
        folder = cache_dir()
        assert not str(folder).startswith(str(locked)) or locked.stat().st_uid == 0
    finally:
        locked.chmod(0o700)


def test_tapes_are_cached_per_signature_and_errors_name_nodes():
    src = """@graph G { input x: Tensor<[Batch, 3], f32>;
        param w: Tensor<[3], f32> { init: "ones"; };
        node y { op: relu(x * w) + 1.0; }; output y; }"""
    jx = load_jit(src, RuntimeConfig(seed=0), filename="m.sw")
    assert isinstance(jx, JitExecutor)
    with sc.no_grad():
        for batch in (1, 2, 1, 2):
            jx.run("G", {"x": np.ones((batch, 3), np.float32)})
    assert len([k for k in jx._tapes if k[0] == "G"]) == 2
    with pytest.raises(ExecutionError, match=r"graph 'G', node 'x'.*missing input 'x'"):
        jx.run("G", {})
    with pytest.raises(ExecutionError, match=r"input 'x'.*dim 1 must be 3") as err:
        jx.run("G", {"x": np.ones((2, 4), np.float32)})
    assert "slot" not in str(err.value)


def test_runtime_errors_name_graph_node_and_inputs_never_slots():
    src = """@graph G { input p: Tensor<[4], f32>; input t: Tensor<[4], f32>;
        node q { op: p * 0.5; }; node loss { op: binary_cross_entropy(q, t); }; output loss; }"""
    jx = load_jit(src, filename="bce.sw")
    ok = {"p": np.full(4, 0.5, np.float32), "t": np.ones(4, np.float32)}
    jx.run("G", ok)
    jx.run("G", ok)
    message = r"graph 'G', node 'loss' \(bce.sw:2:.*between 0 and 1"
    with pytest.raises(ExecutionError, match=message) as e:
        jx.run("G", {"p": np.full(4, 4.0, np.float32), "t": np.ones(4, np.float32)})
    assert "slot" not in str(e.value)


def test_stats_and_dump_before_any_run_use_the_declared_types():
    jx = load_jit(EXAMPLES / "mnist_mlp.sw", RuntimeConfig(dims={"Batch": 2}))
    stats = jx.stats("Forward")
    assert stats.instructions == 8 and stats.fused_kernels == 1
    text = jx.dump("Forward")
    assert text.startswith("=== JIT Compiled: Forward ===") and "Free v" in text
    assert "Outputs: {logits_bias:" in text
    with pytest.raises(ExecutionError, match="symbolic dim 'Batch' is unbound"):
        load_jit(EXAMPLES / "mnist_mlp.sw").stats("Forward")


def test_jit_on_every_backend(device):
    ex, jx = pair(BROADCAST, device=device)
    rng = np.random.default_rng(6)
    feed = {"x": rng.standard_normal((2, 6)).astype(np.float32),
            "s": rng.standard_normal((2, 1)).astype(np.float32)}  # fmt: skip
    check_program(ex, jx, "G", feed)


STRUCTURE = """
@custom_op mycube { signature: (x: Tensor<[B, D], f32>) -> Tensor<[B, D], f32>; }
@graph helper { input u: Tensor<[?, 4], f32>; node v { op: u * 2.0; }; output v; }
@graph main {
    input x: Tensor<[Batch, 4], f32>;
    node parts { op: split(x, chunks: 2, dim: 1); };
    node left { op: parts[0]; };
    node doubled { op: call helper(x); };
    node pos { op: range(0, Batch); };
    node fused { op: relu(x * 3.0 + 1.0) - 0.5; };
    node s { op: sum(doubled, dim: 1) + mean(left, dim: 1) + cast(pos, dtype: "f32"); };
    node e { op: mycube(fused); };
    node m { op: max(e, dim: -1) + cast(argmax(e, dim: -1), dtype: "f32"); };
    output s;
    output e;
    output m;
}
"""


def test_structure_ops_calls_and_custom_ops_run_compiled():
    cube = {"mycube": lambda t: t * t * t}
    ex = load_program(STRUCTURE, RuntimeConfig(seed=0), custom_ops=cube)
    jx = load_jit(STRUCTURE, RuntimeConfig(seed=0), custom_ops=cube)
    x = np.arange(8, dtype=np.float32).reshape(2, 4) - 3
    check_program(ex, jx, "main", {"x": x}, grad=False)
    assert jx.stats("helper").instructions > 0  # the called graph has its own tape


def test_transformer_blocks_are_opened_up_and_fused():
    src = """
    @graph lm {
        input tokens: Tensor<[Batch, SeqLen], i64>;
        param wte: Tensor<[11, 16], f32> { init: "normal(0, 0.2)"; };
        node h { op: embedding(tokens, wte); };
        node t { op: repeat(3) { transformer_block(h, n_heads: 2); }; };
        node logits { op: matmul(layer_norm(t), transpose(wte)); };
        output logits;
    }"""
    ex, jx = pair(src)
    tokens = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    check_program(ex, jx, "lm", {"tokens": tokens})
    with sc.no_grad():
        jx.run("lm", {"tokens": tokens})
    stats = jx.stats("lm")
    assert stats.fused_kernels == 2 * 3  # linear1 + bias + GELU, linear2 + bias + residual
    assert stats.reused_slots >= 3 and stats.peak_bytes < stats.intermediate_bytes / 2
    assert "Gemm module_linear + Fused[gelu(($0 + $1))]" in jx.dump("lm")


def test_rank3_broadcasts_and_noncontiguous_inputs():
    src = """@graph G { input x: Tensor<[2, 3, 4], f32>; input y: Tensor<[2, 1, 4], f32>;
        input z: Tensor<[4, 3], f32>; param w: Tensor<[3, 1], f32> { init: "normal(0, 1)"; };
        node t { op: tanh(x * y + w) - transpose(z) * 0.5; }; output t; }"""
    ex, jx = pair(src)
    rng = np.random.default_rng(7)
    z = sc.tensor(rng.standard_normal((3, 4)).astype(np.float32)).t()  # a transposed view
    feed = {"x": rng.standard_normal((2, 3, 4)).astype(np.float32),
            "y": rng.standard_normal((2, 1, 4)).astype(np.float32), "z": z}  # fmt: skip
    check_program(ex, jx, "G", feed)
    assert jx.stats("G").fused_kernels == 1
