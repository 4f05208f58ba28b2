"""The cuda backend beyond the op-spec suite: the RNG against cpu (bit for bit), the pool
and its statistics, dtypes and layouts the suite samples lightly, integer semantics,
fused kernels against their composed defaults, nn/optim on cuda, and the errors."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import shrew_core as sc
import shrew_cuda
from shrew_core.layout import Layout

pytestmark = pytest.mark.cuda


@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16"])
def test_rng_matches_cpu_bit_for_bit(dtype):
    for fn in (lambda d: sc.rand(5, 7, dtype=dtype, device=d),
               lambda d: sc.uniform((9,), -3.0, 2.5, dtype=dtype, device=d),
               lambda d: sc.randn(11, dtype=dtype, device=d),
               lambda d: sc.bernoulli((13,), 0.3, dtype=dtype, device=d)):  # fmt: skip
        sc.manual_seed(1234)
        a = fn("cpu").numpy()
        sc.manual_seed(1234)
        b = fn("cuda").numpy()
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a.view(np.uint8), b.view(np.uint8))


def test_pool_reuses_freed_blocks_and_counts():
    shrew_cuda.empty_cache()
    before = shrew_cuda.memory_stats()
    x = sc.zeros(1000, device="cuda")  # 4000 bytes -> one 4096-byte block
    mid = shrew_cuda.memory_stats()
    assert mid["allocated_bytes"] - before["allocated_bytes"] == 4096
    assert mid["peak_allocated_bytes"] >= mid["allocated_bytes"]
    del x
    after_free = shrew_cuda.memory_stats()
    assert after_free["allocated_bytes"] == before["allocated_bytes"]
    assert after_free["reserved_bytes"] >= 4096  # cached, not released
    hits = after_free["cache_hits"]
    y = sc.zeros(1000, device="cuda")
    assert shrew_cuda.memory_stats()["cache_hits"] == hits + 1
    del y
    shrew_cuda.empty_cache()
    s = shrew_cuda.memory_stats()
    if shrew_cuda.is_simulated():  # only live blocks stay reserved
        assert s["reserved_bytes"] == s["allocated_bytes"]
    else:  # CuPy's pool may also hold CuPy's own live allocations
        assert s["reserved_bytes"] >= s["allocated_bytes"]
    shrew_cuda.reset_peak_memory_stats()
    s = shrew_cuda.memory_stats()
    assert s["peak_allocated_bytes"] == s["allocated_bytes"]


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64"])
def test_half_and_double_storage_round_trip_and_accumulate(dtype, ct):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4, 6))
    got, want = ct.on_both(lambda t: ((t * 2.0 + 1.0).sum(1), t.t().contiguous(), t.amax(0)),
                           a, dtype=dtype)  # fmt: skip
    for g, w in zip(got, want):
        ct.close(g.to("f64"), w.to("f64"), dtype)


def test_strided_broadcast_offset_and_empty_layouts(ct):
    base = np.arange(60, dtype=np.float32).reshape(3, 4, 5)
    got, want = ct.on_both(lambda t: (t.permute(2, 0, 1)[1:, :, ::2] * t[0, :3, :1],
                                      t.narrow(2, 1, 3).sum((0, 2)), t[:, :0].exp(),
                                      t.expand(2, 3, 4, 5).sum(0)), base)  # fmt: skip
    for g, w in zip(got, want):
        ct.close(g, w)


def test_reduction_kernels_rows_and_columns(ct, monkeypatch):
    from shrew_cuda import reduce as R

    a = np.random.default_rng(1).standard_normal((9, 6)).astype(np.float32)
    a[2, 3] = np.nan
    for threshold in (1, 10**9):  # force the column kernel, then the row kernel
        monkeypatch.setattr(R, "COLUMN_MIN_OUTPUTS", threshold)
        got, want = ct.on_both(lambda t: (t.sum(0), t.amax(0), t.prod(0), t.sum(1)), a)
        for g, w in zip(got, want):
            ct.close(g, w)


def test_integer_semantics(ct):
    a = np.array([[7, -7, 5], [0, 3, -4]], np.int64)
    b = np.array([[2, 2, -3], [1, -2, 3]], np.int64)
    got, want = ct.on_both(lambda x, y: (x // y, x % y, x * y + 3, x.sum(), x.abs(), x ** 2,
                                         x.to("u8"), x.argmax(1), x.cumsum(1)), a, b)
    for g, w in zip(got, want):
        ct.close(g, w)
    x = sc.tensor(a, device="cuda")
    with pytest.raises(ZeroDivisionError):
        x // sc.zeros(2, 3, dtype="i64", device="cuda")


def test_sort_is_stable_and_puts_nan_last(ct):
    a = np.array([[3.0, 1.0, np.nan, 1.0, 2.0, 3.0]], np.float32)
    for desc in (False, True):
        got, want = ct.on_both(lambda t, d=desc: t.sort(1, descending=d), a)
        for g, w in zip(got, want):
            ct.close(g, w)


def test_index_add_and_scatter_with_repeats(ct):
    w = np.random.default_rng(2).standard_normal((5, 3)).astype(np.float32)
    idx = np.array([1, 1, 4, 1], np.int64)
    got = sc.tensor(w, device="cuda").requires_grad_()
    out = sc.embedding(got, sc.tensor(idx, device="cuda")).sum()
    g = out.backward()[got].numpy()
    want = np.zeros_like(w)
    np.add.at(want, idx, 1.0)
    ct.close(g, want)
    with pytest.raises(sc.IndexOutOfRangeError):
        sc.tensor(w, device="cuda").index_select(0, sc.tensor([5], device="cuda"))


def test_fused_kernels_match_the_composed_defaults(ct):
    """Every fused kernel the cuda backend overrides, against shrew_core's composition."""
    from shrew_core import fused_defaults as fd

    b = sc.get_backend("cuda")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 8)).astype(np.float32)
    s = b.from_numpy(x)
    lay = Layout.contiguous((3, 8))
    f32 = sc.f32
    w = b.from_numpy(rng.standard_normal(8).astype(np.float32))
    h = lambda st, n: b.to_numpy(st, Layout.contiguous((n,)), f32)  # noqa: E731
    pairs = [
        (b.softmax(s, lay, f32, 1), fd.softmax(b, s, lay, f32, 1)),
        (b.log_softmax(s, lay, f32, 0), fd.log_softmax(b, s, lay, f32, 0)),
        (b.softmax_backward(s, s, (3, 8), f32, 1, True),
         fd.softmax_backward(b, s, s, (3, 8), f32, 1, True)),
        (b.masked_softmax(s, lay, w, Layout((3, 8), (0, 1), 0), f32, 1, 0.5),
         fd.masked_softmax(b, s, lay, w, Layout((3, 8), (0, 1), 0), f32, 1, 0.5)),
        (b.masked_softmax_backward(s, s, (3, 8), f32, 1, 0.5),
         fd.masked_softmax_backward(b, s, s, (3, 8), f32, 1, 0.5)),
        (b.unary_backward("gelu_tanh", s, s, (3, 8), f32),
         fd.unary_backward(b, "gelu_tanh", s, s, (3, 8), f32)),
        (b.fused_elementwise((("exp", 0), ("mul", 2, 1), ("const", 2.0), ("add", 3, 4)),
                             [(s, lay, f32), (s, lay, f32)], (3, 8), f32),
         fd.fused_elementwise(b, (("exp", 0), ("mul", 2, 1), ("const", 2.0), ("add", 3, 4)),
                              [(s, lay, f32), (s, lay, f32)], (3, 8), f32)),
    ]
    pairs += list(zip(b.layer_norm(s, lay, w, w, f32, 1, 1e-5),
                      fd.layer_norm(b, s, lay, w, w, f32, 1, 1e-5)))
    y, mean, rstd = b.layer_norm(s, lay, w, w, f32, 1, 1e-5)
    pairs += [(p, q) for p, q in zip(b.layer_norm_backward(s, s, (3, 8), w, mean, rstd, f32, 1),
                                     fd.layer_norm_backward(b, s, s, (3, 8), w, mean, rstd, f32,
                                                            1))]  # fmt: skip
    y, rstd = b.rms_norm(s, lay, w, f32, 1, 1e-5)
    pairs += list(zip((y, rstd), fd.rms_norm(b, s, lay, w, f32, 1, 1e-5)))
    pairs += list(zip(b.rms_norm_backward(s, s, (3, 8), w, rstd, f32, 1),
                      fd.rms_norm_backward(b, s, s, (3, 8), w, rstd, f32, 1)))
    tgt = b.from_numpy(np.array([1, -100, 7], np.int64))
    loss, lse = b.cross_entropy(s, lay, tgt, f32, -100, 0.1)
    pairs += list(zip((loss, lse), fd.cross_entropy(b, s, lay, tgt, f32, -100, 0.1)))
    pairs.append((b.cross_entropy_backward(loss, s, (3, 8), tgt, lse, f32, -100, 0.1),
                  fd.cross_entropy_backward(b, loss, s, (3, 8), tgt, lse, f32, -100, 0.1)))
    H = 2
    g4 = b.from_numpy(rng.standard_normal(3 * 4 * H).astype(np.float32))
    c = b.from_numpy(rng.standard_normal(3 * H).astype(np.float32))
    fwd = b.lstm_cell_forward(g4, c, f32, 3, H)
    pairs += list(zip(fwd, fd.lstm_cell_forward(b, g4, c, f32, 3, H)))
    pairs += list(zip(b.lstm_cell_backward(c, c, fwd[2], c, fwd[3], f32, 3, H),
                      fd.lstm_cell_backward(b, c, c, fwd[2], c, fwd[3], f32, 3, H)))
    g3 = b.from_numpy(rng.standard_normal(3 * 3 * H).astype(np.float32))
    xl = Layout((3, 3 * H), (3 * H, 1), 0)
    gf = b.gru_cell_forward(g3, xl, g3, c, f32, 3, H)
    pairs += list(zip(gf, fd.gru_cell_forward(b, g3, xl, g3, c, f32, 3, H)))
    pairs += list(zip(b.gru_cell_backward(c, c, g3, gf[1], gf[2], f32, 3, H),
                      fd.gru_cell_backward(b, c, c, g3, gf[1], gf[2], f32, 3, H)))
    for i, (p, q) in enumerate(pairs):
        assert (p is None) == (q is None), f"pair {i}"
        if p is not None:
            ct.close(h(p, p.size), h(q, q.size), what=f"fused kernel pair {i}")


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw_amsgrad", "radam", "rmsprop"])
def test_optimizer_updates_match_cpu(name, ct):
    import shrew_optim as optim

    rng = np.random.default_rng(4)
    init = rng.standard_normal((4, 3)).astype(np.float32)
    grads = [rng.standard_normal((4, 3)).astype(np.float32) for _ in range(3)]
    make = {
        "sgd": lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
        "adam": lambda p: optim.Adam(p, lr=0.01, weight_decay=0.1),
        "adamw_amsgrad": lambda p: optim.AdamW(p, lr=0.01, amsgrad=True),
        "radam": lambda p: optim.RAdam(p, lr=0.01),
        "rmsprop": lambda p: optim.RMSprop(p, lr=0.01, momentum=0.5, centered=True),
    }[name]
    out = []
    for dev in ("cpu", "cuda"):
        p = sc.tensor(init, device=dev).requires_grad_()
        opt = make([p])
        for g in grads:
            store = sc.GradStore()
            store[p] = sc.tensor(g, device=dev)
            opt.step(store)
        out.append(p.numpy())
    ct.close(out[1], out[0], what=name)


def test_mlp_and_transformer_training_step_match_cpu(ct):
    import shrew_nn as nn

    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 2, 4)).astype(np.float32)
    results = []
    for dev in ("cpu", "cuda"):
        sc.manual_seed(7)
        model = nn.Sequential(nn.Linear(4, 4, device=dev), nn.GELU(),
                              nn.TransformerBlock(4, 2, 8, causal=True, device=dev))
        xt = sc.tensor(x, device=dev)
        loss = model(xt).square().mean()
        grads = loss.backward()
        results.append((loss.numpy(), [grads[p].numpy() for p in model.parameters()]))
    ct.close(results[1][0], results[0][0], what="loss")
    for i, (a, b) in enumerate(zip(results[1][1], results[0][1])):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=f"grad {i}")


def test_mixing_devices_names_both():
    a = sc.ones(2, device="cuda")
    with pytest.raises(sc.DeviceError, match="cuda:0 and cpu"):
        a + sc.ones(2)


def test_no_gpu_is_a_clear_device_error():
    """Without the simulator and without a GPU, the first cuda tensor raises DeviceError."""
    if shrew_cuda.is_available():
        pytest.skip("a GPU is present: this checks the message shown without one")
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="0")
    code = ("import shrew_core as sc\ntry:\n    sc.zeros(2, device='cuda')\n"
            "except sc.DeviceError as e:\n    print('DeviceError:', e)\n")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    assert "DeviceError: cuda:0: no CUDA GPU is available" in out.stdout, out.stderr[-2000:]


def test_auto_device_picks_cuda_only_with_a_gpu():
    assert sc.as_device("auto") == sc.Device("cuda" if shrew_cuda.is_available() else "cpu")
