"""Matrix products: matmul (NumPy semantics: 1-D cases, broadcast batch dims), mm, bmm,
dot, outer, linear."""

from __future__ import annotations

from .. import autocast as _ac
from ..autograd import no_grad, record
from ..dtypes import bool_, promote_types
from ..errors import DTypeError, ShapeError, fmt_shape
from ..tensor import Tensor
from . import elementwise as ew
from . import shape as sh
from ._base import broadcast_shape, check_device, wrap


def matmul(a: Tensor, b: Tensor) -> Tensor:
    """Like ``numpy.matmul``: 1-D operands are promoted to matrices and the added dim is
    removed afterwards; batch dims broadcast."""
    if not isinstance(a, Tensor) or not isinstance(b, Tensor):
        raise TypeError("matmul: both operands must be Tensors")
    check_device("matmul", a, b)
    if _ac.state.dtype is not None:
        a, b = _ac.to_low(a), _ac.to_low(b)
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError(
            f"matmul: both operands need at least 1 dim, got {fmt_shape(a.shape)} and "
            f"{fmt_shape(b.shape)}"
        )
    dtype = a.dtype if a.dtype is b.dtype else promote_types(a.dtype, b.dtype)
    if dtype is bool_:
        raise DTypeError("matmul: bool operands are not supported")
    a, b = ew.cast(a, dtype), ew.cast(b, dtype)
    squeeze_a, squeeze_b = a.ndim == 1, b.ndim == 1
    a2 = sh.unsqueeze(a, 0) if squeeze_a else a
    b2 = sh.unsqueeze(b, 1) if squeeze_b else b
    m, k = a2.shape[-2:]
    k2, n = b2.shape[-2:]
    if k != k2:
        raise ShapeError(
            f"matmul: shape mismatch lhs={fmt_shape(a.shape)} rhs={fmt_shape(b.shape)} "
            f"(inner dims {k} != {k2})"
        )
    batch = broadcast_shape("matmul", a2.shape[:-2], b2.shape[:-2])
    la = a2.layout.broadcast_to(batch + (m, k))
    lb = b2.layout.broadcast_to(batch + (k, n))
    storage = a._backend.matmul(a2._storage, la, b2._storage, lb, dtype)
    out = wrap(storage, batch + (m, n), dtype, a._backend)
    if dtype.is_float:
        record("matmul", out, (a2, b2))
    if squeeze_a:
        out = sh.squeeze(out, -2)
    if squeeze_b:
        out = sh.squeeze(out, -1)
    return out


def mm(a: Tensor, b: Tensor) -> Tensor:
    if a.ndim != 2 or b.ndim != 2:
        raise ShapeError(
            f"mm: expected 2-D operands, got {fmt_shape(a.shape)} and {fmt_shape(b.shape)}"
        )
    return matmul(a, b)


def bmm(a: Tensor, b: Tensor) -> Tensor:
    if a.ndim != 3 or b.ndim != 3 or a.shape[0] != b.shape[0]:
        raise ShapeError(
            f"bmm: expected 3-D operands with equal batch, got {fmt_shape(a.shape)} "
            f"and {fmt_shape(b.shape)}"
        )
    return matmul(a, b)


def dot(a: Tensor, b: Tensor) -> Tensor:
    if a.ndim != 1 or b.ndim != 1:
        raise ShapeError(
            f"dot: expected 1-D operands, got {fmt_shape(a.shape)} and {fmt_shape(b.shape)}"
        )
    return matmul(a, b)


def outer(a: Tensor, b: Tensor) -> Tensor:
    return sh.unsqueeze(a, 1) * sh.unsqueeze(b, 0)


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x @ weight.T + bias`` with weight [out, in] (PyTorch's layout), as ONE graph node:
    its gradient computes ``dW = g.T @ x`` directly in weight's contiguous layout and
    ``db`` as a row sum, instead of going through transpose/matmul/add nodes."""
    if x.ndim == 0 or weight.ndim != 2 or x.shape[-1] != weight.shape[1]:
        raise ShapeError(
            f"linear: input {fmt_shape(x.shape)} does not match weight {fmt_shape(weight.shape)} "
            "(expected input [..., in] and weight [out, in])"
        )
    if bias is not None and bias.shape not in ((weight.shape[0],), (1, weight.shape[0])):
        raise ShapeError(
            f"linear: bias {fmt_shape(bias.shape)} does not match weight {fmt_shape(weight.shape)}"
        )
    if _ac.state.dtype is not None:
        x, weight, bias = _ac.to_low(x), _ac.to_low(weight), _ac.to_low(bias)
    with no_grad():
        out = matmul(x, sh.t(weight))
        if bias is not None:
            out = out + bias
    inputs = (x, weight) if bias is None else (x, weight, bias)
    if out.dtype.is_float:
        record("linear", out, inputs)
    return out
