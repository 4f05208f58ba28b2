"""Sorting: sort, argsort, topk (values differentiable through their indices), kthvalue."""

from __future__ import annotations

from ..autograd import record
from ..dtypes import i64
from ..errors import ShapeError
from ..tensor import Tensor, ValuesIndices
from . import shape as sh
from ._base import norm_dim, wrap


def sort(x: Tensor, dim: int = -1, descending: bool = False, stable: bool = True) -> ValuesIndices:
    """Stable sort along ``dim``: (values, int64 indices); NaN sorts as the largest value."""
    if x.ndim == 0:
        return ValuesIndices(x.reshape(()), wrap(x._backend.full((), 0, i64), (), i64, x._backend))
    d = norm_dim(dim, x.ndim, "sort")
    vals, idx = x._backend.sort(x._storage, x.layout, x.dtype, d, bool(descending))
    indices = wrap(idx, x.shape, i64, x._backend)
    values = wrap(vals, x.shape, x.dtype, x._backend)
    if x.dtype.is_float:
        record("gather", values, (x,), (d, indices, x.shape))
    return ValuesIndices(values, indices)


def argsort(x: Tensor, dim: int = -1, descending: bool = False, stable: bool = True) -> Tensor:
    return sort(x, dim, descending).indices


def topk(
    x: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True
) -> ValuesIndices:  # noqa: A002 - torch keyword
    """The ``k`` largest (or smallest) entries along ``dim``, as (values, indices)."""
    d = norm_dim(dim, x.ndim, "topk")
    size = x.shape[d] if x.ndim else 1
    if not 0 <= k <= size:
        raise ShapeError(f"topk: k={k} is out of range for dim {d} of size {size}")
    values, indices = sort(x, d, descending=largest)
    if x.ndim == 0:
        return ValuesIndices(values, indices)
    return ValuesIndices(sh.narrow(values, d, 0, k), sh.narrow(indices, d, 0, k))


def kthvalue(x: Tensor, k: int, dim: int = -1, keepdim: bool = False) -> ValuesIndices:
    """The k-th smallest entry (1-based) along ``dim``."""
    d = norm_dim(dim, x.ndim, "kthvalue")
    size = x.shape[d] if x.ndim else 1
    if not 1 <= k <= size:
        raise ShapeError(f"kthvalue: k={k} is out of range for dim {d} of size {size}")
    if x.ndim == 0:
        return sort(x)
    values, indices = sort(x, d)
    v, i = sh.narrow(values, d, k - 1, 1), sh.narrow(indices, d, k - 1, 1)
    return ValuesIndices(v, i) if keepdim else ValuesIndices(sh.squeeze(v, d), sh.squeeze(i, d))
