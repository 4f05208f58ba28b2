"""The one error of ``shrew.io``: a file that cannot be read or written as a checkpoint.

Every message starts with the file's path and says what is wrong, e.g.
``model.shrew: truncated: the header declares 4096 bytes of data, the file has 100``.
"""

from __future__ import annotations

import os

from shrew_core import ShrewError


class CheckpointError(ShrewError, ValueError):
    """A checkpoint/safetensors file that is malformed, unsupported, or cannot hold a value.

    Attributes:
        path: the file concerned (``None`` when there is none, e.g. in-memory bytes).
    """

    def __init__(self, path: str | os.PathLike | None, message: str) -> None:
        self.path = None if path is None else os.fspath(path)
        super().__init__(message if self.path is None else f"{self.path}: {message}")


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The path does not exist (also a ``FileNotFoundError``)."""
