"""Malformed files: every fault is a CheckpointError naming the file and the fault (a table,
then fuzzed headers), nothing is unpickled, no forged length allocates, and a process killed
mid-save leaves the previous file intact."""

from __future__ import annotations

import glob
import os
import pickle
import signal
import struct
import subprocess
import sys
import textwrap
import time
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import shrew_core as sc
import shrew_nn as nn
from shrew.io import (
    CheckpointError,
    CheckpointNotFoundError,
    load,
    load_checkpoint,
    load_safetensors,
    load_tensors,
    save_safetensors,
    save_tensors,
)
from shrew.io._xxhash import xxh64

H_AT, D_AT, T_AT, SUM_AT = 8, 16, 24, 32  # fixed-header fields (native.py's byte table)


def valid_file(tmp_path, tensors=None) -> bytes:
    tensors = tensors or {"a": sc.arange(6, dtype="f32").reshape(2, 3), "b": sc.tensor([1, 2])}
    save_tensors(tensors, tmp_path / "ok.shrew", metadata={"k": "v"})
    return (tmp_path / "ok.shrew").read_bytes()


def rehash(raw: bytes) -> bytes:
    """``raw`` with its header checksum recomputed, so forged fields reach the validators."""
    out = bytearray(raw)
    (h,) = struct.unpack_from("<Q", out, H_AT)
    h = min(h, len(out))
    struct.pack_into("<Q", out, SUM_AT, 0)
    struct.pack_into("<Q", out, SUM_AT, xxh64(bytes(out[:h])))
    return bytes(out)


def entry_pos(raw: bytes, name: str) -> int:
    """Offset of the byte after ``name`` in the tensor table (its dtype code)."""
    key = struct.pack("<I", len(name)) + name.encode()
    return raw.index(key, 48) + len(key)


def put(raw: bytes, fmt: str, at: int, *values) -> bytes:
    out = bytearray(raw)
    struct.pack_into(fmt, out, at, *values)
    return bytes(out)


def field_of(raw: bytes, name: str, field: str) -> int:
    """Offset of a tensor entry's field: dtype, ndim, dims, offset, nbytes."""
    at = entry_pos(raw, name)
    ndim = raw[at + 1]
    return {"dtype": at, "ndim": at + 1, "dims": at + 16, "offset": at + 16 + 8 * ndim,
            "nbytes": at + 24 + 8 * ndim}[field]  # fmt: skip


def v1(body: bytes, count: int = 1) -> bytes:
    return b"SHRW" + struct.pack("<II", 1, count) + body


def v1_tensor(name=b"w", code=0, dims=(2,), nbytes=8, data=bytes(8)) -> bytes:
    out = struct.pack("<I", len(name)) + name + struct.pack("<BI", code, len(dims))
    return out + struct.pack(f"<{len(dims)}I", *dims) + struct.pack("<Q", nbytes) + data


def data_start(raw: bytes) -> int:
    return struct.unpack_from("<Q", raw, H_AT)[0]


MALFORMED = {
    "empty": (lambda ok: b"", "truncated"),
    "three bytes": (lambda ok: b"SHR", "truncated"),
    "wrong magic": (lambda ok: b"ABCD" + ok[4:], r"wrong magic b'ABCD'"),
    "unknown version": (lambda ok: put(ok, "<I", 4, 9), "unsupported .shrew version 9"),
    "cut inside the data": (lambda ok: ok[:-5], "truncated: the header declares"),
    "cut inside the header": (lambda ok: ok[:60], "truncated or forged"),
    "trailing bytes": (lambda ok: ok + b"\0", "trailing bytes"),
    "forged huge header size": (lambda ok: put(ok, "<Q", H_AT, 1 << 62), "truncated or forged"),
    "forged huge data size": (lambda ok: put(ok, "<Q", D_AT, 1 << 62), "truncated"),
    "header size not aligned": (lambda ok: rehash(put(ok, "<Q", H_AT, 100)), "multiple of 64"),
    "header checksum": (lambda ok: put(ok, "<B", 49, ok[49] ^ 1), "checksum mismatch in the he"),
    "data checksum": (lambda ok: ok[:-1] + bytes([ok[-1] ^ 0x10]), "checksum mismatch in tensor"),
    "huge tensor count": (lambda ok: rehash(put(ok, "<I", T_AT, 2**32 - 1)),
                          "4294967295 tensors and 1 metadata entries cannot fit"),
    "huge name length": (lambda ok: rehash(put(ok, "<I", entry_pos(ok, "a") - 5, 2**32 - 1)),
                         "declares 4294967295 bytes"),
    "name not utf-8": (lambda ok: rehash(ok.replace(b"\x01\x00\x00\x00a", b"\x01\x00\x00\x00\xff",
                                                    1)), "not valid UTF-8"),
    "duplicate names": (lambda ok: rehash(ok.replace(b"\x01\x00\x00\x00b", b"\x01\x00\x00\x00a")),
                        "'a' appears twice"),
    "unknown dtype": (lambda ok: rehash(put(ok, "<B", field_of(ok, "a", "dtype"), 99)),
                      "unknown dtype code 99"),
    "too many dims": (lambda ok: rehash(put(ok, "<B", field_of(ok, "a", "ndim"), 200)),
                      "corrupt entry"),
    "shape and nbytes disagree": (lambda ok: rehash(put(ok, "<Q", field_of(ok, "a", "dims"), 5)),
                                  "do not match shape"),
    "offset past the end": (lambda ok: rehash(put(ok, "<Q", field_of(ok, "b", "offset"), 1 << 40)),
                            "past the end"),
    "offset not aligned": (lambda ok: rehash(put(ok, "<Q", field_of(ok, "b", "offset"), 8)),
                           "not 64-byte aligned"),
    "overlapping tensors": (lambda ok: rehash(put(ok, "<Q", field_of(ok, "b", "offset"), 0)),
                            "'b' and 'a' overlap"),
    "pickle": (lambda ok: pickle.dumps({"w": [1.0, 2.0]}, protocol=4), "Python pickle"),
    "v1 truncated": (lambda ok: v1(v1_tensor()[:-3]), "truncated version-1 file"),
    "v1 count beyond the data": (lambda ok: v1(v1_tensor(), count=5), "truncated version-1"),
    "v1 unknown dtype tag": (lambda ok: v1(v1_tensor(code=9)), "unknown dtype tag: 9"),
    "v1 forged data length": (lambda ok: v1(v1_tensor(dims=(2**31, 2**31), nbytes=2**64 - 4)),
                              "do not match shape"),
    "v1 forged huge tensor": (lambda ok: v1(v1_tensor(dims=(2**30,), nbytes=2**32)),
                              "declares 4294967296 bytes"),
    "v2 unknown section": (lambda ok: b"SHRW" + struct.pack("<I", 2) + b"\x07",
                           "unknown section tag in training checkpoint: 0x07"),
    "v2 no end tag": (lambda ok: b"SHRW" + struct.pack("<IBI", 2, 1, 0),
                      "truncated version-2 file: section tag"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_files_raise_checkpoint_error_naming_the_file(tmp_path, case):
    make, message = MALFORMED[case]
    path = tmp_path / "bad.shrew"
    path.write_bytes(make(valid_file(tmp_path)))
    for reader in (load_tensors, load, lambda p: load_checkpoint(p, model=nn.Linear(1, 1))):
        with pytest.raises(CheckpointError, match=message) as info:
            reader(path)
        assert str(info.value).startswith(str(path) + ": "), str(info.value)


def test_corrupt_bool_bytes_are_rejected(tmp_path):
    raw = bytearray(valid_file(tmp_path, {"m": sc.tensor([True, False])}))
    at = data_start(bytes(raw))
    raw[at] = 2
    checksum_at = entry_pos(bytes(raw), "m") + 8
    struct.pack_into("<Q", raw, checksum_at, xxh64(bytes(raw[at : at + 2])))
    (tmp_path / "b.shrew").write_bytes(rehash(bytes(raw)))
    with pytest.raises(CheckpointError, match="bool bytes other than 0 and 1"):
        load_tensors(tmp_path / "b.shrew")


def test_foreign_formats_are_named_and_never_unpickled(tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(pickle, "loads", lambda *a, **k: pytest.fail("unpickled"))
    monkeypatch.setattr(pickle, "load", lambda *a, **k: pytest.fail("unpickled"))
    torch.save({"w": torch.ones(2)}, tmp_path / "t.pt")
    with open(tmp_path / "o.npy", "wb") as f:
        np.save(f, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    save_safetensors({"a": sc.ones(2)}, tmp_path / "s.safetensors")
    cases = {"t.pt": "zip archive \\(torch.save", "o.npy": "NumPy .npy",
             "s.safetensors": "a safetensors file"}  # fmt: skip
    for name, message in cases.items():
        with pytest.raises(CheckpointError, match=message):
            load_tensors(tmp_path / name)
    for name in ("t.pt", "o.npy"):
        with pytest.raises(CheckpointError, match=f"{name}: not a valid safetensors file"):
            load(tmp_path / name)  # no SHRW magic: read as safetensors, which refuses it
    assert zipfile.is_zipfile(tmp_path / "t.pt")


def test_folders_and_missing_paths(tmp_path):
    for reader in (load_tensors, load_safetensors, load):
        with pytest.raises(CheckpointError, match="is a folder"):
            reader(tmp_path)
        with pytest.raises(FileNotFoundError, match="no such file") as info:
            reader(tmp_path / "missing.shrew")
        assert isinstance(info.value, CheckpointNotFoundError)
        assert "missing.shrew" in str(info.value)


SAFETENSORS_BAD = {
    "pickle": (lambda ok: pickle.dumps([1, 2]), "Python pickle"),
    "forged header length": (lambda ok: struct.pack("<Q", 1 << 60) + ok[8:], "header too large"),
    "truncated": (lambda ok: ok[:-3], "not a valid safetensors file"),
    "not json": (lambda ok: struct.pack("<Q", 4) + b"{{{{", "not a valid safetensors file"),
    "empty": (lambda ok: b"", "not a valid safetensors file"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(SAFETENSORS_BAD))
def test_malformed_safetensors_files(tmp_path, case):
    save_safetensors({"a": sc.ones(3), "b": sc.zeros(2)}, tmp_path / "ok.safetensors")
    make, message = SAFETENSORS_BAD[case]
    path = tmp_path / "bad.safetensors"
    path.write_bytes(make((tmp_path / "ok.safetensors").read_bytes()))
    with pytest.raises(CheckpointError, match=message) as info:
        load_safetensors(path)
    assert str(info.value).startswith(str(path))


# -- fuzzed headers ----------------------------------------------------------------------
FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip


def only_checkpoint_errors(path, expected_names) -> None:
    try:
        got = load_tensors(path)
    except CheckpointError as exc:
        assert str(exc).startswith(str(path)), exc
    else:
        assert list(got) == expected_names


@FUZZ
@given(data=st.data())
def test_fuzzed_headers_give_checkpoint_errors_only(tmp_path, data):
    ok = valid_file(tmp_path)
    h = data_start(ok)
    raw = bytearray(ok)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, h - 1))
        raw[at] = data.draw(st.integers(0, 255))
    forged = bytes(raw)
    if data.draw(st.booleans()):
        forged = rehash(forged)  # get past the checksum to exercise every validator
    if data.draw(st.booleans()):
        forged = forged[: data.draw(st.integers(0, len(forged)))]
    path = tmp_path / "fuzz.shrew"
    path.write_bytes(forged)
    only_checkpoint_errors(path, ["a", "b"])


@FUZZ
@given(fields=st.lists(st.tuples(st.sampled_from([H_AT, D_AT]), st.integers(0, 2**64 - 1)),
                       min_size=1, max_size=2))  # fmt: skip
def test_fuzzed_sizes_never_allocate_what_the_file_lacks(tmp_path, fields):
    raw = valid_file(tmp_path)
    for at, value in fields:
        raw = put(raw, "<Q", at, value)
    path = tmp_path / "fuzz.shrew"
    path.write_bytes(rehash(raw))
    only_checkpoint_errors(path, ["a", "b"])


@FUZZ
@given(body=st.binary(max_size=80), version=st.sampled_from([1, 2]))
def test_fuzzed_original_layouts_give_checkpoint_errors_only(tmp_path, body, version):
    path = tmp_path / "old.shrew"
    path.write_bytes(b"SHRW" + struct.pack("<I", version) + body)
    try:
        load_tensors(path)
    except CheckpointError as exc:
        assert str(exc).startswith(str(path)), exc


# -- a process killed mid-save ------------------------------------------------------------
SAVER = textwrap.dedent("""
    import sys
    import numpy as np
    from shrew.io import save_tensors
    path, i = sys.argv[1], 0
    while True:
        i += 1
        save_tensors({"w": np.full(8 << 20, i, dtype=np.float32)}, path)  # 32 MB
        print(i, flush=True)
""")


def test_a_process_killed_mid_save_leaves_the_previous_file_loadable(tmp_path):
    path = tmp_path / "live.shrew"
    proc = subprocess.Popen([sys.executable, "-c", SAVER, str(path)], stdout=subprocess.PIPE,
                            text=True)  # fmt: skip
    try:
        assert proc.stdout.readline().strip() == "1", "the saver did not start"
        pattern = str(tmp_path / ".live.shrew.*.tmp")
        deadline = time.monotonic() + 30
        while not any(os.path.getsize(p) > 0 for p in glob.glob(pattern)):  # mid-write
            assert time.monotonic() < deadline, "no save in progress was seen"
            time.sleep(0.0005)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    w = load_tensors(path)["w"].numpy()
    assert w.shape == (8 << 20,)
    assert w[0] >= 1 and (w == w[0]).all()  # one whole earlier save
    leftovers = glob.glob(str(tmp_path / "*")) + glob.glob(str(tmp_path / ".*"))
    assert sorted(os.path.basename(p) for p in leftovers if p != str(path)) == sorted(
        os.path.basename(p) for p in glob.glob(pattern)
    )  # only hidden temporaries, which no reader looks at
    assert all(os.path.basename(p).startswith(".live.shrew.") for p in glob.glob(pattern))


@pytest.mark.parametrize("kind", ["file", "path"])
def test_a_failed_write_leaves_the_target_untouched_and_no_temporary(tmp_path, kind):
    from shrew._atomic import atomic_path, atomic_write

    target = tmp_path / "keep.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="boom"):
        if kind == "file":
            with atomic_write(target) as f:
                f.write(b"new, half written")
                raise RuntimeError("boom")
        else:
            with atomic_path(target) as tmp:
                with open(tmp, "wb") as f:
                    f.write(b"new")
                raise RuntimeError("boom")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.bin"]
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as f:
            f.write(b"new")
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.bin"]
