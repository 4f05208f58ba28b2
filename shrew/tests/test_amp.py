"""shrew.amp: autocast op dtypes (against torch.autocast where torch's CPU lists agree, and
our stricter f32 list where they do not), GradScaler step by step against
torch.amp.GradScaler, and MixedPrecisionTrainer on sklearn's digits (bf16 within 2 points
of f32 accuracy)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import shrew_core as sc
import shrew_nn as nn
import shrew_nn.functional as F
import shrew_optim as optim
from shrew.amp import (
    AmpError,
    GradScaler,
    LossScaleConfig,
    MixedPrecisionTrainer,
    autocast,
    get_autocast_dtype,
    is_autocast_enabled,
)
from shrew_core import GradStore
from shrew_data import load_digits, train_test_split

torch = pytest.importorskip("torch")
TF = torch.nn.functional

LOW = {"bf16": (sc.bf16, torch.bfloat16), "f16": (sc.f16, torch.float16)}


def pair(*shape, kind="randn"):
    a = np.random.default_rng(sum(shape)).standard_normal(shape).astype(np.float32)
    if kind == "prob":
        a = 1 / (1 + np.exp(-a))
    return sc.tensor(a), torch.tensor(a)


# ------------------------------------------------------------------------------ autocast
@pytest.mark.parametrize("low", ["bf16", "f16"])
def test_autocast_dtypes_agree_with_torch_where_its_cpu_lists_do(low):
    dtype, tdtype = LOW[low]
    (x, tx), (w, tw), (tg, ttg) = pair(4, 8), pair(3, 8), pair(4, 3)
    (img, timg), (k, tk) = pair(1, 2, 5, 5), pair(3, 2, 3, 3)
    cls, tcls = sc.tensor([0, 2, 1, 1]), torch.tensor([0, 2, 1, 1])
    ours = {}
    with autocast(dtype=dtype):
        y = F.linear(x, w)
        ours["linear"] = y
        ours["matmul"] = x @ w.t()
        ours["bmm"] = sc.bmm(x.unsqueeze(0), w.t().unsqueeze(0))
        ours["conv2d"] = F.conv2d(img, k)
        ours["conv1d"] = F.conv1d(img[:, :, 0], k[:, :, 0])
        ours["prod"] = y.prod()
        ours["relu"] = F.relu(y)
        ours["mse_loss"] = F.mse_loss(y, tg.to(dtype))
        ours["l1_loss"] = F.l1_loss(y, tg.to(dtype))
        ours["smooth_l1_loss"] = F.smooth_l1_loss(y, tg.to(dtype))
        ours["huber_loss"] = F.huber_loss(y, tg.to(dtype))
        ours["bce_with_logits"] = F.binary_cross_entropy_with_logits(y, sc.sigmoid(tg).to(dtype))
        ours["bce"] = F.binary_cross_entropy(F.sigmoid(y), sc.sigmoid(tg).to(dtype))
        ours["cross_entropy"] = F.cross_entropy(y, cls)
        ours["nll_loss"] = F.nll_loss(y, cls)
        ours["f64_linear"] = F.linear(x.to("f64"), w.to("f64"))
    with torch.autocast("cpu", dtype=tdtype):
        ty = TF.linear(tx, tw)
        ref = {
            "linear": ty, "matmul": tx @ tw.t(), "bmm": torch.bmm(tx[None], tw.t()[None]),
            "conv2d": TF.conv2d(timg, tk), "conv1d": TF.conv1d(timg[:, :, 0], tk[:, :, 0]),
            "prod": ty.prod(), "relu": torch.relu(ty),
            "mse_loss": TF.mse_loss(ty, ttg.to(tdtype)), "l1_loss": TF.l1_loss(ty, ttg.to(tdtype)),
            "smooth_l1_loss": TF.smooth_l1_loss(ty, ttg.to(tdtype)),
            "huber_loss": TF.huber_loss(ty, ttg.to(tdtype)),
            "bce_with_logits": TF.binary_cross_entropy_with_logits(ty, ttg.sigmoid().to(tdtype)),
            "bce": TF.binary_cross_entropy(ty.sigmoid(), ttg.sigmoid().to(tdtype)),
            "cross_entropy": TF.cross_entropy(ty, tcls), "nll_loss": TF.nll_loss(ty, tcls),
            "f64_linear": TF.linear(tx.double(), tw.double()),
        }  # fmt: skip
    for name, t in ours.items():
        assert str(t.dtype) == str(ref[name].dtype).removeprefix("torch."), name
    np.testing.assert_allclose(ours["linear"].to("f32").numpy(), ref["linear"].float().numpy(),
                               rtol=2e-2, atol=2e-2)  # fmt: skip


@pytest.mark.parametrize("low", ["bf16", "f16"])
def test_autocast_runs_precision_sensitive_ops_in_f32(low):
    """Stricter than torch's CPU list (which keeps these in bf16): DESIGN.md §8."""
    dtype = LOW[low][0]
    x = sc.randn(4, 6)
    with autocast(dtype):
        h = nn.Linear(6, 6)(x)
        assert h.dtype == dtype
        f32_ops = {
            "softmax": F.softmax(h, -1), "log_softmax": F.log_softmax(h, -1),
            "layer_norm": F.layer_norm(h, (6,)), "rms_norm": F.rms_norm(h, (6,)),
            "group_norm": F.group_norm(h.reshape(4, 6, 1), 3),
            "batch_norm": F.batch_norm(h, None, None, training=True),
            "sum": h.sum(), "mean": h.mean(1), "var": h.var(), "std": h.std(0),
            "norm": h.norm(), "cumsum": h.cumsum(1), "logsumexp": h.logsumexp(1),
        }  # fmt: skip
        for name, t in f32_ops.items():
            assert t.dtype == sc.f32, name
        assert (h + 1.0).dtype == dtype and h.amax().dtype == dtype  # not on either list
        assert h.to("f64").sum().dtype == sc.f64  # f64 is never cast
    assert get_autocast_dtype() is None
    assert (x.sum().dtype, F.linear(x, sc.randn(2, 6)).dtype) == (sc.f32, sc.f32)


def test_autocast_gradients_are_f32_and_close_to_f32_training():
    sc.manual_seed(0)
    layer = nn.Linear(8, 4)
    x, y = sc.randn(16, 8), sc.tensor(np.arange(16) % 4)
    with autocast(sc.bf16):
        loss = F.cross_entropy(layer(x), y)
        grads = loss.backward()  # backward inside the block: the walk runs with autocast off
    full = F.cross_entropy(layer(x), y).backward()
    for p in layer.parameters():
        assert grads[p].dtype == sc.f32
        np.testing.assert_allclose(grads[p].numpy(), full[p].numpy(), rtol=0.05, atol=5e-3)


def test_autocast_nesting_decorator_threads_and_errors():
    assert not is_autocast_enabled()
    with autocast(sc.f16):
        with autocast(enabled=False):
            assert get_autocast_dtype() is None
        with autocast("bf16"):
            assert get_autocast_dtype() == sc.bf16
        assert get_autocast_dtype() == sc.f16
        seen = []
        t = threading.Thread(target=lambda: seen.append(get_autocast_dtype()))
        t.start()
        t.join()
        assert seen == [None]  # thread-local: other threads are unaffected

    @autocast(dtype=sc.bf16)
    def run(a, b):
        return a @ b

    assert run(sc.randn(2, 2), sc.randn(2, 2)).dtype == sc.bf16
    with pytest.raises(ValueError, match="dtype must be f16 or bf16"):
        autocast(sc.f32)


# ------------------------------------------------------------------------------ GradScaler
def test_grad_scaler_matches_torch_step_by_step():
    init = np.array([1.0, -2.0, 0.5], np.float32)
    raw = [[0.1, 0.2, -0.3], [0.5, 0.1, 0.0], [1.0, 2.0, 3.0], [np.inf, 0.0, 0.0],
           [0.2, np.nan, 0.1], [0.3, 0.3, 0.3], [0.1, -0.1, 0.2], [2.0, 1.0, 0.5],
           [0.0, 0.0, -np.inf], [0.25, 0.5, 0.75]]  # fmt: skip
    p = sc.tensor(init).requires_grad_()
    tp = torch.tensor(init, requires_grad=True)
    ours = GradScaler(init_scale=1024.0, growth_interval=3)
    ref = torch.amp.GradScaler("cpu", init_scale=1024.0, growth_interval=3)
    opt, topt = optim.SGD([p], lr=0.1), torch.optim.SGD([tp], lr=0.1)
    for k, g in enumerate(raw):
        ref.scale(torch.tensor(1.0))  # torch initialises its scale lazily, here
        scaled = np.asarray(g, np.float32) * np.float32(ours.get_scale())
        grads = GradStore()
        grads[p] = sc.tensor(scaled)
        tp.grad = torch.tensor(scaled)
        ours.step(opt, grads)
        ref.step(topt)
        ours.update()
        ref.update()
        assert ours.get_scale() == ref.get_scale(), f"step {k}"
        assert ours.last_step_skipped == (not np.isfinite(g).all())
        np.testing.assert_array_equal(p.numpy(), tp.detach().numpy(), err_msg=f"step {k}")
        assert ours.state_dict() == pytest.approx(ref.state_dict()), f"step {k}"


def test_grad_scaler_defaults_growth_backoff_and_f16_overflow():
    s = GradScaler(growth_interval=2)
    assert s.get_scale() == 65536.0 and s.get_backoff_factor() == 0.5
    assert s.get_growth_factor() == 2.0 and s.get_growth_interval() == 2
    p = sc.zeros(2, dtype="f16").requires_grad_()
    opt = optim.SGD([p], lr=1.0)

    def step(values):
        g = GradStore()
        g[p] = sc.tensor(values, dtype="f16")
        s.step(opt, g)
        s.update()

    step([1.0, 2.0])
    assert s.get_scale() == 65536.0  # one good step of two
    step([1.0, 2.0])
    assert s.get_scale() == 131072.0  # grown after growth_interval good steps
    step([60000.0, float("inf")])  # f16 overflow: skipped, backed off, tracker reset
    assert s.get_scale() == 65536.0 and s.last_step_skipped
    assert s.state_dict()["_growth_tracker"] == 0


def test_grad_scaler_call_order_errors_and_disabled():
    s = GradScaler()
    p = sc.zeros(1).requires_grad_()
    opt = optim.SGD([p], lr=0.1)
    g = GradStore()
    g[p] = sc.tensor([65536.0])
    assert s.scale(sc.tensor(2.0)).item() == 131072.0
    assert s.unscale_(opt, g) is g and g[p].tolist() == [1.0]  # in place: entries replaced
    with pytest.raises(AmpError, match="unscale_\\(\\) has already been called"):
        s.unscale_(opt, g)
    s.step(opt, g)  # uses the unscaled gradients, does not unscale again
    np.testing.assert_allclose(p.numpy(), [-0.1], rtol=1e-6)
    with pytest.raises(AmpError, match="step\\(\\) has already been called"):
        s.step(opt, g)
    s.update()
    with pytest.raises(AmpError, match="No inf checks were recorded"):
        s.update()
    s.update(new_scale=8.0)
    assert s.get_scale() == 8.0
    off = GradScaler(enabled=False)
    loss = sc.tensor(3.0)
    assert off.scale(loss) is loss and off.get_scale() == 1.0 and off.state_dict() == {}
    with pytest.raises(ValueError, match="backoff factor"):
        GradScaler(backoff_factor=1.5)
    restored = GradScaler()
    restored.load_state_dict(s.state_dict())
    assert restored.state_dict() == s.state_dict()


# ------------------------------------------------------------------------------ trainer
def digits_split():
    data = load_digits(images=False)
    return train_test_split(data, test_size=0.25, seed=0)


def train_digits(compute_dtype, epochs=6):
    train, test = digits_split()
    x_tr, y_tr = (np.stack(a) for a in zip(*[train[i] for i in range(len(train))]))
    x_te, y_te = (np.stack(a) for a in zip(*[test[i] for i in range(len(test))]))
    sc.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    trainer = MixedPrecisionTrainer(model, optim.Adam(model.parameters(), lr=3e-3), compute_dtype)
    order = np.random.default_rng(0)
    logs = []
    for _ in range(epochs):
        perm = order.permutation(len(x_tr))
        for i in range(0, len(perm), 64):
            idx = perm[i : i + 64]
            logs.append(trainer.train_step(sc.tensor(x_tr[idx]), sc.tensor(y_tr[idx]),
                                           F.cross_entropy))  # fmt: skip
    with sc.no_grad():
        pred = model(sc.tensor(x_te)).argmax(-1).numpy()
    return float((pred == y_te).mean()), logs, model


def test_mixed_precision_digits_bf16_within_two_points_of_f32():
    acc32, _, _ = train_digits(sc.f32)
    acc16, logs, _ = train_digits(sc.bf16)
    assert acc32 > 0.9, acc32
    assert abs(acc16 - acc32) <= 0.02, (acc16, acc32)
    last = logs[-1]
    assert set(last) == {"loss", "skipped", "loss_scale", "total_skipped", "compute_dtype"}
    assert last["compute_dtype"] == sc.bf16 and last["loss_scale"] == 65536.0
    assert last["total_skipped"] == 0 and isinstance(last["loss"], float)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_mixed_precision_trainer_really_computes_low_and_skips_inf_steps():
    sc.manual_seed(1)
    model = nn.Linear(4, 2)
    seen = []

    def loss_fn(out, y):
        seen.append(out.dtype)
        return F.mse_loss(out, y) * (float("inf") if len(seen) == 2 else 1.0)

    config = LossScaleConfig(init_scale=256.0, scale_backoff_factor=4.0)
    trainer = MixedPrecisionTrainer(model, optim.SGD(model.parameters(), lr=0.1), "f16", config)
    x, y = sc.randn(3, 4), sc.randn(3, 2)
    first = trainer.train_step(x, y, loss_fn)
    before = model.weight.numpy().copy()
    second = trainer.train_step(x, y, loss_fn)
    assert seen == [sc.f16, sc.f16]  # the f32 model's forward ran in f16
    assert model.weight.dtype == sc.f32
    assert not first["skipped"] and second["skipped"] and second["total_skipped"] == 1
    assert second["loss_scale"] == 64.0  # 256 / scale_backoff_factor
    np.testing.assert_array_equal(model.weight.numpy(), before)  # the step was skipped
    with pytest.raises(TypeError, match="loss_scale must be"):
        MixedPrecisionTrainer(model, None, "bf16", loss_scale=3)
