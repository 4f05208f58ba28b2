"""safetensors files, through the ``safetensors`` library's NumPy API (bf16 via ml_dtypes).

The library writes and parses every byte; this module converts values (tensors and views
-> contiguous arrays; loaded arrays -> Shrew tensors, widening i8/i16/i32 -> i64 and u16 ->
u32 exactly), writes atomically and turns the library's errors into ``CheckpointError``
naming the file. ``safe_open`` reads single tensors lazily: the library memory-maps the file,
so one tensor of a large file is read without the rest.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager

import safetensors
import safetensors.numpy

from .._atomic import atomic_path
from ._arrays import shrew_array, to_array, to_tensor
from ._files import describe_foreign, open_file
from .errors import CheckpointError

# safetensors dtype names Shrew reads (the others: U64, C64, F8_*, F4, F6_* ... raise).
READABLE_DTYPES = frozenset(
    {"BOOL", "U8", "I8", "I16", "U16", "I32", "U32", "I64", "F16", "BF16", "F32", "F64"}
)


def save_safetensors(tensors: Mapping[str, object], path: str | os.PathLike,
                     metadata: Mapping[str, str] | None = None) -> None:  # fmt: skip
    """Write ``tensors`` (name -> Tensor / NumPy array) as a safetensors file, atomically.

    Views are saved by their logical values; dtypes are kept (NumPy int32 stays I32).
    ``metadata`` (str -> str) goes into the header's ``__metadata__``.
    """
    path = os.fspath(path)
    if not isinstance(tensors, Mapping):
        raise CheckpointError(path, f"expected a mapping of name -> tensor, got "
                              f"{type(tensors).__name__}")  # fmt: skip
    arrays = {}
    for name, value in tensors.items():
        if not isinstance(name, str):
            raise CheckpointError(path, f"tensor names must be str, got {name!r}")
        arrays[name] = to_array(value, path, name)
    if metadata is not None and not (
        isinstance(metadata, Mapping)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())
    ):
        raise CheckpointError(path, f"metadata must be a dict of str -> str, got {metadata!r}")
    try:
        with atomic_path(path) as tmp:  # the library writes straight from the arrays' memory
            safetensors.numpy.save_file(arrays, tmp, metadata=dict(metadata) if metadata else None)
    except (safetensors.SafetensorError, ValueError, TypeError, KeyError) as exc:
        raise CheckpointError(path, f"safetensors cannot write this: {exc}") from exc


class SafeOpen:
    """An open safetensors file: ``keys()``, ``metadata()``, ``get_tensor(name)`` (a Shrew
    tensor, read on demand). Made by ``safe_open``."""

    def __init__(self, handle, path: str, device: object) -> None:
        self._handle, self.path, self._device = handle, path, device
        self._keys = list(handle.keys())
        self._known = set(self._keys)

    def keys(self) -> list[str]:
        return list(self._keys)

    def metadata(self) -> dict[str, str]:
        return dict(self._handle.metadata() or {})

    def dtype(self, name: str) -> str:
        """The safetensors dtype name of ``name`` (``"F32"``, ``"BF16"`` ...)."""
        self._check_name(name)
        return self._handle.get_slice(name).get_dtype()

    def get_tensor(self, name: str):
        dtype = self.dtype(name)
        if dtype not in READABLE_DTYPES:
            raise CheckpointError(self.path, f"tensor {name!r} has dtype {dtype}, which Shrew "
                                  "cannot hold exactly (readable: "
                                  f"{', '.join(sorted(READABLE_DTYPES))})")  # fmt: skip
        try:
            arr = self._handle.get_tensor(name)
        except safetensors.SafetensorError as exc:
            raise CheckpointError(self.path, f"tensor {name!r}: {exc}") from exc
        return to_tensor(shrew_array(arr, self.path, name), self._device)

    def _check_name(self, name: str) -> None:
        if name not in self._known:
            raise CheckpointError(self.path, f"no tensor {name!r}; the file has "
                                  f"{self.keys()[:20]}")  # fmt: skip


@contextmanager
def safe_open(path: str | os.PathLike, device: object = None) -> Iterator[SafeOpen]:
    """Open a safetensors file for lazy reads (the library's ``safe_open``, Shrew tensors out).

    >>> with shrew.io.safe_open("model.safetensors") as f:           # doctest: +SKIP
    ...     w = f.get_tensor("layer.weight")
    """
    path = os.fspath(path)
    f, _ = open_file(path)  # folder / missing path -> CheckpointError naming it
    with f:
        head = f.read(16)
    try:
        handle = safetensors.safe_open(path, framework="np")
    except safetensors.SafetensorError as exc:
        what = describe_foreign(head)
        hint = f" (it looks like {what})" if what and "safetensors" not in what else ""
        raise CheckpointError(path, f"not a valid safetensors file: {exc}{hint}") from None
    with handle:
        yield SafeOpen(handle, path, device)


def load_safetensors(path: str | os.PathLike, names: Iterable[str] | None = None, *,
                     device: object = None) -> dict:  # fmt: skip
    """Read a safetensors file as name -> Shrew tensor (all, or only ``names``)."""
    with safe_open(path, device) as f:
        if names is None:
            names = f.keys()
        elif isinstance(names, str):
            names = [names]
        return {name: f.get_tensor(name) for name in names}


def load_safetensors_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file (header only)."""
    with safe_open(path) as f:
        return f.metadata()
