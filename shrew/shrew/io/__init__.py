"""shrew.io: checkpoints — native ``.shrew`` files, safetensors and training checkpoints.

>>> import shrew
>>> net = shrew.nn.Linear(4, 2)
>>> shrew.io.save(net, "net.safetensors")                      # doctest: +SKIP
>>> net.load_state_dict(shrew.io.load("net.safetensors"))      # doctest: +SKIP

* ``save_tensors``/``load_tensors``: the native format (native.py documents it byte by byte;
  the original's versions 1 and 2 are read too, legacy.py).
* ``save_safetensors``/``load_safetensors``/``safe_open``: safetensors via the library.
* ``save``/``load``: for a mapping of tensors, a Module or an Executor; ``save`` picks the
  format by suffix, ``load`` by suffix or the file's magic.
* ``save_checkpoint``/``load_checkpoint``: model + optimizer + scheduler + RNG + progress,
  resuming bit for bit (checkpoint.py).

Every writer is atomic (``shrew._atomic``); every malformed file is a ``CheckpointError``
naming the file; nothing is ever unpickled.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ._files import MAGIC, open_file
from .checkpoint import load_checkpoint, save_checkpoint
from .errors import CheckpointError, CheckpointNotFoundError
from .native import load_metadata as _native_metadata
from .native import load_tensors, save_tensors
from .safetensors_io import (
    SafeOpen,
    load_safetensors,
    load_safetensors_metadata,
    safe_open,
    save_safetensors,
)

__all__ = [
    "CheckpointError",
    "CheckpointNotFoundError",
    "SafeOpen",
    "load",
    "load_checkpoint",
    "load_metadata",
    "load_safetensors",
    "load_tensors",
    "safe_open",
    "save",
    "save_checkpoint",
    "save_safetensors",
    "save_tensors",
]

SUFFIXES = (".shrew", ".safetensors")


def save(obj: Any, path: str | os.PathLike, metadata: Mapping[str, str] | None = None) -> None:
    """Save a mapping of tensors, a Module or an Executor (its ``state_dict()``) to ``path``,
    as ``.shrew`` or ``.safetensors`` by its suffix."""
    path = os.fspath(path)
    tensors = obj if isinstance(obj, Mapping) else _state_dict(obj, path)
    suffix = os.path.splitext(path)[1].lower()
    if suffix == ".shrew":
        save_tensors(tensors, path, metadata)
    elif suffix == ".safetensors":
        save_safetensors(tensors, path, metadata)
    else:
        raise CheckpointError(path, f"unknown suffix {suffix!r}: use one of {SUFFIXES}")


def load(path: str | os.PathLike, into: Any = None, *, device: object = None) -> dict:
    """Read a ``.shrew`` or safetensors file as name -> Tensor (a ``.shrew`` suffix or the
    native magic means ``.shrew``, anything else safetensors). With ``into`` (a Module or an
    Executor), also load the tensors into it with its ``load_state_dict`` (the seed's
    ``load(path, executor)``).
    """
    path = os.fspath(path)
    if _is_native(path):
        tensors = load_tensors(path, device=device)
    else:
        tensors = load_safetensors(path, device=device)
    if into is not None:
        if not callable(getattr(into, "load_state_dict", None)):
            raise CheckpointError(path, f"cannot load into a {type(into).__name__}: it has "
                                  "no load_state_dict()")  # fmt: skip
        into.load_state_dict(tensors)
    return tensors


def load_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The string metadata of a ``.shrew`` or safetensors file (its header only)."""
    path = os.fspath(path)
    return _native_metadata(path) if _is_native(path) else load_safetensors_metadata(path)


def _is_native(path: str) -> bool:
    """``.shrew`` files, and any file starting with the native magic, are native."""
    if os.path.splitext(path)[1].lower() == ".shrew":
        return True
    f, _ = open_file(path)
    with f:
        return f.read(4) == MAGIC


def _state_dict(obj: Any, path: str) -> Mapping:
    if not callable(getattr(obj, "state_dict", None)):
        raise CheckpointError(path, f"cannot save a {type(obj).__name__}: expected a mapping "
                              "of tensors, a Module or an Executor")  # fmt: skip
    return obj.state_dict()
