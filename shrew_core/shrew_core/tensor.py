"""The Tensor: storage + Layout + dtype + backend (device) + autograd node.

Methods are thin: each forwards to a function in ``shrew_core.ops`` (the free
functions users can also call), which validates, promotes, broadcasts, calls the
backend and records the autograd node. Hashing is identity-based, so tensors
work as dict keys (GradStore) even though ``==`` is elementwise.
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any

import numpy as np

from .backend import Backend
from .device import Device
from .dtypes import DType
from .errors import DTypeError, ShapeError, fmt_shape
from .layout import Layout

ValuesIndices = namedtuple("ValuesIndices", ["values", "indices"])


class Tensor:
    __slots__ = (
        "_storage",
        "layout",
        "dtype",
        "_backend",
        "_node",
        "_requires_grad",
        "__weakref__",
    )

    def __init__(self, *args, **kwargs):
        raise TypeError("create tensors with shrew_core.tensor(...), zeros(...), from_numpy(...)")

    @classmethod
    def _make(cls, storage: Any, layout: Layout, dtype: DType, backend: Backend) -> Tensor:
        t = object.__new__(cls)
        t._storage = storage
        t.layout = layout
        t.dtype = dtype
        t._backend = backend
        t._node = None
        t._requires_grad = False
        return t

    # ------------------------------------------------------------------ metadata
    @property
    def shape(self) -> tuple[int, ...]:
        return self.layout.shape

    def size(self, dim: int | None = None):
        return self.shape if dim is None else self.shape[_ops.norm_dim(dim, self.ndim, "size")]

    dims = shape

    @property
    def ndim(self) -> int:
        return len(self.layout.shape)

    rank = ndim

    def dim(self) -> int:
        return self.ndim

    @property
    def numel(self) -> int:
        return self.layout.numel

    def stride(self) -> tuple[int, ...]:
        return self.layout.strides

    @property
    def device(self) -> Device:
        return self._backend.device

    @property
    def backend(self) -> Backend:
        return self._backend

    def is_contiguous(self) -> bool:
        return self.layout.is_contiguous()

    @property
    def is_floating_point(self) -> bool:
        return self.dtype.is_float

    # ------------------------------------------------------------------ autograd
    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        self.requires_grad_(value)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Mark this leaf as a variable (in place; returns self)."""
        if requires_grad and not self.dtype.is_float:
            raise DTypeError(
                f"requires_grad_: only floating-point tensors can require grad, got {self.dtype}"
            )
        if self._node is not None and not requires_grad:
            raise ValueError("requires_grad_(False) on a non-leaf: use detach() instead")
        self._requires_grad = requires_grad
        return self

    def set_variable(self) -> Tensor:
        return self.requires_grad_(True)

    def freeze(self) -> Tensor:
        return self.requires_grad_(False)

    def unfreeze(self) -> Tensor:
        return self.requires_grad_(True)

    @property
    def is_leaf(self) -> bool:
        return self._node is None

    @property
    def grad_fn(self):
        return self._node

    def detach(self) -> Tensor:
        """A new handle on the same storage, cut from the graph."""
        return Tensor._make(self._storage, self.layout, self.dtype, self._backend)

    @property
    def data(self) -> Tensor:
        """This tensor cut from the graph (``detach()``); assigning replaces the contents
        in place — storage, shape, dtype and device — keeping the object, like PyTorch."""
        return self.detach()

    @data.setter
    def data(self, other: Tensor) -> None:
        if not isinstance(other, Tensor):
            raise TypeError(f"data must be a Tensor, got {type(other).__name__}")
        self._storage, self.layout = other._storage, other.layout
        self.dtype, self._backend = other.dtype, other._backend

    def backward(self, grad: Tensor | None = None):
        from .autograd import backward

        return backward(self, grad)

    # ------------------------------------------------------------------ conversion
    def numpy(self) -> np.ndarray:
        """A NumPy array (a zero-copy view for CPU tensors; read-only when it aliases a
        tensor that requires grad is not enforced — like torch, prefer .detach())."""
        return self._backend.to_numpy(self._storage, self.layout, self.dtype)

    to_numpy = numpy

    def __array__(self, dtype=None, copy=None):
        arr = self.numpy()
        if dtype is not None:
            arr = arr.astype(dtype, copy=False)
        return np.array(arr, copy=True) if copy else arr

    def tolist(self):
        return self.numpy().tolist()

    def to_list(self) -> list:
        """The seed's flat list of values."""
        return self.numpy().reshape(-1).tolist()

    def item(self):
        if self.numel != 1:
            raise ShapeError(
                "item: only one-element tensors can be converted, got shape "
                f"{fmt_shape(self.shape)}"
            )
        return self.numpy().reshape(-1)[0].item()

    def __dlpack__(self, stream=None, **kwargs):
        export = getattr(self._backend, "dlpack", None)  # device backends: zero-copy export
        if export is not None:
            return export(self._storage, self.layout, self.dtype, stream=stream)
        return np.ascontiguousarray(self.numpy()).__dlpack__(**kwargs)

    def __dlpack_device__(self):
        device = getattr(self._backend, "dlpack_device", None)
        return device() if device is not None else self.numpy().__dlpack_device__()

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __bool__(self) -> bool:
        if self.numel != 1:
            raise ValueError(
                f"the truth value of a tensor of shape {fmt_shape(self.shape)} is ambiguous"
            )
        return bool(self.item())

    def __index__(self) -> int:
        if self.dtype.is_float or self.numel != 1:
            raise TypeError("only integer one-element tensors can be used as an index")
        return int(self.item())

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self):
        if not self.shape:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        extra = f", dtype={self.dtype}" if self.dtype.name != "float32" else ""
        if self.device.type != "cpu":
            extra += f", device='{self.device}'"
        if self._requires_grad:
            extra += ", requires_grad=True"
        with np.printoptions(precision=4, threshold=1000, edgeitems=3):
            body = np.array2string(
                self.numpy().astype(np.float32)
                if self.dtype.itemsize == 2 and self.dtype.is_float
                else self.numpy(),
                separator=", ",
                prefix="tensor(",
            )
        return f"tensor({body}{extra})"

    # ------------------------------------------------------------------ operators
    def __add__(self, o):
        return _binary("add", self, o)

    def __radd__(self, o):
        return _binary("add", o, self)

    def __sub__(self, o):
        return _binary("sub", self, o)

    def __rsub__(self, o):
        return _binary("sub", o, self)

    def __mul__(self, o):
        return _binary("mul", self, o)

    def __rmul__(self, o):
        return _binary("mul", o, self)

    def __truediv__(self, o):
        return _binary("div", self, o)

    def __rtruediv__(self, o):
        return _binary("div", o, self)

    def __floordiv__(self, o):
        return _ops.floor_divide(self, o)

    def __rfloordiv__(self, o):
        return _ops.floor_divide(o, self)

    def __mod__(self, o):
        return _ops.remainder(self, o)

    def __rmod__(self, o):
        return _ops.remainder(o, self)

    def __pow__(self, o):
        return _ops.pow(self, o)

    def __rpow__(self, o):
        return _ops.pow(o, self)

    def __matmul__(self, o):
        return _ops.matmul(self, o)

    def __rmatmul__(self, o):
        return _ops.matmul(o, self)

    def __neg__(self):
        return _ops.neg(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return _ops.abs(self)

    def __invert__(self):
        return _ops.logical_not(self)

    def __and__(self, o):
        return _ops.logical_and(self, o)

    def __or__(self, o):
        return _ops.logical_or(self, o)

    def __xor__(self, o):
        return _ops.logical_xor(self, o)

    def __eq__(self, o):  # type: ignore[override]
        return _ops.eq(self, o)

    def __ne__(self, o):  # type: ignore[override]
        return _ops.ne(self, o)

    def __lt__(self, o):
        return _ops.lt(self, o)

    def __le__(self, o):
        return _ops.le(self, o)

    def __gt__(self, o):
        return _ops.gt(self, o)

    def __ge__(self, o):
        return _ops.ge(self, o)

    def __getitem__(self, key):
        return _ops.getitem(self, key)

    def __setitem__(self, key, value) -> None:
        _ops.setitem(self, key, value)

    # ------------------------------------------------------------------ properties as views
    @property
    def T(self) -> Tensor:  # noqa: N802 - NumPy/PyTorch spelling
        return _ops.permute(self, tuple(range(self.ndim - 1, -1, -1)))

    @property
    def mT(self) -> Tensor:  # noqa: N802
        return _ops.transpose(self, -2, -1)


def install_methods(ops_module) -> None:
    """Bind ``ops`` (imported after this module) and expose ``ops.METHODS`` as methods."""
    global _ops, _binary
    _ops, _binary = ops_module, ops_module.binary
    for name in ops_module.METHODS:
        if not hasattr(Tensor, name):
            setattr(Tensor, name, getattr(ops_module, name))
    Tensor.where = ops_module._method_where


_ops = None  # set by install_methods when shrew_core.ops is imported
_binary = None  # ops.binary, likewise: the arithmetic operators call it directly
