"""The native ``.shrew`` format, version 3: named tensors + string metadata, checksummed.

Every integer is little-endian. A file is a header of ``H`` bytes followed by ``D`` bytes of
data, and nothing else (the file size is exactly ``H + D``)::

    offset  bytes  field
    0       4      magic b"SHRW"
    4       4      u32 version = 3            (1 and 2 are the original's layouts: legacy.py)
    8       8      u64 H, the header size     (a multiple of 64; the data starts at H)
    16      8      u64 D, the data size
    24      4      u32 T, the tensor count
    28      4      u32 M, the metadata count
    32      8      u64 header checksum        (XXH64 of bytes [0, H) with these 8 = 0)
    40      8      reserved, zero
    48             M metadata entries, sorted by key:
                     u32 key length, key (UTF-8), u32 value length, value (UTF-8)
    ...            T tensor entries, in the order they were given:
                     u32 name length, name (UTF-8)
                     u8  dtype: 0 f32, 1 f64, 2 u8, 3 u32, 4 i64, 5 f16, 6 bf16, 7 bool
                     u8  ndim (0..64)
                     6 bytes reserved, zero
                     u64 data checksum          (XXH64 of the tensor's nbytes)
                     ndim x u64 dims
                     u64 offset                 (from the data start; a multiple of 64)
                     u64 nbytes                 (= prod(dims) * itemsize)
    ...            zero padding up to H
    H              the data: each tensor's elements, C order, little-endian (bool: one byte,
                   0 or 1), at its offset; zero padding between tensors.

The checksums are XXH64 with seed 0 (``_xxhash.py``; any xxHash library computes the same).
Every tensor starts 64-byte aligned in the file; the header checksum covers the whole header
(including each tensor's data checksum) and those cover every data byte but the padding.
The bytes depend only on the names, dtypes, shapes, values and metadata: saving the same
tensors twice gives identical files. Values are stored as they are (an i64 never passes
through f64). Reading checks the magic, version, sizes against the real file size (before
allocating anything), each entry's dtype, shape/nbytes agreement, alignment, bounds and
overlaps, then the checksums; any problem is a ``CheckpointError`` naming the file and the fault.
A single tensor can be read without the rest (``load_tensors(path, names=[...])``).

Loading maps the file into memory (a private, copy-on-write ``mmap``): tensors are views of
the mapping, so no byte is copied; checking a tensor's checksum reads its pages once (XXH64
runs at memory speed), and ``verify=False`` skips that, leaving the pages to be read when
the tensor is first used. Writing to a loaded tensor never changes the file. ``mmap=False``
reads each tensor into its own memory instead (``readinto``: one copy).
"""

from __future__ import annotations

import math
import mmap
import os
import struct
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from .._atomic import atomic_write
from ._arrays import np_dtype, shrew_array, to_array, to_tensor
from ._files import MAGIC, describe_foreign, open_file, read_exact
from ._xxhash import Hasher, xxh64
from .errors import CheckpointError

VERSION = 3
ALIGN = 64
MAX_NDIM = 64
_FIXED = struct.Struct("<4sIQQIIQ8x")  # magic .. reserved: 48 bytes
_HASH_AT = 32
_ENTRY = struct.Struct("<BBHIQ")  # dtype, ndim, reserved u16 + u32, data checksum
_HASH_THREADS = min(4, os.cpu_count() or 1)
_CHUNK = 1 << 22  # write in 4 MiB pieces, each hashed by another thread meanwhile

#: The code of each NumPy dtype, by name (so bf16's ml_dtypes is imported only when used).
DTYPE_CODES: dict[str, int] = {"float32": 0, "float64": 1, "uint8": 2, "uint32": 3, "int64": 4,
                               "float16": 5, "bfloat16": 6, "bool": 7}  # fmt: skip
CODE_NAMES: dict[int, str] = {c: n for n, c in DTYPE_CODES.items()}


@dataclass(frozen=True)
class Entry:
    """One tensor of the table: where its bytes are and what they mean."""

    name: str
    dtype: np.dtype
    shape: tuple[int, ...]
    offset: int  # from the start of the data section
    nbytes: int
    checksum: int


# ---------------------------------------------------------------------------- writing
def save_tensors(tensors: Mapping[str, object], path: str | os.PathLike,
                 metadata: Mapping[str, str] | None = None) -> None:  # fmt: skip
    """Write ``tensors`` (name -> Tensor / NumPy array) to ``path`` in the ``.shrew`` format.

    Atomic (temporary file, fsync, rename): a crash leaves the previous file intact.
    NumPy dtypes Shrew lacks are widened exactly (i8/i16/i32 -> i64, u16 -> u32).

    >>> import shrew
    >>> shrew.io.save_tensors({"w": shrew.ones(2, 3)}, "w.shrew")      # doctest: +SKIP
    >>> shrew.io.load_tensors("w.shrew")["w"].shape                   # doctest: +SKIP
    (2, 3)
    """
    path = os.fspath(path)
    if not isinstance(tensors, Mapping):
        raise CheckpointError(path, f"expected a mapping of name -> tensor, got "
                              f"{type(tensors).__name__}")  # fmt: skip
    arrays = []
    for name, value in tensors.items():
        if not isinstance(name, str):
            raise CheckpointError(path, f"tensor names must be str, got {name!r}")
        arrays.append((name, shrew_array(to_array(value, path, name), path, name)))
    meta = _check_metadata(metadata, path)
    entries, data_size = _layout(arrays)
    header_size = _header_size(meta, entries)
    with atomic_write(path) as f, ThreadPoolExecutor(1, "shrew-io-hash") as hashing:
        f.write(bytes(header_size))  # placeholder: the checksums are known after the data
        sums = []
        pos = 0
        for entry, (_, arr) in zip(entries, arrays):
            f.write(bytes(entry.offset - pos))
            sums.append(_write_data(f, arr, hashing))
            pos = entry.offset + entry.nbytes
        f.write(bytes(data_size - pos))
        entries = [Entry(e.name, e.dtype, e.shape, e.offset, e.nbytes, s.result())
                   for e, s in zip(entries, sums)]  # fmt: skip
        f.seek(0)
        f.write(encode_header(meta, entries, header_size, data_size))
        f.seek(0, os.SEEK_END)


def _check_metadata(metadata: Mapping[str, str] | None, path: str) -> dict[str, str]:
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise CheckpointError(path, f"metadata must be a dict of str -> str, got "
                              f"{type(metadata).__name__}")  # fmt: skip
    for k, v in metadata.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise CheckpointError(path, f"metadata must map str -> str, got {k!r}: "
                                  f"{type(v).__name__}")  # fmt: skip
    return dict(sorted(metadata.items()))


def _layout(arrays: list[tuple[str, np.ndarray]]) -> tuple[list[Entry], int]:
    entries, pos = [], 0
    for name, arr in arrays:
        entries.append(Entry(name, arr.dtype, tuple(arr.shape), pos, arr.nbytes, 0))
        pos = _aligned(pos + arr.nbytes)
    end = entries[-1].offset + entries[-1].nbytes if entries else 0
    return entries, end


def _aligned(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def _header_size(meta: dict[str, str], entries: list[Entry]) -> int:
    n = _FIXED.size
    n += sum(8 + len(k.encode()) + len(v.encode()) for k, v in meta.items())
    n += sum(4 + len(e.name.encode()) + _ENTRY.size + 8 * len(e.shape) + 16 for e in entries)
    return _aligned(n)


def encode_header(meta: dict[str, str], entries: list[Entry], header_size: int,
                  data_size: int) -> bytes:  # fmt: skip
    """The ``header_size`` bytes of the header, checksum included."""
    out = bytearray(_FIXED.pack(MAGIC, VERSION, header_size, data_size, len(entries),
                                len(meta), 0))  # fmt: skip
    for k, v in meta.items():
        kb, vb = k.encode(), v.encode()
        out += struct.pack("<I", len(kb)) + kb + struct.pack("<I", len(vb)) + vb
    for e in entries:
        nb = e.name.encode()
        out += struct.pack("<I", len(nb)) + nb
        out += _ENTRY.pack(DTYPE_CODES[e.dtype.name], len(e.shape), 0, 0, e.checksum)
        out += struct.pack(f"<{len(e.shape)}Q", *e.shape)
        out += struct.pack("<QQ", e.offset, e.nbytes)
    out += bytes(header_size - len(out))
    struct.pack_into("<Q", out, _HASH_AT, xxh64(out))
    return bytes(out)


def _write_data(f, arr: np.ndarray, hashing: ThreadPoolExecutor) -> Future:
    """Write ``arr``'s bytes piece by piece while ``hashing`` (one thread, so in order)
    hashes each piece; the XXH64 kernel and the write both release the GIL."""
    flat = arr.reshape(-1).view(np.uint8)
    hasher = Hasher()
    for start in range(0, flat.size, _CHUNK):
        piece = flat[start : start + _CHUNK]
        hashing.submit(hasher.update, piece)
        f.write(piece)
    return hashing.submit(hasher.digest)


# ---------------------------------------------------------------------------- reading
def load_tensors(path: str | os.PathLike, names: Iterable[str] | None = None, *,
                 device: object = None, verify: bool = True,
                 mmap: bool = True) -> dict:  # fmt: skip
    """Read a ``.shrew`` file (version 3, or the original's 1 and 2) as name -> Tensor.

    ``names`` reads only those tensors (the others' bytes are never read). ``device`` places
    the tensors (default: the CPU). ``verify=False`` skips the data checksums (the header's
    is always checked). ``mmap=True`` makes the tensors views of a private copy-on-write map
    of the file (no copy; like ``safetensors.torch``, a file truncated in place by another
    program while they live makes reading them fault; Shrew's writers replace files, which is
    safe); ``mmap=False`` reads them into memory of their own.
    """
    arrays, _ = read_arrays(path, names, verify=verify, use_mmap=mmap)
    return {k: to_tensor(v, device) for k, v in arrays.items()}


def load_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The string metadata of a ``.shrew`` file (the header only is read)."""
    path = os.fspath(path)
    f, size, version = open_checked(path)
    with f:
        return read_header(f, size, path)[0] if version == VERSION else {}


def read_arrays(path: str | os.PathLike, names: Iterable[str] | None = None, *,
                verify: bool = True, use_mmap: bool = True
                ) -> tuple[dict[str, np.ndarray], dict[str, str]]:  # fmt: skip
    """``(arrays, metadata)`` of a ``.shrew`` file of any version."""
    path = os.fspath(path)
    f, size, version = open_checked(path)
    with f:
        if version != VERSION:
            from .legacy import read_legacy

            return read_legacy(f, size, path, version, names)
        meta, entries, header_size = read_header(f, size, path)
        wanted = _select(entries, names, path)
        return map_tensors(f, size, wanted, header_size, path, verify, use_mmap), meta


def open_checked(path: str) -> tuple[BinaryIO, int, int]:
    """``path`` opened at offset 0 once its magic and version are checked: (file, size,
    version)."""
    f, size = open_file(path)
    try:
        return f, size, _check_start(f, size, path)
    except BaseException:
        f.close()
        raise


def _check_start(f, size: int, path: str) -> int:
    head = f.read(16)
    if len(head) < 8 and MAGIC.startswith(head[:4]):
        raise CheckpointError(path, f"truncated: {size} bytes is too short for a .shrew file")
    if not head.startswith(MAGIC):
        what = describe_foreign(head) or f"wrong magic {head[:4]!r}"
        raise CheckpointError(path, f"not a .shrew file: {what} (expected magic {MAGIC!r})")
    (version,) = struct.unpack_from("<I", head, 4)
    if version not in (1, 2, VERSION):
        raise CheckpointError(path, f"unsupported .shrew version {version} (this Shrew reads "
                              f"1, 2 and {VERSION})")  # fmt: skip
    f.seek(0)
    return version


def read_header(f, size: int, path: str) -> tuple[dict[str, str], list[Entry], int]:
    """Parse and validate a version-3 header: ``(metadata, entries, header size)``."""
    fixed = f.read(_FIXED.size)
    if len(fixed) < _FIXED.size:
        raise CheckpointError(path, f"truncated: {size} bytes is shorter than the "
                              f"{_FIXED.size}-byte fixed header")  # fmt: skip
    _, _, header_size, data_size, n_tensors, n_meta, checksum = _FIXED.unpack(fixed)
    if header_size % ALIGN or header_size < _FIXED.size:
        raise CheckpointError(path, f"corrupt header: header size {header_size} is not a "
                              f"multiple of {ALIGN} of at least {_FIXED.size}")  # fmt: skip
    if header_size > size:
        raise CheckpointError(path, f"truncated or forged: the header declares {header_size} "
                              f"header bytes, the file has {size}")  # fmt: skip
    if header_size + data_size != size:
        state = "truncated" if header_size + data_size > size else "trailing bytes"
        raise CheckpointError(path, f"{state}: the header declares {header_size} + "
                              f"{data_size} bytes, the file has {size}")  # fmt: skip
    raw = bytearray(header_size)
    raw[: _FIXED.size] = fixed
    read_exact(f, memoryview(raw)[_FIXED.size :], path, "the header")
    struct.pack_into("<Q", raw, _HASH_AT, 0)
    if xxh64(raw) != checksum:
        raise CheckpointError(path, "checksum mismatch in the header (the file is corrupt)")
    if n_meta * 8 + n_tensors * (4 + _ENTRY.size + 16) > header_size - _FIXED.size:
        raise CheckpointError(path, f"corrupt header: {n_tensors} tensors and {n_meta} metadata "
                              f"entries cannot fit in a {header_size}-byte header")  # fmt: skip
    cur = Cursor(raw, _FIXED.size, path, "header")
    meta: dict[str, str] = {}
    for _ in range(n_meta):
        key = cur.text("metadata key")
        meta[key] = cur.text(f"metadata value of {key!r}")
    entries = [_read_entry(cur, data_size) for _ in range(n_tensors)]
    if any(raw[cur.pos :]):
        raise CheckpointError(path, f"corrupt header: non-zero padding after byte {cur.pos}")
    _check_table(entries, path)
    return meta, entries, header_size


def _read_entry(cur: Cursor, data_size: int) -> Entry:
    path = cur.path
    name = cur.text("tensor name")
    code, ndim, reserved, reserved2, checksum = cur.unpack(_ENTRY.format,
                                                           f"entry of tensor {name!r}")
    if code not in CODE_NAMES:
        raise CheckpointError(path, f"tensor {name!r}: unknown dtype code {code} (known: "
                              + ", ".join(f"{c} {d}" for c, d in CODE_NAMES.items()) + ")")
    dtype = np_dtype(CODE_NAMES[code])
    if ndim > MAX_NDIM or reserved or reserved2:
        raise CheckpointError(path, f"tensor {name!r}: corrupt entry (ndim {ndim}, reserved "
                              f"bytes {reserved}, {reserved2})")  # fmt: skip
    shape = cur.unpack(f"<{ndim}Q", f"shape of tensor {name!r}")
    offset, nbytes = cur.unpack("<QQ", f"offset of tensor {name!r}")
    expected = math.prod(shape) * dtype.itemsize
    if nbytes != expected:
        raise CheckpointError(path, f"tensor {name!r}: {nbytes} bytes do not match shape "
                              f"{tuple(shape)} of {dtype} ({expected} bytes)")  # fmt: skip
    if offset % ALIGN:
        raise CheckpointError(path, f"tensor {name!r}: offset {offset} is not {ALIGN}-byte "
                              "aligned")  # fmt: skip
    if offset + nbytes > data_size:
        raise CheckpointError(path, f"tensor {name!r}: bytes [{offset}, {offset + nbytes}) run "
                              f"past the end of the {data_size}-byte data section")  # fmt: skip
    return Entry(name, dtype, tuple(shape), offset, nbytes, checksum)


def _check_table(entries: list[Entry], path: str) -> None:
    seen: set[str] = set()
    for e in entries:
        if e.name in seen:
            raise CheckpointError(path, f"tensor {e.name!r} appears twice")
        seen.add(e.name)
    spans = sorted((e.offset, e.offset + e.nbytes, e.name) for e in entries if e.nbytes)
    for (_, end, a), (start, _, b) in zip(spans, spans[1:]):
        if start < end:
            raise CheckpointError(path, f"tensors {a!r} and {b!r} overlap in the data section")


def _select(entries: list[Entry], names: Iterable[str] | None, path: str) -> list[Entry]:
    if names is None:
        return entries
    if isinstance(names, str):
        names = [names]
    by_name = {e.name: e for e in entries}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise CheckpointError(path, f"no tensor(s) {missing}; the file has "
                              f"{list(by_name)[:20]}")  # fmt: skip
    return [by_name[n] for n in dict.fromkeys(names)]


def map_tensors(f, size: int, entries: list[Entry], header_size: int, path: str,
                verify: bool = True, use_mmap: bool = True) -> dict[str, np.ndarray]:  # fmt: skip
    """The arrays of ``entries``, checked against their checksums unless ``verify`` is
    false: zero-copy views of a private map of the file, or (``use_mmap=False``) arrays of
    their own read with ``readinto`` (one copy, from the page cache)."""
    if use_mmap and any(e.nbytes for e in entries):
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
        if len(mapped) != size:
            raise CheckpointError(path, f"the file changed size while being read ({size} -> "
                                  f"{len(mapped)} bytes)")  # fmt: skip
        raws = [np.frombuffer(mapped, np.uint8, e.nbytes, header_size + e.offset) if e.nbytes
                else np.empty(0, np.uint8) for e in entries]  # fmt: skip
    else:
        raws = []
        for e in entries:
            raws.append(np.empty(e.nbytes, np.uint8))
            f.seek(header_size + e.offset)
            read_exact(f, memoryview(raws[-1]), path, f"tensor {e.name!r}")
    if verify:
        with ThreadPoolExecutor(_HASH_THREADS, "shrew-io-hash") as pool:  # kernels drop the GIL
            sums = list(pool.map(xxh64, raws))
        for e, got in zip(entries, sums):
            if got != e.checksum:
                raise CheckpointError(path, f"checksum mismatch in tensor {e.name!r} (the file "
                                      "is corrupt)")  # fmt: skip
    return {e.name: as_typed(raw, e.dtype, e.shape, path, e.name)
            for e, raw in zip(entries, raws)}  # fmt: skip


def as_typed(buf: np.ndarray, dtype: np.dtype, shape: tuple[int, ...], path: str,
             name: str) -> np.ndarray:  # fmt: skip
    """Raw bytes ``buf`` viewed as ``dtype`` of ``shape`` (bool bytes must be 0 or 1)."""
    if dtype == np.bool_ and buf.size and buf.max() > 1:
        raise CheckpointError(path, f"tensor {name!r}: bool bytes other than 0 and 1")
    return buf.view(dtype).reshape(shape)


class Cursor:
    """Bounded little-endian reads from a byte buffer; running out is a ``CheckpointError``."""

    def __init__(self, buf, pos: int, path: str, what: str) -> None:
        self.buf, self.pos, self.path, self.what = buf, pos, path, what

    def unpack(self, fmt: str, field: str) -> tuple:
        n = struct.calcsize(fmt)
        if self.pos + n > len(self.buf):
            raise CheckpointError(self.path, f"truncated {self.what}: {field} at byte "
                                  f"{self.pos} needs {n} bytes, {len(self.buf) - self.pos} "
                                  "are left")  # fmt: skip
        out = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += n
        return out

    def take(self, n: int, field: str) -> memoryview:
        if n > len(self.buf) - self.pos:
            raise CheckpointError(self.path, f"truncated {self.what}: {field} at byte "
                                  f"{self.pos} declares {n} bytes, "
                                  f"{len(self.buf) - self.pos} are left")  # fmt: skip
        out = memoryview(self.buf)[self.pos : self.pos + n]
        self.pos += n
        return out

    def text(self, field: str) -> str:
        (n,) = self.unpack("<I", f"length of {field}")
        raw = self.take(n, field)
        try:
            return str(raw, "utf-8")
        except UnicodeDecodeError:
            raise CheckpointError(self.path, f"{field} at byte {self.pos - n} is not valid "
                                  "UTF-8") from None  # fmt: skip
