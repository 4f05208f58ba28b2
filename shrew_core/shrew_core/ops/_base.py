"""Helpers shared by every op family: dim normalisation, scalar operands, wrapping."""

from __future__ import annotations

from ..autograd import record
from ..dtypes import DType, as_dtype, promote_types, result_type_with_scalar
from ..errors import DeviceError, DimError, DTypeError, ShapeError, fmt_shape
from ..layout import _CONTIGUOUS, Layout, broadcast_shapes
from ..tensor import Tensor


def wrap(storage, layout_or_shape, dtype: DType, backend) -> Tensor:
    """A new result tensor (no graph node) on ``storage``: ``layout_or_shape`` is its Layout
    or the shape of a contiguous one. Runs once per op: ``Tensor._make`` inlined."""
    if type(layout_or_shape) is tuple:
        layout = _CONTIGUOUS.get(layout_or_shape) or Layout.contiguous(layout_or_shape)
    elif isinstance(layout_or_shape, Layout):
        layout = layout_or_shape
    else:
        layout = Layout.contiguous(tuple(layout_or_shape))
    t = _new_tensor(Tensor)
    t._storage = storage
    t.layout = layout
    t.dtype = dtype
    t._backend = backend
    t._node = None
    t._requires_grad = False
    return t


_new_tensor = object.__new__


def dense(t: Tensor) -> Tensor:
    """``t`` itself if its storage holds it contiguously from offset 0, else a contiguous copy.
    Use before handing a bare storage (no layout) to a backend."""
    if t.layout.offset == 0 and t.layout.is_contiguous():
        return t
    out = wrap(t._backend.copy(t._storage, t.layout, t.dtype), t.shape, t.dtype, t._backend)
    return record("clone", out, (t,))


def norm_dim(dim: int, ndim: int, op: str) -> int:
    """Wrap a negative dim; a 0-d tensor accepts dims -1 and 0 like PyTorch."""
    n = max(ndim, 1)
    if not isinstance(dim, int) or isinstance(dim, bool):
        raise TypeError(f"{op}: dim must be an int, got {type(dim).__name__}")
    if not -n <= dim < n:
        raise DimError(
            f"{op}: dim {dim} is out of range for a tensor of rank {ndim} (expected {-n}..{n - 1})"
        )
    return dim % n if ndim else 0


def norm_dims(dim, ndim: int, op: str) -> tuple[int, ...]:
    """``None`` or an empty sequence -> every dim (like PyTorch); an int or a sequence ->
    sorted unique non-negative dims."""
    if dim is None:
        return tuple(range(ndim))
    if isinstance(dim, int):
        return (norm_dim(dim, ndim, op),) if ndim else ()
    dim = tuple(dim)
    if not dim:
        return tuple(range(ndim))
    dims = tuple(sorted({norm_dim(d, ndim, op) for d in dim}))
    if len(dims) != len(dim):
        raise DimError(f"{op}: dim {tuple(dim)} repeats a dimension")
    return dims if ndim else ()


def check_device(op: str, a: Tensor, b: Tensor) -> None:
    if a._backend is not b._backend:
        raise DeviceError(
            f"{op}: expected all tensors on one device, got {a.device} and {b.device}"
        )


def scalar_tensor(value, dtype: DType, like: Tensor) -> Tensor:
    return wrap(like._backend.full((), value, dtype), (), dtype, like._backend)


_WEAK = (int, float)  # exact Python scalar types that never change a float tensor's dtype


def operands(op: str, a, b) -> tuple[Tensor, Tensor, DType]:
    """Turn (tensor|scalar, tensor|scalar) into two tensors of one promoted dtype."""
    if isinstance(a, Tensor):
        if isinstance(b, Tensor) and a.dtype is b.dtype and a._backend is b._backend:
            return a, b, a.dtype  # the common case: nothing to promote or convert
        if type(b) in _WEAK and a.dtype.is_float:  # a float tensor keeps its dtype
            return a, scalar_tensor(b, a.dtype, a), a.dtype
        if isinstance(b, Tensor):
            check_device(op, a, b)
            dtype = a.dtype if a.dtype is b.dtype else promote_types(a.dtype, b.dtype)
        else:
            dtype = _scalar_dtype(op, a.dtype, b)
            b = scalar_tensor(b, dtype, a)
    elif isinstance(b, Tensor):
        if type(a) in _WEAK and b.dtype.is_float:
            return scalar_tensor(a, b.dtype, b), b, b.dtype
        dtype = _scalar_dtype(op, b.dtype, a)
        a = scalar_tensor(a, dtype, b)
    elif isinstance(a, (bool, int, float)) and isinstance(b, (bool, int, float)):
        from .creation import tensor  # two numbers: a 0-d result, like torch.add(7, 9)

        return operands(op, tensor(a), b)
    else:
        raise TypeError(
            f"{op}: expected at least one Tensor, got {type(a).__name__} and {type(b).__name__}"
        )
    return a, b, dtype


def _scalar_dtype(op: str, dtype: DType, value) -> DType:
    try:
        return result_type_with_scalar(dtype, value)
    except DTypeError:
        raise TypeError(
            f"{op}: unsupported operand type {type(value).__name__} (expected Tensor or number)"
        ) from None


def broadcast_shape(op: str, *shapes: tuple[int, ...]) -> tuple[int, ...]:
    out = shapes[0]
    for s in shapes[1:]:
        res = broadcast_shapes(out, s)
        if res is None:
            raise ShapeError(
                f"{op}: shapes "
                + " and ".join(fmt_shape(x) for x in shapes)
                + " are not broadcast-compatible"
            )
        out = res
    return out


def broadcast_pair(op: str, la: Layout, lb: Layout) -> tuple[tuple[int, ...], Layout, Layout]:
    """The broadcast shape of two operands and their layouts over it: each its own where its
    shape already is that shape, zero strides for a 0-d one (a Python scalar)."""
    if la.shape == lb.shape:
        return la.shape, la, lb
    if not lb.shape:  # tensor <op> scalar: its one element everywhere
        shape = la.shape
        return shape, la, Layout(shape, (0,) * len(shape), lb.offset)
    if not la.shape:
        shape = lb.shape
        return shape, Layout(shape, (0,) * len(shape), la.offset), lb
    shape = broadcast_shape(op, la.shape, lb.shape)
    return (shape, la if la.shape == shape else la.broadcast_to(shape),
            lb if lb.shape == shape else lb.broadcast_to(shape))  # fmt: skip


def float_dtype_for(op: str, dtype: DType) -> DType:
    """Integer/bool inputs of float-valued ops compute in the default float dtype."""
    return dtype if dtype.is_float else as_dtype("f32")


def require_float(op: str, t: Tensor) -> None:
    if not t.dtype.is_float:
        raise DTypeError(f"{op}: expected a floating-point tensor, got {t.dtype}")
