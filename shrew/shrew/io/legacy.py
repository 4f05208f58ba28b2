"""Reading the original Shrew's ``.shrew`` layouts, version 1 (parameters) and 2 (training).

Both are little-endian and start with ``b"SHRW"`` and a u32 version. A version-1 file then
holds a u32 tensor count and the tensors one after another::

    u32 key length, key (UTF-8; ``graph/param`` for executors)
    u8  dtype: 0 f32, 1 f64, 2 u8, 3 u32, 4 i64, 5 f16, 6 bf16
    u32 ndim, ndim x u32 dims
    u64 data length in bytes, then the raw elements (C order)

A version-2 file is a sequence of tagged sections (u8 tag), in any order, ending with 0xFF:
0x01 the tensors as in version 1 (u32 count, then tensors); 0x02 optimizer state (u32 +
bytes type name; u32 n x (u32 + bytes key, f64 scalar); u32 n x (u32 + bytes key, u64 len,
len x f64 buffer)); 0x03 progress (u64 epoch, u64 global step, f64 best loss, u32 n, n x f64
loss history). The original wrote i64 values through f64, so such files may already hold
rounded integers; they are read as stored. Nothing is trusted before it is checked against
the file size. Writing these layouts is not supported: Shrew writes version 3 (native.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from ._arrays import np_dtype
from ._files import read_exact
from .errors import CheckpointError
from .native import CODE_NAMES, Cursor, as_typed

_V1_CODES = {c: n for c, n in CODE_NAMES.items() if c <= 6}  # version 1 has no bool
_END = 0xFF


@dataclass
class LegacyFile:
    """What a version-1/2 file holds."""

    version: int
    tensors: dict[str, np.ndarray]
    optimizer: dict | None = None  # {"type", "scalars": {k: float}, "buffers": {k: f64 array}}
    progress: dict = field(default_factory=dict)  # epoch, global_step, best_loss, loss_history


def read_legacy(f, size: int, path: str, version: int, names: Iterable[str] | None
                ) -> tuple[dict[str, np.ndarray], dict[str, str]]:  # fmt: skip
    """``(arrays, metadata)`` of a version-1/2 file, like ``native.read_arrays``."""
    tensors = parse_legacy(f, size, path, version).tensors
    if names is None:
        return tensors, {}
    names = [names] if isinstance(names, str) else list(names)
    missing = [n for n in names if n not in tensors]
    if missing:
        raise CheckpointError(path, f"no tensor(s) {missing}; the file has "
                              f"{list(tensors)[:20]}")  # fmt: skip
    return {n: tensors[n] for n in names}, {}


def parse_legacy(f, size: int, path: str, version: int) -> LegacyFile:
    """Parse a whole version-1/2 file (``f`` at offset 0, ``size`` its real size)."""
    raw = bytearray(size)  # the real size: no length from the file is trusted yet
    read_exact(f, memoryview(raw), path, "the file")
    cur = Cursor(raw, 8, path, f"version-{version} file")
    if version == 1:
        out = LegacyFile(1, _tensors(cur))
    else:
        out = LegacyFile(2, {})
        seen: set[int] = set()
        while True:
            (tag,) = cur.unpack("<B", "section tag")
            if tag == _END:
                break
            if tag in seen:
                raise CheckpointError(path, f"section 0x{tag:02X} appears twice")
            seen.add(tag)
            if tag == 0x01:
                out.tensors = _tensors(cur)
            elif tag == 0x02:
                out.optimizer = _optimizer(cur)
            elif tag == 0x03:
                epoch, step, best = cur.unpack("<QQd", "progress section")
                (n,) = cur.unpack("<I", "loss history length")
                history = np.frombuffer(cur.take(8 * n, "loss history"), "<f8").tolist()
                out.progress = {"epoch": epoch, "global_step": step, "best_loss": best,
                                "loss_history": history}  # fmt: skip
            else:
                raise CheckpointError(path, f"unknown section tag in training checkpoint: "
                                      f"0x{tag:02X}")  # fmt: skip
    if cur.pos != size:
        raise CheckpointError(path, f"{size - cur.pos} trailing bytes after the last entry")
    return out


def _tensors(cur: Cursor) -> dict[str, np.ndarray]:
    path = cur.path
    (count,) = cur.unpack("<I", "tensor count")
    out: dict[str, np.ndarray] = {}
    for _ in range(count):
        name = cur.text("tensor name")
        code, ndim = cur.unpack("<BI", f"dtype of tensor {name!r}")
        if code not in _V1_CODES:
            raise CheckpointError(path, f"tensor {name!r}: unknown dtype tag: {code}")
        dtype = np_dtype(_V1_CODES[code])
        if ndim > 64:
            raise CheckpointError(path, f"tensor {name!r}: corrupt entry (ndim {ndim})")
        shape = cur.unpack(f"<{ndim}I", f"shape of tensor {name!r}")
        (nbytes,) = cur.unpack("<Q", f"data length of tensor {name!r}")
        expected = math.prod(shape) * dtype.itemsize
        if nbytes != expected:
            raise CheckpointError(path, f"tensor {name!r}: {nbytes} bytes do not match shape "
                                  f"{tuple(shape)} of {dtype} ({expected} bytes)")  # fmt: skip
        if name in out:
            raise CheckpointError(path, f"tensor {name!r} appears twice")
        data = np.frombuffer(cur.take(nbytes, f"data of tensor {name!r}"), np.uint8)
        out[name] = as_typed(data, dtype, tuple(shape), path, name)
    return out


def _optimizer(cur: Cursor) -> dict:
    kind = cur.text("optimizer type")
    (n,) = cur.unpack("<I", "optimizer scalar count")
    scalars = {}
    for _ in range(n):
        key = cur.text("optimizer scalar name")
        (scalars[key],) = cur.unpack("<d", f"optimizer scalar {key!r}")
    (n,) = cur.unpack("<I", "optimizer buffer count")
    buffers = {}
    for _ in range(n):
        key = cur.text("optimizer buffer name")
        (length,) = cur.unpack("<Q", f"length of optimizer buffer {key!r}")
        if length > (len(cur.buf) - cur.pos) // 8:
            raise CheckpointError(cur.path, f"truncated: optimizer buffer {key!r} declares "
                                  f"{length} values past the end of the file")  # fmt: skip
        buffers[key] = np.frombuffer(cur.take(8 * length, f"buffer {key!r}"), "<f8").copy()
    return {"type": kind, "scalars": scalars, "buffers": buffers}
