"""Atomic file writes: every file Shrew writes (checkpoints, safetensors, ONNX, logs, plots)
goes through here, so a process killed mid-write leaves the previous file intact.

The data goes to a temporary file in the destination's folder (same filesystem, so the
final rename is atomic), is flushed and fsync'ed, then ``os.replace``-d over the target;
the folder is fsync'ed too so the rename survives a power loss. On any error the
temporary file is removed and the target is untouched.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from typing import BinaryIO


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Open a temporary binary file that replaces ``path`` when the block exits cleanly.

    >>> with atomic_write("weights.bin") as f:   # doctest: +SKIP
    ...     f.write(b"...")
    """
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        yield f


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """``atomic_write`` for libraries that write by file name: yields the temporary file's
    path (in ``path``'s folder); what the block wrote there is fsync'ed and replaces ``path``.

    >>> with atomic_path("model.safetensors") as tmp:   # doctest: +SKIP
    ...     safetensors.numpy.save_file(arrays, tmp)
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        os.chmod(tmp, _new_file_mode())  # mkstemp makes 0600; give the usual umask'd mode
        yield tmp
        fd = os.open(tmp, os.O_RDWR)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(folder)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_write(path) as f:
        f.write(data)


def _new_file_mode() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def _fsync_dir(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some platforms cannot open a directory; the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
