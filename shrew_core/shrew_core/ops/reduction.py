"""Reductions: sum, mean, prod, amax/amin, max/min (with indices), arg*, var/std,
logsumexp, cumsum, norm, all/any. ``dim`` is an int, a tuple or None (all dims)."""

from __future__ import annotations

import math

from .. import autocast as _ac
from ..autograd import no_grad, record
from ..dtypes import as_dtype, i64
from ..errors import DTypeError, ShapeError, fmt_shape
from ..tensor import Tensor, ValuesIndices
from . import elementwise as ew
from ._base import norm_dim, norm_dims, wrap


def _keep_shape(shape, dims):
    return tuple(1 if i in dims else d for i, d in enumerate(shape))


def _reduce(op: str, x: Tensor, dim, keepdim: bool) -> Tensor:
    shape = x.layout.shape
    dims = norm_dims(dim, len(shape), op)
    if not dims:  # nothing to reduce (0-d input): an identity copy keeps the graph
        return _identity(x)
    if _ac.state.dtype is not None and op in ("sum", "prod"):
        x = _ac.to_f32(x)
    if op in ("max", "min"):
        for d in dims:
            if shape[d] == 0:
                raise ShapeError(
                    f"{op}: cannot reduce over an empty dim {d} of shape {fmt_shape(shape)}"
                )
    if keepdim:
        out_shape = _keep_shape(shape, dims)
    elif len(dims) == len(shape):  # everything (dims are unique): a 0-d result
        out_shape = ()
    else:
        out_shape = tuple([d for i, d in enumerate(shape) if i not in dims])
    storage = x._backend.reduce(op, x._storage, x.layout, x.dtype, dims)
    out = wrap(storage, out_shape, x.dtype, x._backend)
    if x._requires_grad and x.dtype.is_float:  # max/min need the result (sum/prod do not)
        record(op, out, (x,), (dims, keepdim, out.detach() if op in ("max", "min") else None))
    return out


def _identity(x: Tensor) -> Tensor:
    return x.reshape(x.shape)


def sum(x: Tensor, dim=None, keepdim: bool = False, dtype=None) -> Tensor:  # noqa: A001
    """Sum; bool and integer inputs sum in int64 like PyTorch."""
    if dtype is not None:
        x = ew.cast(x, as_dtype(dtype))
    elif not x.dtype.is_float:
        x = ew.cast(x, i64)
    return _reduce("sum", x, dim, keepdim)


def sum_all(x: Tensor) -> Tensor:
    return sum(x)


def sum_to_shape(x: Tensor, shape: tuple[int, ...]) -> Tensor:
    """Sum a broadcast result back down to ``shape`` (the adjoint of broadcasting)."""
    lead = x.ndim - len(shape)
    dims = tuple(range(lead)) + tuple(
        lead + i for i, d in enumerate(shape) if d == 1 and x.shape[lead + i] != 1
    )
    out = sum(x, dims, keepdim=True) if dims else x
    return out.reshape(shape) if out.shape != shape else out


def _count(x: Tensor, dims) -> int:
    return math.prod(x.shape[d] for d in norm_dims(dims, x.ndim, "mean"))


def mean(x: Tensor, dim=None, keepdim: bool = False, dtype=None) -> Tensor:
    """Mean over ``dim``; integer inputs need a float ``dtype`` (the input is cast first)."""
    if dtype is not None:
        x = ew.cast(x, as_dtype(dtype))
    if not x.dtype.is_float:
        raise DTypeError(f"mean: expected a floating-point tensor, got {x.dtype}; cast first")
    n = _count(x, dim)
    s = _reduce("sum", x, dim, keepdim)
    return s / n if n else s * float("nan")


def mean_all(x: Tensor) -> Tensor:
    return mean(x)


def prod(x: Tensor, dim=None, keepdim: bool = False, dtype=None) -> Tensor:
    """Product; bool and integer inputs multiply in int64, ``dtype`` casts the input first."""
    if dtype is not None:
        x = ew.cast(x, as_dtype(dtype))
    elif not x.dtype.is_float:
        x = ew.cast(x, i64)
    return _reduce("prod", x, dim, keepdim)


def amax(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """Maximum over ``dim``; ties share the gradient equally."""
    return _reduce("max", x, dim, keepdim)


def amin(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    return _reduce("min", x, dim, keepdim)


def _arg(op: str, x: Tensor, dim, keepdim: bool) -> Tensor:
    if dim is None:
        flat = x.reshape(-1)
        if flat.numel == 0:
            raise ShapeError(f"{op}: empty tensor of shape {fmt_shape(x.shape)}")
        out = wrap(
            x._backend.arg_reduce(op, flat._storage, flat.layout, x.dtype, 0), (), i64, x._backend
        )
        return out.reshape((1,) * x.ndim) if keepdim else out
    d = norm_dim(dim, x.ndim, op)
    if x.ndim == 0:
        return wrap(x._backend.full((), 0, i64), (), i64, x._backend)
    if x.shape[d] == 0:
        raise ShapeError(f"{op}: cannot reduce over an empty dim {d} of {fmt_shape(x.shape)}")
    storage = x._backend.arg_reduce(op, x._storage, x.layout, x.dtype, d)
    shape = tuple(s for i, s in enumerate(x.shape) if i != d)
    out = wrap(storage, shape, i64, x._backend)
    return out.unsqueeze(d) if keepdim else out


def argmax(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    return _arg("argmax", x, dim, keepdim)


def argmin(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    return _arg("argmin", x, dim, keepdim)


def _max_min(kind: str, x: Tensor, dim, keepdim: bool):
    if isinstance(dim, Tensor):  # torch.max(a, b) is maximum
        return ew.binary("maximum" if kind == "max" else "minimum", x, dim)
    if dim is None:
        return _reduce(kind, x, None, False)
    d = norm_dim(dim, x.ndim, kind)
    idx = _arg("arg" + kind, x, d, True)
    values = x.gather(d, idx) if x.ndim else x.reshape(())
    if not keepdim and x.ndim:
        values, idx = values.squeeze(d), idx.squeeze(d)
    return ValuesIndices(values, idx)


def max(x: Tensor, dim=None, keepdim: bool = False):  # noqa: A001
    """``max()`` -> tensor; ``max(dim)`` -> (values, indices); ``max(other)`` -> maximum."""
    return _max_min("max", x, dim, keepdim)


def min(x: Tensor, dim=None, keepdim: bool = False):  # noqa: A001
    return _max_min("min", x, dim, keepdim)


def var(
    x: Tensor,
    dim=None,
    keepdim: bool = False,
    *,
    correction: int | None = None,
    unbiased: bool | None = None,
) -> Tensor:
    """Variance with Bessel's correction by default (``correction=1``) like PyTorch."""
    if correction is None:
        correction = 0 if unbiased is False else 1
    if not x.dtype.is_float:
        raise DTypeError(f"var: expected a floating-point tensor, got {x.dtype}")
    n = _count(x, dim)
    centered = x - mean(x, dim, keepdim=True)
    total = sum(centered * centered, dim, keepdim)
    denom = n - correction
    return total / denom if denom > 0 else total * float("nan")


def std(
    x: Tensor,
    dim=None,
    keepdim: bool = False,
    *,
    correction: int | None = None,
    unbiased: bool | None = None,
) -> Tensor:
    return var(x, dim, keepdim, correction=correction, unbiased=unbiased).sqrt()


def logsumexp(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """``log(sum(exp(x)))`` computed stably around the (detached) maximum."""
    x = ew.cast(x, as_dtype("f32")) if not x.dtype.is_float else _ac.to_f32(x)
    dims = norm_dims(dim, x.ndim, "logsumexp")
    if 0 in [x.shape[d] for d in dims]:  # an empty sum: log(0) = -inf, like torch
        out = x.exp().sum(dims, keepdim=True).log()
        return out if keepdim else out.squeeze(dims)
    m = amax(x.detach(), dims, keepdim=True)
    m = ew.where(m.abs() == float("inf"), 0.0, m)
    out = (x - m).exp().sum(dims, keepdim=True).log() + m
    return out if keepdim else out.squeeze(dims)


def cumsum(x: Tensor, dim: int, dtype=None) -> Tensor:
    """Inclusive prefix sum along ``dim``; integers sum in int64, ``dtype`` casts first."""
    d = norm_dim(dim, x.ndim, "cumsum")
    if dtype is not None:
        x = ew.cast(x, as_dtype(dtype))
    else:
        x = ew.cast(x, i64) if not x.dtype.is_float else _ac.to_f32(x)
    if x.ndim == 0:
        return _identity(x)
    out = wrap(x._backend.cumsum(x._storage, x.layout, x.dtype, d), x.shape, x.dtype, x._backend)
    return record("cumsum", out, (x,), d) if x.dtype.is_float else out


def norm(x: Tensor, p=2.0, dim=None, keepdim: bool = False, dtype=None) -> Tensor:
    """Vector p-norm over ``dim`` (all elements by default), like ``torch.linalg.vector_norm``:
    ``p`` may be ``inf`` (max |x|), ``-inf`` (min |x|), 0 (the count of non-zeros), any
    other number, or ``"fro"`` (= 2). Gradients follow torch, including 0 at a zero norm."""
    if p == "fro":
        p = 2.0
    if isinstance(p, str):
        raise NotImplementedError(f"norm: p={p!r} (matrix norms other than 'fro')")
    p = float(p)
    if dtype is not None:
        x = ew.cast(x, as_dtype(dtype))
    if not x.dtype.is_float:
        raise DTypeError(f"norm: expected a floating-point tensor, got {x.dtype}; pass dtype=")
    dims = norm_dims(dim, x.ndim, "norm")
    with no_grad():
        a = x.abs()
        if math.isinf(p):
            out = (amax if p > 0 else amin)(a, dims, keepdim)
        elif p == 0:
            out = ew.cast(a != 0, x.dtype).sum(dims, keepdim)
        elif p == 1:
            out = sum(a, dims, keepdim)
        elif p == 2:
            out = sum(a * a, dims, keepdim).sqrt()
        else:
            out = sum(a**p, dims, keepdim) ** (1.0 / p)
    return record("norm", out, (x,), (p, dims, keepdim, out.detach()))


def all(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:  # noqa: A001
    return ew.cast(ew.logical_not(x), i64).sum(dim, keepdim) == 0


def any(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:  # noqa: A001
    return ew.cast(x != 0, i64).sum(dim, keepdim) > 0
