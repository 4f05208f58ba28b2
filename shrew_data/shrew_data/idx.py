"""The IDX file format (MNIST's): read and write, raw or gzip-compressed.

Layout: two zero bytes, a type code (0x08 u8, 0x09 i8, 0x0B i16, 0x0C i32, 0x0D f32,
0x0E f64), the number of dimensions, one big-endian u32 per dimension, then the values
big-endian in row-major order. Reading checks every part and names the file in errors.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from .errors import DataError

IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dt.newbyteorder("="): code for code, dt in IDX_TYPES.items()}
GZIP_MAGIC = b"\x1f\x8b"


def read_bytes(path: str | os.PathLike) -> bytes:
    """The file's bytes, gunzipped when it starts with the gzip magic (not by extension)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"IDX file not found: {path}") from None
    if raw[:2] != GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: corrupt or truncated gzip data ({exc})") from None


def magic_number(code: int, ndim: int) -> int:
    return (code << 8) | ndim


def read_idx(
    path: str | os.PathLike, expect_code: int | None = None, expect_ndim: int | None = None
) -> np.ndarray:
    """An IDX file as a native-endian NumPy array. ``expect_code``/``expect_ndim`` check the
    magic number (MNIST images are 0x0803, labels 0x0801)."""
    raw = read_bytes(path)
    if len(raw) < 4:
        raise DataError(f"{path}: {len(raw)} bytes is too short for an IDX header (4 bytes)")
    zero0, zero1, code, ndim = raw[:4]
    magic = struct.unpack(">I", raw[:4])[0]
    if zero0 or zero1 or code not in IDX_TYPES:
        raise DataError(
            f"{path}: not an IDX file: magic number 0x{magic:08x} (expected 0x0000TTDD with "
            f"type TT in {', '.join(f'0x{c:02x}' for c in IDX_TYPES)})"
        )
    if (expect_code is not None and code != expect_code) or (
        expect_ndim is not None and ndim != expect_ndim
    ):
        want = magic_number(expect_code or code, expect_ndim if expect_ndim is not None else ndim)
        raise DataError(
            f"{path}: magic number mismatch: expected 0x{want:08x}, got 0x{magic:08x} "
            "(wrong file, e.g. images and labels swapped?)"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(
            f"{path}: truncated header: {ndim} dimensions need {header} bytes, file has {len(raw)}"
        )
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = IDX_TYPES[code]
    count = int(np.prod(dims, dtype=np.int64))
    need = count * dtype.itemsize
    have = len(raw) - header
    if have != need:
        kind = "truncated" if have < need else "has trailing bytes"
        raise DataError(
            f"{path}: {kind}: header says shape {tuple(dims)} of {dtype.newbyteorder('=')} "
            f"({need} bytes of data) but the file holds {have}"
        )
    arr = np.frombuffer(raw, dtype=dtype, count=count, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="), copy=False)


def write_idx(path: str | os.PathLike, array: np.ndarray, compress: bool | None = None) -> Path:
    """Write ``array`` as IDX (gzip-compressed when ``compress`` or the name ends in .gz)."""
    path = Path(path)
    arr = np.asarray(array)
    native = arr.dtype.newbyteorder("=")
    if native not in _CODES:
        raise DataError(
            f"write_idx: dtype {arr.dtype} has no IDX type code; use one of "
            + ", ".join(str(d.newbyteorder("=")) for d in IDX_TYPES.values())
        )
    code = _CODES[native]
    header = struct.pack(">BBBB", 0, 0, code, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    data = header + np.ascontiguousarray(arr, dtype=IDX_TYPES[code]).tobytes()
    if compress or (compress is None and path.suffix == ".gz"):
        data = gzip.compress(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
