"""safetensors interop with the real readers and writers: safetensors.torch files load in
Shrew (every dtype, exact widening, metadata), Shrew's files load in safetensors.torch and
safe_open with equal values, lazy reads, and a torch state_dict loading into shrew_nn."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
import safetensors
import safetensors.torch
import torch
from numpy.testing import assert_allclose, assert_array_equal

import shrew_core as sc
import shrew_nn as nn
from shrew.io import (
    CheckpointError,
    load,
    load_metadata,
    load_safetensors,
    safe_open,
    save_safetensors,
)

F32_TOL = {"rtol": 1e-5, "atol": 1e-6}  # f32 forward passes of torch vs Shrew

# torch dtype -> the Shrew dtype it loads as (exact widening for the ones Shrew lacks)
TORCH_TO_SHREW = {
    torch.float32: sc.f32, torch.float64: sc.f64, torch.float16: sc.f16, torch.bfloat16: sc.bf16,
    torch.int64: sc.i64, torch.uint8: sc.u8, torch.bool: sc.bool_, torch.uint32: sc.u32,
    torch.int8: sc.i64, torch.int16: sc.i64, torch.int32: sc.i64, torch.uint16: sc.u32,
}  # fmt: skip


def torch_tensors() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    out = {}
    for dt in TORCH_TO_SHREW:
        if dt.is_floating_point:
            t = torch.randn(3, 4, generator=g).to(dt)
        elif dt == torch.bool:
            t = torch.rand(3, 4, generator=g) > 0.5
        else:
            info = torch.iinfo(dt)
            t = torch.tensor([info.min, info.max, 0, 1], dtype=dt)
        out[str(dt).removeprefix("torch.")] = t
    out["scalar"] = torch.tensor(1.25)
    out["empty"] = torch.zeros(0, 5)
    return out


def test_files_from_safetensors_torch_load_with_exact_widening(tmp_path):
    tensors = torch_tensors()
    safetensors.torch.save_file(tensors, tmp_path / "t.safetensors", metadata={"who": "torch"})
    got = load_safetensors(tmp_path / "t.safetensors")
    assert set(got) == set(tensors)
    for k, t in tensors.items():
        assert got[k].shape == tuple(t.shape), k
        assert got[k].dtype == TORCH_TO_SHREW.get(t.dtype), k
        want = t.float().numpy() if t.dtype == torch.bfloat16 else t.numpy()
        assert_array_equal(got[k].numpy().astype(want.dtype), want, err_msg=k)
    assert got["int32"].numpy().tolist() == [-(2**31), 2**31 - 1, 0, 1]
    assert got["uint16"].numpy().tolist() == [0, 65535, 0, 1]
    assert load_metadata(tmp_path / "t.safetensors") == {"who": "torch"}


@pytest.mark.parametrize("dtype,name", [
    (torch.uint64, "U64"), (torch.float8_e4m3fn, "F8_E4M3"), (torch.complex64, "C64"),
])  # fmt: skip
def test_dtypes_shrew_cannot_hold_raise_naming_the_dtype(tmp_path, dtype, name):
    safetensors.torch.save_file({"ok": torch.ones(2), "bad": torch.zeros(2, dtype=dtype)},
                                tmp_path / "t.safetensors")  # fmt: skip
    with pytest.raises(CheckpointError, match=f"tensor 'bad' has dtype {name}") as info:
        load_safetensors(tmp_path / "t.safetensors")
    assert "t.safetensors" in str(info.value)
    assert list(load_safetensors(tmp_path / "t.safetensors", names=["ok"])) == ["ok"]


def shrew_tensors() -> dict[str, sc.Tensor]:
    rng = np.random.default_rng(1)
    base = sc.tensor(rng.standard_normal((4, 6)).astype(np.float32))
    return {
        "f32": base,
        "f64": sc.tensor(rng.standard_normal(5)),
        "f16": sc.tensor(np.array([1, -2.5, 65504], np.float16)),
        "bf16": sc.tensor(np.array([1, -2.5, 3e38], ml_dtypes.bfloat16)),
        "i64": sc.tensor(np.array([2**63 - 1, -(2**63), 2**53 + 1])),
        "u32": sc.tensor(np.array([0, 2**32 - 1], np.uint32)),
        "u8": sc.tensor(np.array([0, 255], np.uint8)),
        "bool": sc.tensor([True, False, True]),
        "scalar": sc.tensor(7.0),
        "empty": sc.zeros(2, 0),
        "view": base.T[1::2],  # non-contiguous: its logical values are saved
    }


def test_shrew_files_load_in_safetensors_torch_and_safe_open(tmp_path):
    tensors = shrew_tensors()
    path = tmp_path / "s.safetensors"
    save_safetensors(tensors, path, metadata={"epoch": "3"})
    by_torch = safetensors.torch.load_file(path)
    with safetensors.safe_open(path, framework="pt") as f:
        assert f.metadata() == {"epoch": "3"}
        lazy = {k: f.get_tensor(k) for k in f.keys()}
    assert set(by_torch) == set(lazy) == set(tensors)
    for k, t in tensors.items():
        for got in (by_torch[k], lazy[k]):
            assert tuple(got.shape) == t.shape, k
            if t.dtype == sc.bf16:
                assert got.dtype == torch.bfloat16
                assert_array_equal(got.float().numpy(), t.numpy().astype(np.float32))
            else:
                assert got.numpy().dtype == t.dtype.np_dtype, k
                assert_array_equal(got.numpy(), t.numpy(), err_msg=k)
    back = load_safetensors(path)
    for k, t in tensors.items():
        assert back[k].dtype == t.dtype and back[k].shape == t.shape, k
        assert_array_equal(back[k].numpy(), t.numpy(), err_msg=k)


def test_numpy_dtypes_are_kept_when_saving_and_widened_when_loading(tmp_path):
    a = np.array([-3, 4], np.int32)
    save_safetensors({"a": a}, tmp_path / "n.safetensors")
    assert safetensors.torch.load_file(tmp_path / "n.safetensors")["a"].dtype == torch.int32
    assert load_safetensors(tmp_path / "n.safetensors")["a"].dtype == sc.i64


def test_lazy_reads_only_the_named_tensors(tmp_path):
    path = tmp_path / "big.safetensors"
    save_safetensors({"small": sc.arange(4), "big": sc.zeros(256, 1024)}, path)
    got = load_safetensors(path, names=["small"])
    assert list(got) == ["small"]
    assert_array_equal(got["small"].numpy(), np.arange(4))
    with safe_open(path) as f:
        assert sorted(f.keys()) == ["big", "small"]
        assert f.dtype("big") == "F32"
        assert f.get_tensor("small").dtype == sc.i64
        with pytest.raises(CheckpointError, match="no tensor 'nope'"):
            f.get_tensor("nope")


def test_lazy_load_asks_the_library_for_the_named_tensors_only(tmp_path, monkeypatch):
    path = tmp_path / "big.safetensors"
    save_safetensors({"small": sc.arange(4), "big": sc.zeros(256, 1024)}, path)
    fetched = []
    real_open = safetensors.safe_open

    class Spy:
        def __init__(self, *args, **kwargs):
            self.handle = real_open(*args, **kwargs)

        def __enter__(self):
            self.handle.__enter__()
            return self

        def __exit__(self, *exc):
            return self.handle.__exit__(*exc)

        def get_tensor(self, name):
            fetched.append(name)
            return self.handle.get_tensor(name)

        def __getattr__(self, name):
            return getattr(self.handle, name)

    monkeypatch.setattr(safetensors, "safe_open", Spy)
    assert list(load_safetensors(path, names=["small"])) == ["small"]
    assert fetched == ["small"]


def test_a_torch_state_dict_loads_into_the_equivalent_shrew_module(tmp_path):
    torch.manual_seed(0)
    tm = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                             torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 5),
                             torch.nn.LayerNorm(5))  # fmt: skip
    tm.train()
    tm(torch.randn(8, 3, 8, 8))  # non-trivial running stats and num_batches_tracked
    tm.eval()
    safetensors.torch.save_file(tm.state_dict(), tmp_path / "torch.safetensors")
    sm = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                       nn.Linear(4 * 6 * 6, 5), nn.LayerNorm(5))  # fmt: skip
    load(tmp_path / "torch.safetensors", sm)
    sm.eval()
    x = np.random.default_rng(2).standard_normal((2, 3, 8, 8)).astype(np.float32)
    with torch.no_grad():
        expected = tm(torch.from_numpy(x)).numpy()
    got = sm(sc.tensor(x)).numpy()
    assert got.shape == expected.shape
    assert_allclose(got, expected, **F32_TOL)
    assert int(sm.state_dict()["1.num_batches_tracked"].item()) == 1


def test_a_shrew_module_loads_into_torch(tmp_path):
    sc.manual_seed(0)
    sm = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2))
    save_safetensors(sm.state_dict(), tmp_path / "m.safetensors")
    tm = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2))
    tm.load_state_dict(safetensors.torch.load_file(tmp_path / "m.safetensors"))
    x = np.random.default_rng(3).standard_normal((5, 4)).astype(np.float32)
    with torch.no_grad():
        expected = tm(torch.from_numpy(x)).numpy()
    assert_allclose(sm(sc.tensor(x)).numpy(), expected, **F32_TOL)


def test_bad_arguments_and_files(tmp_path):
    with pytest.raises(CheckpointError, match="metadata must be a dict of str -> str"):
        save_safetensors({"a": sc.ones(1)}, tmp_path / "a.safetensors", metadata={"n": 1})
    with pytest.raises(CheckpointError, match="expected a shrew Tensor or a NumPy array"):
        save_safetensors({"a": [1, 2]}, tmp_path / "a.safetensors")
    assert not (tmp_path / "a.safetensors").exists()
