"""Collation: turning a list of samples into one batch, and pinning batches to a device/dtype.

``default_collate`` stacks shrew tensors, NumPy arrays and numbers into tensors along a new
dim 0 and recurses through tuples, lists, namedtuples and dicts; strings and ``None`` are
kept as lists. ``pin_batch`` moves every tensor of a nested batch to a device and casts
floating-point tensors to a dtype (integer labels keep their dtype).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

import shrew_core as sc
from shrew_core import Tensor
from shrew_core.errors import DTypeError, ShapeError, fmt_shape

from .errors import DataError

# NumPy dtypes with no Shrew equivalent are widened to one that holds every value.
_WIDEN = {"i": np.int64, "u": np.int64, "b": np.bool_}


def to_supported(arr: np.ndarray) -> np.ndarray:
    """``arr`` unchanged if Shrew has its dtype, else widened (int8/16/32 and uint16/64 to
    int64); raises DTypeError for dtypes that cannot be tensors (objects, strings)."""
    try:
        sc.as_dtype(arr.dtype)
        return arr
    except DTypeError:
        if arr.dtype.kind in _WIDEN:
            return arr.astype(_WIDEN[arr.dtype.kind])
        if arr.dtype.kind == "f":
            return arr.astype(np.float64)
        raise


def array_to_tensor(arr: np.ndarray, device: Any = None) -> Tensor:
    """A tensor holding ``arr`` (zero-copy on CPU when Shrew has its dtype)."""
    return sc.from_numpy(np.ascontiguousarray(to_supported(np.asarray(arr))), device=device)


def _check_shapes(shapes: list[tuple[int, ...]]) -> None:
    first = shapes[0]
    for k, s in enumerate(shapes):
        if s != first:
            raise ShapeError(
                f"default_collate: sample {k} has shape {fmt_shape(s)} but sample 0 has "
                f"{fmt_shape(first)}; pad the samples or pass a collate_fn"
            )


def _stack_tensors(batch: Sequence[Tensor]) -> Tensor:
    _check_shapes([tuple(t.shape) for t in batch])
    first = batch[0]
    same = all(t.device == first.device and t.dtype == first.dtype for t in batch)
    if same and first.device.type != "cuda" and not any(t.requires_grad for t in batch):
        # Host-memory backends: one NumPy stack beats len(batch) backend copies.
        arr = np.stack([np.asarray(t.numpy()) for t in batch])
        return sc.from_numpy(arr, device=first.device)
    return sc.stack(list(batch), 0)


def default_collate(batch: Sequence[Any], *, device: Any = None) -> Any:
    """Merge a list of samples into a batch (see the module docstring). New tensors are
    made on ``device`` (default: shrew_core's default device); stacked tensors stay where
    they are.

    >>> b = default_collate([(np.ones(2), 0), (np.zeros(2), 1)])
    >>> b[0].shape, b[1].tolist()
    ((2, 2), [0, 1])
    """
    if len(batch) == 0:
        raise DataError("default_collate: got an empty batch")
    elem = batch[0]
    if isinstance(elem, Tensor):
        return _stack_tensors(batch)
    if isinstance(elem, np.ndarray):
        _check_shapes([np.shape(a) for a in batch])
        return array_to_tensor(np.stack(batch), device)
    if isinstance(elem, (np.generic, bool, int, float)):
        arr = np.asarray(batch)
        if arr.dtype == np.float64 and not isinstance(elem, np.float64):
            arr = arr.astype(sc.get_default_dtype().np_dtype)  # Python floats: default dtype
        return array_to_tensor(arr, device)
    if elem is None or isinstance(elem, (str, bytes)):
        return list(batch)
    if isinstance(elem, Mapping):
        keys = list(elem.keys())
        for k, d in enumerate(batch):
            if set(d.keys()) != set(keys):
                raise DataError(
                    f"default_collate: sample {k} has keys {sorted(map(str, d))} but sample 0 "
                    f"has {sorted(map(str, keys))}"
                )
        return {key: default_collate([d[key] for d in batch], device=device) for key in keys}
    if isinstance(elem, Sequence):
        n = len(elem)
        for k, s in enumerate(batch):
            if len(s) != n:
                raise DataError(
                    f"default_collate: sample {k} has {len(s)} fields but sample 0 has {n}"
                )
        fields = [default_collate(list(column), device=device) for column in zip(*batch)]
        if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # namedtuple
            return type(elem)(*fields)
        return tuple(fields) if isinstance(elem, tuple) else fields
    raise DataError(
        f"default_collate: cannot batch samples of type {type(elem).__name__}; "
        "expected tensors, NumPy arrays, numbers, strings or tuples/lists/dicts of them"
    )


def map_tensors(batch: Any, fn: Callable[[Any], Any], kind: type = Tensor) -> Any:
    """Apply ``fn`` to every ``kind`` (default: tensor) inside a nested tuple/list/dict."""
    if isinstance(batch, kind):
        return fn(batch)
    if isinstance(batch, Mapping):
        return {k: map_tensors(v, fn, kind) for k, v in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(map_tensors(v, fn, kind) for v in batch))
    if isinstance(batch, (tuple, list)):
        return type(batch)(map_tensors(v, fn, kind) for v in batch)
    return batch


def pin_batch(batch: Any, device: Any = None, dtype: Any = None) -> Any:
    """Move every tensor to ``device`` and cast floating-point tensors to ``dtype``."""
    if device is None and dtype is None:
        return batch
    dt = sc.as_dtype(dtype) if dtype is not None else None
    dev = sc.as_device(device) if device is not None else None

    def pin(t: Tensor) -> Tensor:
        if dev is not None and t.device != dev:
            t = t.to(dev)
        if dt is not None and t.dtype.is_float and t.dtype != dt:
            t = t.to(dt)
        return t

    return map_tensors(batch, pin)
