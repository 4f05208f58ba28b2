"""Opening files for reading, and naming what a file is when it is not what was expected.

Readers never trust a length from a file before comparing it with the file's real size, so a
forged length gives a ``CheckpointError``, never a ``MemoryError``. Nothing here unpickles.
"""

from __future__ import annotations

import os
import struct
from typing import BinaryIO

from .errors import CheckpointError, CheckpointNotFoundError

MAGIC = b"SHRW"


def open_file(path: str) -> tuple[BinaryIO, int]:
    """``path`` opened unbuffered for reading, and its size in bytes."""
    if os.path.isdir(path):
        raise CheckpointError(path, "is a folder, not a checkpoint file")
    try:
        f = open(path, "rb", buffering=0)  # noqa: SIM115 - the caller closes it
    except FileNotFoundError:
        raise CheckpointNotFoundError(path, "no such file") from None
    return f, os.fstat(f.fileno()).st_size


def read_exact(f: BinaryIO, view: memoryview, path: str, what: str) -> None:
    """Fill ``view`` from ``f`` (readinto: no intermediate copy) or raise 'truncated'."""
    done = 0
    while done < len(view):
        n = f.readinto(view[done:])
        if not n:
            raise CheckpointError(path, f"truncated while reading {what}: got {done} of "
                                  f"{len(view)} bytes")  # fmt: skip
        done += n


def describe_foreign(head: bytes) -> str | None:
    """What a file starting with ``head`` is, when it is a well-known non-Shrew format."""
    never = "Shrew never unpickles files (it could run arbitrary code)"
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return f"a Python pickle (pickle.dump, torch.save's legacy format); {never}"
    if head.startswith(b"PK\x03\x04"):
        return (f"a zip archive (torch.save's format, which holds a pickle); {never}; "
                "convert it with safetensors.torch.save_file")  # fmt: skip
    if head.startswith(b"\x93NUMPY"):
        return f"a NumPy .npy file (np.save; it may hold pickled objects); {never}"
    if len(head) >= 9 and head[8:9] == b"{" and struct.unpack("<Q", head[:8])[0] > 1:
        return "a safetensors file; read it with load_safetensors (or a .safetensors suffix)"
    if head.startswith(MAGIC):
        return "a Shrew checkpoint"
    return None
