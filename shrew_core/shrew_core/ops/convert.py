"""Moving between dtypes and devices: ``to``, ``float()``/``double()``/..., ``cpu()``."""

from __future__ import annotations

import numpy as np

from ..autograd import record
from ..device import Device, as_device
from ..dtypes import DType, as_dtype
from ..registry import get_backend
from ..tensor import Tensor
from . import elementwise as ew
from ._base import wrap


def _to_device(x: Tensor, device: Device) -> Tensor:
    if device == x.device:
        return x
    dst = get_backend(device)
    host = np.ascontiguousarray(x.numpy()).reshape(-1)
    out = wrap(dst.from_numpy(host.copy()), x.shape, x.dtype, dst)
    return record("to_device", out, (x,)) if x.dtype.is_float else out


def to(x: Tensor, *args, dtype=None, device=None, copy: bool = False) -> Tensor:
    """``to(dtype)``, ``to(device)``, ``to(device, dtype)``, ``to(other_tensor)`` or keywords."""
    for a in args:
        if isinstance(a, Tensor):
            dtype, device = a.dtype, a.device
        elif isinstance(a, (Device,)) or (isinstance(a, str) and _looks_like_device(a)):
            device = a
        else:
            dtype = a
    out = x
    if device is not None:
        out = _to_device(out, as_device(device))
    if dtype is not None:
        out = ew.cast(out, as_dtype(dtype))
    if copy and out is x:
        from .shape import clone

        out = clone(x)
    return out


def _looks_like_device(s: str) -> bool:
    """A string names a device if it is not a dtype and its type is a known backend."""
    from ..errors import DTypeError
    from ..registry import available_backends

    try:
        as_dtype(s)
        return False
    except DTypeError:
        kind = s.partition(":")[0]
        if kind in ("cpu", "cuda") or kind in available_backends():
            return True
        raise DTypeError(f"to: {s!r} is neither a dtype nor a known device") from None


def to_dtype(x: Tensor, dtype) -> Tensor:
    return ew.cast(x, as_dtype(dtype))


def type_as(x: Tensor, other: Tensor) -> Tensor:
    return ew.cast(x, other.dtype)


def _caster(name: str):
    def fn(x: Tensor) -> Tensor:
        return ew.cast(x, as_dtype(name))

    fn.__name__ = name
    return fn


float = _caster("f32")  # noqa: A001
double = _caster("f64")
half = _caster("f16")
bfloat16 = _caster("bf16")
long = _caster("i64")
bool = _caster("bool")  # noqa: A001


def cpu(x: Tensor) -> Tensor:
    return _to_device(x, Device("cpu"))


def cuda(x: Tensor, index: int = 0) -> Tensor:
    return _to_device(x, Device("cuda", index))


def element_size(x: Tensor) -> int:
    return x.dtype.itemsize


def is_dtype(x: Tensor, dtype: DType) -> bool:
    return x.dtype is as_dtype(dtype)
