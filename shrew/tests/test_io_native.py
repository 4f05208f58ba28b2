"""The native .shrew format: exact round trips of every dtype and layout, the documented
byte layout (read back by an independent parser), determinism, lazy reads, the original's
version-1 files, and ``save``/``load`` by suffix for tensors, Modules and Executors."""

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
from shrew.exec import RuntimeConfig, load_program
from shrew.io import CheckpointError, load, load_metadata, load_tensors, save, save_tensors
from shrew.io._xxhash import Hasher, xxh64

rng = np.random.default_rng(0)


def sample_tensors() -> dict[str, sc.Tensor]:
    """Every Shrew dtype with extreme values, 0-d, empty and non-contiguous tensors."""
    base = sc.tensor(rng.standard_normal((4, 6)).astype(np.float32))
    return {
        "f32": base,
        "f64": sc.tensor(np.array([math.pi, -0.0, np.inf, np.nan, 5e-324])),
        "f16": sc.tensor(np.array([65504, -6e-8, 1], np.float16)),
        "bf16": sc.tensor(np.array([3.0e38, -1.5, 2**-133], ml_dtypes.bfloat16)),
        "i64": sc.tensor(np.array([2**63 - 1, -(2**63), 2**53 + 1, -1], np.int64)),
        "u32": sc.tensor(np.array([0, 2**32 - 1, 123456789], np.uint32)),
        "u8": sc.tensor(np.array([0, 255, 7], np.uint8)),
        "bool": sc.tensor(np.array([[True, False], [False, True]])),
        "scalar": sc.tensor(2.5),
        "scalar_i64": sc.tensor(2**60 + 3),
        "empty": sc.zeros(0, 3),
        "empty_3d": sc.zeros(2, 0, 4, dtype="i64"),
        "transposed": base.T,
        "strided": base[::2, 1::3],
        "broadcast_view": sc.tensor(np.arange(3.0)).expand(4, 3),
    }


def assert_same(got: dict, expected: dict) -> None:
    assert list(got) == list(expected)
    for k, t in expected.items():
        assert got[k].shape == t.shape, k
        assert got[k].dtype == t.dtype, k
        assert_array_equal(got[k].numpy(), t.numpy(), err_msg=k)


def test_round_trip_every_dtype_and_layout_exactly(tmp_path):
    tensors = sample_tensors()
    save_tensors(tensors, tmp_path / "t.shrew", metadata={"note": "é", "shrew.x": "1"})
    got = load_tensors(tmp_path / "t.shrew")
    assert_same(got, tensors)
    assert got["i64"].numpy()[2] == 2**53 + 1  # never through f64
    assert load_metadata(tmp_path / "t.shrew") == {"note": "é", "shrew.x": "1"}
    assert all(v.numpy().flags.writeable for v in got.values())


def test_numpy_inputs_widen_exactly_and_unsupported_dtypes_raise(tmp_path):
    arrays = {
        "i8": np.array([-128, 127], np.int8),
        "i16": np.array([-32768], np.int16),
        "i32": np.array([-(2**31)], np.int32),
        "u16": np.array([65535], np.uint16),
    }
    save_tensors(arrays, tmp_path / "w.shrew")
    got = load_tensors(tmp_path / "w.shrew")
    for k, a in arrays.items():
        assert got[k].dtype == (sc.u32 if k == "u16" else sc.i64), k
        assert_array_equal(got[k].numpy(), a)
    for bad in (np.array([1], np.uint64), np.array([1j]), np.array(["s"])):
        with pytest.raises(CheckpointError, match=f"dtype {bad.dtype}") as info:
            save_tensors({"x": bad}, tmp_path / "bad.shrew")
        assert "bad.shrew" in str(info.value)
    assert not (tmp_path / "bad.shrew").exists()


def test_output_is_byte_deterministic(tmp_path):
    tensors = sample_tensors()
    copies = {k: sc.tensor(v.numpy()) for k, v in tensors.items()}  # same values, new storage
    save_tensors(tensors, tmp_path / "a.shrew", metadata={"b": "2", "a": "1"})
    save_tensors(copies, tmp_path / "b.shrew", metadata={"a": "1", "b": "2"})
    assert (tmp_path / "a.shrew").read_bytes() == (tmp_path / "b.shrew").read_bytes()


# -- the documented layout, read by an independent parser --------------------------------
def reference_xxh64(data: bytes) -> int:
    """XXH64 (seed 0) straight from the xxHash spec, in plain Python."""
    m = (1 << 64) - 1
    p1, p2, p3 = 0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9
    p4, p5 = 0x85EBCA77C2B2AE63, 0x27D4EB2F165667C5

    def rotl(x, r):
        return ((x << r) | (x >> (64 - r))) & m

    def rnd(acc, lane):
        return rotl((acc + lane * p2) & m, 31) * p1 & m

    n, i = len(data), 0
    if n >= 32:
        v = [(p1 + p2) & m, p2, 0, -p1 & m]
        while i + 32 <= n:
            for j in range(4):
                v[j] = rnd(v[j], int.from_bytes(data[i + 8 * j : i + 8 * j + 8], "little"))
            i += 32
        h = (rotl(v[0], 1) + rotl(v[1], 7) + rotl(v[2], 12) + rotl(v[3], 18)) & m
        for x in v:
            h = ((h ^ rnd(0, x)) * p1 + p4) & m
    else:
        h = p5
    h = (h + n) & m
    while i + 8 <= n:
        h = (rotl(h ^ rnd(0, int.from_bytes(data[i : i + 8], "little")), 27) * p1 + p4) & m
        i += 8
    if i + 4 <= n:
        h = (rotl(h ^ (int.from_bytes(data[i : i + 4], "little") * p1 & m), 23) * p2 + p3) & m
        i += 4
    while i < n:
        h = rotl(h ^ (data[i] * p5 & m), 11) * p1 & m
        i += 1
    for shift, prime in ((33, p2), (29, p3)):
        h = (h ^ (h >> shift)) * prime & m
    return h ^ (h >> 32)


def test_xxh64_matches_the_spec_and_known_vectors():
    assert xxh64(b"") == 0xEF46DB3751D8E999
    assert xxh64(b"abc") == 0x44BC2CF5AD770999
    assert xxh64(b"Nobody inspects the spammish repetition") == 0xFBCEA83C8A378BF1
    data = rng.integers(0, 256, 300, dtype=np.uint8).tobytes()
    for n in (0, 1, 3, 4, 7, 8, 31, 32, 33, 63, 64, 100, 300):
        assert xxh64(data[:n]) == reference_xxh64(data[:n]), n
    h = Hasher()
    for a, b in ((0, 5), (5, 40), (40, 41), (41, 300)):  # streaming across odd pieces
        h.update(data[a:b])
    assert h.digest() == reference_xxh64(data)


DTYPE_NAMES = {0: "float32", 1: "float64", 2: "uint8", 3: "uint32", 4: "int64", 5: "float16",
               6: "bfloat16", 7: "bool"}  # fmt: skip


def parse_documented_layout(raw: bytes) -> tuple[dict, dict]:
    """The byte table of shrew/io/native.py's docstring, followed literally."""
    magic, version, h, d, t, m, checksum = struct.unpack_from("<4sIQQIIQ", raw, 0)
    assert (magic, version) == (b"SHRW", 3)
    assert raw[40:48] == bytes(8) and h % 64 == 0 and len(raw) == h + d
    assert reference_xxh64(raw[:32] + bytes(8) + raw[40:h]) == checksum
    pos, meta, tensors = 48, {}, {}
    for _ in range(m):
        (n,) = struct.unpack_from("<I", raw, pos)
        key = raw[pos + 4 : pos + 4 + n].decode()
        pos += 4 + n
        (n,) = struct.unpack_from("<I", raw, pos)
        meta[key] = raw[pos + 4 : pos + 4 + n].decode()
        pos += 4 + n
    for _ in range(t):
        (n,) = struct.unpack_from("<I", raw, pos)
        name = raw[pos + 4 : pos + 4 + n].decode()
        pos += 4 + n
        code, ndim = raw[pos], raw[pos + 1]
        assert raw[pos + 2 : pos + 8] == bytes(6)
        (data_sum,) = struct.unpack_from("<Q", raw, pos + 8)
        dims = struct.unpack_from(f"<{ndim}Q", raw, pos + 16)
        offset, nbytes = struct.unpack_from("<QQ", raw, pos + 16 + 8 * ndim)
        pos += 32 + 8 * ndim
        assert offset % 64 == 0 and (h + offset) % 64 == 0
        body = raw[h + offset : h + offset + nbytes]
        assert reference_xxh64(body) == data_sum, name
        dtype = ml_dtypes.bfloat16 if code == 6 else np.dtype(DTYPE_NAMES[code])
        tensors[name] = np.frombuffer(body, dtype).reshape(dims)
    assert raw[pos:h] == bytes(h - pos)
    return tensors, meta


def test_files_follow_the_documented_byte_layout(tmp_path):
    tensors = sample_tensors()
    save_tensors(tensors, tmp_path / "t.shrew", metadata={"k": "v"})
    parsed, meta = parse_documented_layout((tmp_path / "t.shrew").read_bytes())
    assert meta == {"k": "v"}
    assert list(parsed) == list(tensors)
    for k, t in tensors.items():
        assert parsed[k].shape == t.shape and parsed[k].dtype == t.dtype.np_dtype, k
        assert_array_equal(parsed[k], t.numpy(), err_msg=k)


def test_names_reads_only_those_tensors(tmp_path):
    path = tmp_path / "t.shrew"
    save_tensors({"a": sc.ones(1000), "b": sc.arange(10), "c": sc.zeros(5)}, path)
    raw = bytearray(path.read_bytes())
    raw[-200] ^= 0xFF  # corrupt a's data: reading b and c must not touch it
    path.write_bytes(bytes(raw))
    got = load_tensors(path, names=["c", "b"])
    assert list(got) == ["c", "b"]
    assert_array_equal(got["b"].numpy(), np.arange(10))
    with pytest.raises(CheckpointError, match="checksum mismatch in tensor 'a'"):
        load_tensors(path)
    with pytest.raises(CheckpointError, match=r"no tensor\(s\) \['zz'\]"):
        load_tensors(path, names=["zz"])


def test_device_argument_places_the_tensors(tmp_path, device):
    save_tensors({"a": sc.ones(3)}, tmp_path / "t.shrew")
    got = load_tensors(tmp_path / "t.shrew", device=device)["a"]
    assert got.device == sc.as_device(device)


# -- the original's version 1 ----------------------------------------------------------
V1_CODES = {"float32": 0, "float64": 1, "uint8": 2, "uint32": 3, "int64": 4, "float16": 5,
            "bfloat16": 6}  # fmt: skip


def write_v1(path, arrays: dict[str, np.ndarray]) -> None:
    """An independent writer of the spec's version-1 byte table (runtime.md §10)."""
    out = b"SHRW" + struct.pack("<II", 1, len(arrays))
    for key, a in arrays.items():
        k = key.encode()
        out += struct.pack("<I", len(k)) + k + struct.pack("<BI", V1_CODES[a.dtype.name], a.ndim)
        out += struct.pack(f"<{a.ndim}I", *a.shape) + struct.pack("<Q", a.nbytes)
        out += np.ascontiguousarray(a).tobytes()
    path.write_bytes(out)


def test_reads_the_originals_version_1_files(tmp_path):
    arrays = {
        "forward/w": rng.standard_normal((3, 4)).astype(np.float32),
        "forward/b": np.array([1.5, 2.5]),
        "ids": np.array([2**62, -3], np.int64),
        "half": np.array([1, 2], np.float16),
        "bf": np.array([0.5], ml_dtypes.bfloat16),
        "bytes": np.array([1, 255], np.uint8),
        "u": np.array([7], np.uint32),
        "scalar": np.array(4.0, np.float32),
        "empty": np.zeros((0, 2), np.float32),
    }
    write_v1(tmp_path / "old.shrew", arrays)
    got = load_tensors(tmp_path / "old.shrew")
    assert list(got) == list(arrays)
    for k, a in arrays.items():
        assert got[k].shape == a.shape and got[k].dtype.np_dtype == a.dtype, k
        assert_array_equal(got[k].numpy(), a, err_msg=k)
    assert list(load_tensors(tmp_path / "old.shrew", names=["ids"])) == ["ids"]
    assert load_metadata(tmp_path / "old.shrew") == {}
    # the seed's load(path, executor): an executor's graph/param keys load into it
    ex = load_program("""
@graph forward {
    input x: Tensor<[2, 3], f32>;
    param w: Tensor<[3, 4], f32> { init: "zeros"; };
    node y { op: matmul(x, w); };
    output y;
}""", RuntimeConfig(seed=0))  # fmt: skip
    write_v1(tmp_path / "exec.shrew", {"forward/w": arrays["forward/w"]})
    load(tmp_path / "exec.shrew", ex)
    assert_array_equal(ex.state_dict()["forward/w"], arrays["forward/w"])


# -- save / load by suffix --------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".shrew", ".safetensors"])
def test_save_and_load_a_module_by_suffix(tmp_path, suffix):
    sc.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    model(sc.randn(5, 3))  # updates BatchNorm's running stats and num_batches_tracked
    save(model, tmp_path / f"m{suffix}")
    sc.manual_seed(1)
    other = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    tensors = load(tmp_path / f"m{suffix}", other)
    assert set(tensors) == set(model.state_dict())
    for k, v in model.state_dict().items():
        assert other.state_dict()[k].dtype == v.dtype, k
        assert_array_equal(other.state_dict()[k].numpy(), v.numpy(), err_msg=k)
    x = sc.randn(2, 3)
    assert_array_equal(other.eval()(x).numpy(), model.eval()(x).numpy())


def test_save_an_executor_and_a_mapping(tmp_path):
    ex = load_program("""
@graph g {
    input x: Tensor<[1, 2], f32>;
    param w: Tensor<[2, 2], f32> { init: "normal(0, 1)"; };
    node y { op: matmul(x, w); };
    output y;
}""", RuntimeConfig(seed=3))  # fmt: skip
    save(ex, tmp_path / "e.shrew")
    assert list(load(tmp_path / "e.shrew")) == ["g/w"]
    save({"a": np.arange(3)}, tmp_path / "plain.safetensors")
    assert load(tmp_path / "plain.safetensors")["a"].dtype == sc.i64
    with pytest.raises(CheckpointError, match=r"unknown suffix '\.pt'"):
        save({"a": sc.ones(1)}, tmp_path / "x.pt")
    with pytest.raises(CheckpointError, match="cannot save a int"):
        save(3, tmp_path / "x.shrew")
    assert shrew.io.load_metadata(tmp_path / "plain.safetensors") == {}


@pytest.mark.parametrize("use_mmap", [True, False])
def test_loaded_tensors_are_writable_without_touching_the_file(tmp_path, use_mmap):
    path = tmp_path / "t.shrew"
    save_tensors({"w": sc.zeros(4), "e": sc.zeros(0)}, path)
    before = path.read_bytes()
    got = load_tensors(path, mmap=use_mmap)
    got["w"].numpy()[:] = 7.0  # in place, as an optimizer step would
    assert_array_equal(got["w"].numpy(), np.full(4, 7.0, np.float32))
    assert path.read_bytes() == before
    assert_array_equal(load_tensors(path, mmap=use_mmap)["w"].numpy(), np.zeros(4, np.float32))


@pytest.mark.parametrize("use_mmap", [True, False])
def test_verify_false_skips_only_the_data_checksums(tmp_path, use_mmap):
    path = tmp_path / "t.shrew"
    save_tensors({"w": sc.zeros(4)}, path)
    raw = bytearray(path.read_bytes())
    raw[-1] = 0x40  # w[3] becomes 2.0
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="checksum mismatch in tensor 'w'"):
        load_tensors(path, mmap=use_mmap)
    got = load_tensors(path, verify=False, mmap=use_mmap)["w"].numpy()
    assert_array_equal(got, np.array([0, 0, 0, 2], np.float32))
    raw[60] ^= 1  # the header checksum is always checked
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="checksum mismatch in the header"):
        load_tensors(path, verify=False, mmap=use_mmap)


def test_an_empty_mapping_round_trips(tmp_path):
    save_tensors({}, tmp_path / "e.shrew", metadata={"only": "metadata"})
    assert load_tensors(tmp_path / "e.shrew") == {}
    assert load_metadata(tmp_path / "e.shrew") == {"only": "metadata"}
    assert len((tmp_path / "e.shrew").read_bytes()) % 64 == 0
