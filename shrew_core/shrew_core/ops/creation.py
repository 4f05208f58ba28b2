"""Constructors: tensor, zeros/ones/full/empty, rand/randn/randint, arange, linspace, eye,
triu/tril, *_like, from_numpy/from_dlpack; and the default device/dtype."""

from __future__ import annotations

import math

import numpy as np

from .. import random as _random
from ..device import Device, as_device
from ..dtypes import DEFAULT_FLOAT, DType, as_dtype, bool_, i64
from ..errors import DTypeError, ShapeError
from ..registry import get_backend
from ..tensor import Tensor
from ._base import wrap

_defaults: dict = {"device": Device("cpu"), "dtype": DEFAULT_FLOAT}


def set_default_device(device) -> None:
    """The device used when a constructor is given none (``"cpu"`` initially)."""
    _defaults["device"] = as_device(device)


def get_default_device() -> Device:
    return _defaults["device"]


def set_default_dtype(dtype) -> None:
    dtype = as_dtype(dtype)
    if not dtype.is_float:
        raise DTypeError(f"set_default_dtype: expected a float dtype, got {dtype}")
    _defaults["dtype"] = dtype


def get_default_dtype() -> DType:
    return _defaults["dtype"]


def _backend(device):
    return get_backend(_defaults["device"] if device is None else device)


def _shape(args) -> tuple[int, ...]:
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = tuple(args[0])
    shape = tuple(map(int, args))
    if shape and min(shape) < 0:
        raise ShapeError(f"negative dimension in shape {shape}")
    return shape


def _finish(t: Tensor, requires_grad: bool) -> Tensor:
    return t.requires_grad_() if requires_grad else t


def from_numpy(array: np.ndarray, device=None, dtype=None) -> Tensor:
    """A tensor sharing memory with ``array`` on CPU (zero-copy when it is C-contiguous)."""
    array = np.asarray(array)
    if dtype is not None:
        array = array.astype(as_dtype(dtype).np_dtype, copy=False)
    dt = as_dtype(array.dtype)
    b = _backend(device)
    flat = np.ascontiguousarray(array).reshape(-1)
    return wrap(b.from_numpy(flat), tuple(array.shape), dt, b)


#: NumPy dtype -> the dtype ``tensor()`` gives an array of it (filled as they are met).
_INFERRED: dict[np.dtype, DType] = {}


def _infer_dtype(arr: np.ndarray, from_python: bool) -> DType:
    """Python floats become the default float dtype, like torch; NumPy integer types that
    Shrew lacks widen (int8/16/32 -> i64, uint16 -> u32); other dtypes map one-to-one."""
    npd = arr.dtype
    if from_python and npd.kind == "f":
        return _defaults["dtype"]
    dt = _INFERRED.get(npd)
    if dt is None:
        kind, size = npd.kind, npd.itemsize
        if kind == "i" or (kind == "u" and size == 8):
            dt = i64
        elif kind == "u" and size == 2:
            dt = as_dtype("u32")
        else:
            dt = as_dtype(npd)  # raises for a dtype Shrew lacks: nothing kept
        _INFERRED[npd] = dt
    return dt


#: Copies of at least this many bytes start on a 64-byte boundary (a cache line and one
#: AVX-512 vector). NumPy's buffers start 16 bytes past one, which splits every 512-bit
#: load of a memory-bound kernel in two: a row sum of [4096,4096] f32 ran ~10% slower.
ALIGN_FROM_BYTES = 1 << 16


def _aligned_copy(arr: np.ndarray, np_dtype: np.dtype) -> np.ndarray:
    """A C-contiguous copy of ``arr`` in ``np_dtype`` (unsafe casting, like ``astype``)."""
    nbytes = arr.size * np_dtype.itemsize
    if nbytes < ALIGN_FROM_BYTES:
        return arr.copy() if arr.dtype == np_dtype else arr.astype(np_dtype, order="C")
    buf = np.empty(nbytes + 64, np.uint8)
    start = -buf.ctypes.data % 64
    out = buf[start : start + nbytes].view(np_dtype).reshape(arr.shape)
    np.copyto(out, arr, casting="unsafe")
    return out


def tensor(data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new tensor from nested lists, scalars, NumPy arrays or tensors (always a copy)."""
    if isinstance(data, Tensor):
        arr = data.numpy()
    else:
        arr = np.asarray(data)
        if arr.dtype.kind == "O":
            raise DTypeError("tensor: data must be numbers or nested lists of equal lengths")
    if dtype is not None:
        dt = as_dtype(dtype)
    else:
        dt = _infer_dtype(arr, from_python=not isinstance(data, (np.ndarray, np.generic, Tensor)))
    arr = _aligned_copy(arr, dt.np_dtype)
    b = _backend(device)
    t = wrap(b.from_numpy(arr.ravel()), arr.shape, dt, b)  # ravel: a view of the fresh copy
    return t.requires_grad_() if requires_grad else t


as_tensor = tensor


def from_list(data, shape, dtype=None, device=None) -> Tensor:
    """The seed's constructor: flat ``data`` laid out in ``shape`` (element counts must match)."""
    arr = np.asarray(data, dtype=np.float64 if dtype is None else as_dtype(dtype).np_dtype)
    shape = _shape((shape,))
    if arr.size != math.prod(shape):
        raise ShapeError(f"from_list: {arr.size} values do not fill shape {shape}")
    return tensor(arr.reshape(shape), dtype=dtype or _defaults["dtype"], device=device)


_DLPACK_CUDA = 2  # kDLCUDA


def from_dlpack(obj, device=None) -> Tensor:
    """Import any ``__dlpack__`` object (torch, cupy, jax, NumPy) — zero-copy on CPU, and
    zero-copy on CUDA (a GPU array becomes a cuda tensor sharing its memory)."""
    where = obj.__dlpack_device__() if hasattr(obj, "__dlpack_device__") else None
    if where is not None and int(where[0]) == _DLPACK_CUDA:
        b = get_backend(Device("cuda", int(where[1])))
        storage, layout, dt = b.from_dlpack(obj)
        t = Tensor._make(storage, layout, dt, b)
        return t if device is None else t.to(as_device(device))
    return from_numpy(np.from_dlpack(obj), device)


def full(*shape, fill_value=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """``full(shape, value)`` or ``full(2, 3, fill_value=value)``."""
    if fill_value is None:
        shape, fill_value = shape[:-1], shape[-1]
    shape = _shape(shape)
    if dtype is None:
        dtype = (
            bool_
            if isinstance(fill_value, bool)
            else i64
            if isinstance(fill_value, int)
            else _defaults["dtype"]
        )
    dtype = as_dtype(dtype)
    b = _backend(device)
    return _finish(wrap(b.full(shape, fill_value, dtype), shape, dtype, b), requires_grad)


def zeros(*shape, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return full(
        _shape(shape),
        fill_value=0,
        dtype=dtype or _defaults["dtype"],
        device=device,
        requires_grad=requires_grad,
    )


def ones(*shape, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return full(
        _shape(shape),
        fill_value=1,
        dtype=dtype or _defaults["dtype"],
        device=device,
        requires_grad=requires_grad,
    )


empty = zeros


def _like(x: Tensor, dtype, device):
    return (dtype or x.dtype), (device or x.device)


def zeros_like(x: Tensor, dtype=None, device=None) -> Tensor:
    dtype, device = _like(x, dtype, device)
    return zeros(x.shape, dtype=dtype, device=device)


def ones_like(x: Tensor, dtype=None, device=None) -> Tensor:
    dtype, device = _like(x, dtype, device)
    return ones(x.shape, dtype=dtype, device=device)


def full_like(x: Tensor, fill_value, dtype=None, device=None) -> Tensor:
    dtype, device = _like(x, dtype, device)
    return full(x.shape, fill_value=fill_value, dtype=dtype, device=device)


def _float(dtype, op: str) -> DType:
    dtype = as_dtype(dtype) if dtype is not None else _defaults["dtype"]
    if not dtype.is_float:
        raise DTypeError(f"{op}: expected a floating-point dtype, got {dtype}")
    return dtype


def rand(*shape, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """U[0, 1) samples, reproducible under ``manual_seed``."""
    return uniform(_shape(shape), 0.0, 1.0, dtype=dtype, device=device, requires_grad=requires_grad)


def uniform(
    shape, low: float = 0.0, high: float = 1.0, dtype=None, device=None, requires_grad: bool = False
) -> Tensor:
    dtype, shape, b = _float(dtype, "uniform"), _shape((shape,)), _backend(device)
    s = b.rand_uniform(shape, dtype, float(low), float(high), _random.next_seed())
    return _finish(wrap(s, shape, dtype, b), requires_grad)


def randn(*shape, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """N(0, 1) samples, reproducible under ``manual_seed``."""
    return normal(_shape(shape), 0.0, 1.0, dtype=dtype, device=device, requires_grad=requires_grad)


def normal(
    shape, mean: float = 0.0, std: float = 1.0, dtype=None, device=None, requires_grad: bool = False
) -> Tensor:
    dtype, shape, b = _float(dtype, "normal"), _shape((shape,)), _backend(device)
    s = b.rand_normal(shape, dtype, float(mean), float(std), _random.next_seed())
    return _finish(wrap(s, shape, dtype, b), requires_grad)


def bernoulli(shape, p: float, dtype=None, device=None) -> Tensor:
    """1 with probability ``p``, else 0."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"bernoulli: p must be in [0, 1], got {p}")
    dtype, shape, b = as_dtype(dtype or _defaults["dtype"]), _shape((shape,)), _backend(device)
    return wrap(b.bernoulli(shape, float(p), dtype, _random.next_seed()), shape, dtype, b)


def randint(low: int, high: int | None = None, size=(), dtype=None, device=None) -> Tensor:
    """Integers uniform in [low, high) (``randint(high, size=...)`` also works)."""
    if high is None:
        low, high = 0, low
    if high <= low:
        raise ValueError(f"randint: high ({high}) must be greater than low ({low})")
    u = uniform(_shape((size,)), 0.0, 1.0, dtype="f64", device=device)
    return (u * (high - low)).floor().to(dtype or i64) + low


def rand_like(x: Tensor, dtype=None) -> Tensor:
    return rand(x.shape, dtype=dtype or x.dtype, device=x.device)


def randn_like(x: Tensor, dtype=None) -> Tensor:
    return randn(x.shape, dtype=dtype or x.dtype, device=x.device)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """``[start, end)`` by ``step``; integer args give i64, float args the default float. Like
    torch, an integer ``dtype`` truncates float arguments toward zero first."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange: step must be non-zero")
    is_int = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
    dtype = as_dtype(dtype) if dtype is not None else (i64 if is_int else _defaults["dtype"])
    if not dtype.is_float and not is_int:
        start, end, step = int(start), int(end), int(step)
        if step == 0:
            raise ValueError("arange: step truncates to zero for an integer dtype")
        is_int = True
    n = max(0, math.ceil((end - start) / step))
    vals = start + np.arange(n, dtype=np.float64 if not is_int else np.int64) * step
    return _finish(from_numpy(vals.astype(dtype.np_dtype), device), requires_grad)


def arange_step(start, end, step, dtype=None, device=None) -> Tensor:
    return arange(start, end, step, dtype=dtype, device=device)


def linspace(
    start, end, steps: int, dtype=None, device=None, requires_grad: bool = False
) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end`` (each a number or a 0-d
    tensor), computed like torch: from both ends towards the middle. An integer ``dtype``
    truncates ``start``/``end`` first and each value toward zero."""
    start, end = (_scalar_arg(v, "linspace") for v in (start, end))
    if steps < 0:
        raise ValueError(f"linspace: steps must be non-negative, got {steps}")
    dtype = as_dtype(dtype) if dtype is not None else _defaults["dtype"]
    if dtype is bool_:
        raise DTypeError("linspace: bool is not a supported dtype")
    if not dtype.is_float:
        start, end = int(start), int(end)
    i = np.arange(steps, dtype=np.float64)
    if steps == 1:
        vals = np.full(1, start, np.float64)
    else:
        step = (end - start) / (steps - 1)
        vals = np.where(i < steps // 2, start + step * i, end - step * (steps - 1 - i))
    vals = np.trunc(vals) if not dtype.is_float else vals
    return _finish(from_numpy(vals.astype(dtype.np_dtype), device), requires_grad)


def _scalar_arg(v, op: str):
    if isinstance(v, Tensor):
        if v.numel != 1:
            raise ShapeError(f"{op}: expected a number or a one-element tensor, got {v.shape}")
        return v.item()
    return v


def eye(
    n: int, m: int | None = None, dtype=None, device=None, requires_grad: bool = False
) -> Tensor:
    dtype = as_dtype(dtype) if dtype is not None else _defaults["dtype"]
    return _finish(from_numpy(np.eye(n, m, dtype=dtype.np_dtype), device), requires_grad)


def _tri(kind: str, x, m, diagonal, dtype, device) -> Tensor:
    if isinstance(x, Tensor):  # torch.triu(x, diagonal): zero out the other triangle
        diagonal = m if m is not None else diagonal
        rows, cols = x.shape[-2], x.shape[-1]
        mask = _tri_mask(kind, rows, cols, diagonal, x.device)
        return x.masked_fill(~mask, 0)
    n = int(x)
    m = n if m is None else int(m)
    dtype = as_dtype(dtype) if dtype is not None else _defaults["dtype"]
    return _tri_mask(kind, n, m, diagonal, device).to(dtype)


def _tri_mask(kind: str, n: int, m: int, diagonal: int, device) -> Tensor:
    i = np.arange(n)[:, None]
    j = np.arange(m)[None, :]
    mask = (j - i >= diagonal) if kind == "triu" else (j - i <= diagonal)
    return from_numpy(np.ascontiguousarray(mask), device)


def triu(x, m=None, diagonal: int = 0, dtype=None, device=None) -> Tensor:
    """``triu(tensor, diagonal)`` like torch, or the seed's ``triu(n, m, diagonal)`` matrix of
    ones where ``j >= i + diagonal``."""
    return _tri("triu", x, m, diagonal, dtype, device)


def tril(x, m=None, diagonal: int = 0, dtype=None, device=None) -> Tensor:
    return _tri("tril", x, m, diagonal, dtype, device)
