"""Training checkpoints: resuming K+N steps from a checkpoint at K is bit-identical to the
uninterrupted run; the state tree keeps its types; restore errors name the file."""

from __future__ import annotations

import math
import struct

import ml_dtypes
import numpy as np
import pytest
from numpy.testing import assert_array_equal

import shrew
import shrew_core as sc
import shrew_nn as nn
import shrew_optim as so
from shrew.exec import RuntimeConfig, load_program
from shrew.io import CheckpointError, load_checkpoint, save_checkpoint
from shrew_data import DataLoader, TensorDataset

rng = np.random.default_rng(0)
X = rng.standard_normal((40, 6)).astype(np.float32)
Y = rng.integers(0, 3, 40)


def build(seed: int):
    """Model, optimizer, scheduler, loader; ``seed`` sets every initial value, so a resumed
    run starts from different ones unless the checkpoint restores them."""
    sc.manual_seed(seed)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3))
    opt = so.AdamW(model.parameters(), lr=0.05, betas=(0.9, 0.99), weight_decay=0.05)
    sched = so.StepLR(opt, step_size=3, gamma=0.5)
    loader = DataLoader(TensorDataset(X, Y), batch_size=8, shuffle=True)  # seed drawn
    return model, opt, sched, loader


def train(model, opt, sched, loader, steps: int, state: dict, at_step=None) -> None:
    """``steps`` optimizer steps, epoch after epoch (``state`` counts epoch and step);
    ``at_step(k)`` runs after step k, inside the loop (where a checkpoint is taken)."""
    loss_fn = nn.CrossEntropyLoss()
    while steps:
        for xb, yb in loader:
            grads = loss_fn(model(xb), yb).backward()
            opt.step(grads)
            sched.step()
            state["step"] += 1
            steps -= 1
            if at_step is not None:
                at_step(state["step"])
            if not steps:
                return
        state["epoch"] += 1


def params_of(model) -> dict[str, np.ndarray]:
    return {k: np.array(v.numpy()) for k, v in model.state_dict().items()}


# 5 batches per epoch: a checkpoint mid-epoch, and one after an epoch's last batch
@pytest.mark.parametrize("k,n", [(7, 6), (5, 10)])
def test_resume_is_bit_identical_to_the_uninterrupted_run(tmp_path, k, n):
    path = tmp_path / "ckpt.shrew"
    model, opt, sched, loader = build(seed=1)
    progress = {"epoch": 0, "step": 0}

    def checkpoint(step: int) -> None:
        if step == k:
            save_checkpoint(path, model=model, optimizer=opt, scheduler=sched, **progress,
                            loader=loader.state_dict())  # fmt: skip

    train(model, opt, sched, loader, k + n, progress, at_step=checkpoint)
    expected = params_of(model)

    model2, opt2, sched2, loader2 = build(seed=2)
    assert not np.array_equal(params_of(model2)["0.weight"], expected["0.weight"])
    state = load_checkpoint(path, model=model2, optimizer=opt2, scheduler=sched2)
    loader2.load_state_dict(state.pop("loader"))
    # taken inside the loop body: at k=5 epoch 0 has yielded its last batch but not ended
    assert (state["epoch"], state["step"]) == ((k - 1) // 5, k)
    assert set(state) == {"epoch", "step", "rng_state"}
    train(model2, opt2, sched2, loader2, n, state)

    got = params_of(model2)
    assert list(got) == list(expected)
    for key in expected:
        assert_array_equal(got[key], expected[key], err_msg=key)
    assert sched2.get_last_lr() == sched.get_last_lr()
    assert state["step"] == progress["step"] and state["epoch"] == progress["epoch"]


def test_optimizer_and_scheduler_state_round_trip_exactly(tmp_path):
    model, opt, sched, loader = build(seed=3)
    train(model, opt, sched, loader, 4, {"epoch": 0, "step": 0})
    save_checkpoint(tmp_path / "c.shrew", model=model, optimizer=opt, scheduler=sched)
    model2, opt2, sched2, _ = build(seed=4)
    load_checkpoint(tmp_path / "c.shrew", model=model2, optimizer=opt2, scheduler=sched2)
    a, b = opt.state_dict(), opt2.state_dict()
    assert a["param_groups"] == b["param_groups"]
    assert isinstance(b["param_groups"][0]["betas"], tuple)
    assert a["state"].keys() == b["state"].keys()
    for i, st in a["state"].items():
        assert st["step"] == b["state"][i]["step"]
        for name in ("exp_avg", "exp_avg_sq"):
            assert b["state"][i][name].dtype == st[name].dtype
            assert_array_equal(b["state"][i][name].numpy(), st[name].numpy())
    assert sched2.state_dict() == sched.state_dict()


def test_sgd_momentum_and_executor_checkpoint(tmp_path):
    src = """
@graph forward {
    input x: Tensor<[Batch, 3], f32>;
    param w: Tensor<[2, 3], f32> { init: "normal(0, 1)"; };
    node y { op: matmul(x, transpose(w)); };
    output y;
}"""
    ex = load_program(src, RuntimeConfig(seed=0))
    opt = so.SGD(ex.parameters(), lr=0.1, momentum=0.9)
    x = sc.tensor(X[:4, :3])
    for _ in range(2):
        opt.step((ex.run("forward", {"x": x})["y"] ** 2).mean().backward())
    save_checkpoint(tmp_path / "e.shrew", model=ex, optimizer=opt, note="sgd")
    ex2 = load_program(src, RuntimeConfig(seed=9))
    opt2 = so.SGD(ex2.parameters(), lr=0.1, momentum=0.9)
    assert load_checkpoint(tmp_path / "e.shrew", model=ex2, optimizer=opt2)["note"] == "sgd"
    for o in (opt, opt2):
        o.step((ex.run("forward", {"x": x})["y"] ** 2).mean().backward() if o is opt
               else (ex2.run("forward", {"x": x})["y"] ** 2).mean().backward())  # fmt: skip
    assert_array_equal(ex2.state_dict()["forward/w"], ex.state_dict()["forward/w"])


def test_rng_state_is_saved_and_restored(tmp_path):
    model = nn.Linear(2, 2)
    sc.manual_seed(5)
    save_checkpoint(tmp_path / "r.shrew", model=model)
    expected = sc.rand(4).numpy()
    sc.manual_seed(6)
    state = load_checkpoint(tmp_path / "r.shrew", model=model)
    assert_array_equal(sc.rand(4).numpy(), expected)
    assert state["rng_state"]["seed"] == 5


def test_state_tree_keeps_types(tmp_path):
    i32 = np.array([[1, -2]], dtype=np.int32)
    state = {
        "tuple": (1, (2.5, "x")),
        "int_keys": {0: "a", 3: [1, 2]},
        "tuple_keys": {(1, 2): None},
        "shrew.like": 1,
        "floats": [math.inf, -math.inf, 0.1, 1e300],
        "big": 2**100 + 1,
        "array_i32": i32,
        "array_bf16": np.array([1.5, -2.0], dtype=ml_dtypes.bfloat16),
        "np_scalar": np.float32(0.25),
        "tensor": sc.tensor([2**62 + 1, 3]),
        "nested": {"list": [sc.ones(2), {"deep": np.uint8(7)}]},
        "empty": {},
    }
    save_checkpoint(tmp_path / "t.shrew", model=nn.Linear(1, 1), **{"tree": state})
    got = load_checkpoint(tmp_path / "t.shrew", model=nn.Linear(1, 1))["tree"]
    assert got["tuple"] == (1, (2.5, "x"))
    assert got["int_keys"] == {0: "a", 3: [1, 2]}
    assert got["tuple_keys"] == {(1, 2): None}
    assert got["shrew.like"] == 1
    assert got["floats"] == [math.inf, -math.inf, 0.1, 1e300]
    assert got["big"] == 2**100 + 1
    assert got["array_i32"].dtype == np.int32 and got["array_i32"].shape == (1, 2)
    assert_array_equal(got["array_i32"], i32)
    assert got["array_bf16"].dtype == ml_dtypes.bfloat16
    assert_array_equal(got["array_bf16"], state["array_bf16"])
    assert type(got["np_scalar"]) is np.float32 and got["np_scalar"] == 0.25
    assert isinstance(got["tensor"], sc.Tensor) and got["tensor"].dtype == sc.i64
    assert got["tensor"].numpy().tolist() == [2**62 + 1, 3]
    assert_array_equal(got["nested"]["list"][0].numpy(), np.ones(2, np.float32))
    assert type(got["nested"]["list"][1]["deep"]) is np.uint8
    assert got["empty"] == {}
    nan = load_checkpoint(_saved(tmp_path, x=math.nan), model=nn.Linear(1, 1))["x"]
    assert math.isnan(nan)


def _saved(tmp_path, **state):
    path = tmp_path / "s.shrew"
    save_checkpoint(path, model=nn.Linear(1, 1), **state)
    return path


@pytest.mark.parametrize("value,what", [
    (object(), "object"),
    ({1, 2}, "set"),
    (lambda: 0, "function"),
    (np.array([object()], dtype=object), "dtype object"),
    (DataLoader(TensorDataset(X), batch_size=2), "pass its state_dict"),
])  # fmt: skip
def test_unstorable_state_is_an_error_naming_the_key(tmp_path, value, what):
    with pytest.raises(CheckpointError, match=what) as info:
        save_checkpoint(tmp_path / "bad.shrew", model=nn.Linear(1, 1), thing=value)
    assert "bad.shrew" in str(info.value) and "thing" in str(info.value)
    assert not (tmp_path / "bad.shrew").exists()


def test_restore_errors_name_the_file_and_change_nothing(tmp_path):
    path = tmp_path / "m.shrew"
    save_checkpoint(path, model=nn.Linear(2, 3))
    other = nn.Linear(4, 3)
    before = params_of(other)
    with pytest.raises(CheckpointError, match=r"m\.shrew: cannot restore the model"):
        load_checkpoint(path, model=other)
    assert_array_equal(params_of(other)["weight"], before["weight"])
    opt = so.SGD(other.parameters(), lr=0.1)
    with pytest.raises(CheckpointError, match="has no optimizer state"):
        load_checkpoint(path, model=nn.Linear(2, 3), optimizer=opt)
    with pytest.raises(CheckpointError, match="has no scheduler state"):
        load_checkpoint(path, model=nn.Linear(2, 3), scheduler=so.StepLR(opt, 2))
    m = nn.Linear(2, 3)
    save_checkpoint(path, model=m, optimizer=so.Adam(m.parameters()))
    fresh = nn.Linear(2, 3)  # fits the file: only the optimizer type is wrong
    before = params_of(fresh)
    with pytest.raises(CheckpointError, match="holds Adam state, not SGD"):
        load_checkpoint(path, model=fresh, optimizer=so.SGD(fresh.parameters(), lr=0.1))
    assert_array_equal(params_of(fresh)["weight"], before["weight"])


def test_checkpoint_is_native_whatever_the_suffix_and_plain_files_load(tmp_path):
    model = nn.Linear(3, 2)
    save_checkpoint(tmp_path / "c.safetensors", model=model, step=1)
    assert (tmp_path / "c.safetensors").read_bytes()[:4] == b"SHRW"
    assert "shrew.checkpoint" in shrew.io.load_metadata(tmp_path / "c.safetensors")
    shrew.io.save(model, tmp_path / "w.shrew")  # a plain weights file loads as the model
    other = nn.Linear(3, 2)
    assert load_checkpoint(tmp_path / "w.shrew", model=other) == {}
    assert_array_equal(params_of(other)["weight"], params_of(model)["weight"])


def test_reads_the_originals_version_2_training_file(tmp_path):
    w = np.arange(6, dtype=np.float32).reshape(2, 3)

    def text(s: str) -> bytes:
        return struct.pack("<I", len(s)) + s.encode()

    tensors = struct.pack("<I", 1) + text("weight") + struct.pack("<BI2IQ", 0, 2, 2, 3, 24)
    tensors += w.tobytes()
    optim = text("Adam") + struct.pack("<I", 1) + text("lr") + struct.pack("<d", 0.01)
    optim += struct.pack("<I", 1) + text("m.0") + struct.pack("<Q", 2) + struct.pack("<2d", 1, 2)
    progress = struct.pack("<QQdI", 4, 120, 0.5, 2) + struct.pack("<2d", 0.9, 0.5)
    data = b"SHRW" + struct.pack("<I", 2) + b"\x03" + progress + b"\x02" + optim
    data += b"\x01" + tensors + b"\xff"
    (tmp_path / "old.shrew").write_bytes(data)
    model = nn.Linear(3, 2, bias=False)
    state = load_checkpoint(tmp_path / "old.shrew", model=model)
    assert_array_equal(model.weight.numpy(), w)
    assert state["epoch"] == 4 and state["global_step"] == 120 and state["best_loss"] == 0.5
    assert state["loss_history"] == [0.9, 0.5]
    assert state["legacy_optimizer"]["type"] == "Adam"
    assert state["legacy_optimizer"]["scalars"] == {"lr": 0.01}
    assert_array_equal(state["legacy_optimizer"]["buffers"]["m.0"], [1.0, 2.0])
    with pytest.raises(CheckpointError, match="no optimizer state in Shrew's layout"):
        load_checkpoint(tmp_path / "old.shrew", model=model,
                        optimizer=so.Adam(model.parameters()))  # fmt: skip
