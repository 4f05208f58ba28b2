"""Matrix products: matmul (NumPy semantics: 1-D cases, broadcast batch dims), mm, bmm,
dot, outer, linear."""

from __future__ import annotations

from .. import autocast as _ac
from ..autograd import no_grad, record
from ..dtypes import bool_, promote_types
from ..errors import DTypeError, ShapeError, fmt_shape
from ..layout import Layout
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
    if a.dtype is not dtype:
        a = ew.cast(a, dtype)
    if b.dtype is not dtype:
        b = ew.cast(b, dtype)
    squeeze_a, squeeze_b = a.ndim == 1, b.ndim == 1
    a2 = sh.unsqueeze(a, 0) if squeeze_a else a
    b2 = sh.unsqueeze(b, 1) if squeeze_b else b
    la, lb = a2.layout, b2.layout
    m, k = la.shape[-2:]
    k2, n = lb.shape[-2:]
    if k != k2:
        raise ShapeError(
            f"matmul: shape mismatch lhs={fmt_shape(a.shape)} rhs={fmt_shape(b.shape)} "
            f"(inner dims {k} != {k2})"
        )
    if len(la.shape) == 2 and len(lb.shape) == 2:  # no batch: the layouts as they are
        batch = ()
    else:
        batch = broadcast_shape("matmul", la.shape[:-2], lb.shape[:-2])
        la = la.broadcast_to(batch + (m, k))
        lb = lb.broadcast_to(batch + (k, n))
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
    be, dtype, lx = x._backend, x.dtype, x.layout
    if (len(lx.shape) >= 2 and dtype.is_float and weight.dtype is dtype and weight._backend is be
            and (bias is None or (bias.dtype is dtype and bias._backend is be))):  # fmt: skip
        # the common case straight to the backend: one GEMM on weight's transposed view
        # (a right operand broadcast over x's batch dims, as matmul passes it), one add
        n, k = weight.layout.shape
        out_shape = lx.shape[:-1] + (n,)
        lw = weight.layout.transpose(0, 1)
        if len(lx.shape) > 2:
            lw = lw.broadcast_to(lx.shape[:-2] + (k, n))
        storage = be.matmul(x._storage, lx, weight._storage, lw, dtype)
        if bias is not None:
            storage = be.binary("add", storage, Layout.contiguous(out_shape), bias._storage,
                                bias.layout.broadcast_to(out_shape), dtype)  # fmt: skip
        out = wrap(storage, out_shape, dtype, be)
    else:  # 1-D input, mixed dtypes or devices: matmul and add promote and check
        weight_t = Tensor._make(weight._storage, weight.layout.transpose(0, 1), weight.dtype,
                                weight._backend)  # fmt: skip - a view, in no graph
        with no_grad():
            out = matmul(x, weight_t)
            if bias is not None:
                out = out + bias
    inputs = (x, weight) if bias is None else (x, weight, bias)
    if out.dtype.is_float:
        record("linear", out, inputs)
    return out
