"""Indexing: index_select/gather and their scatter adjoints, one_hot, ``x[key]`` and
``x[key] = v``, and the in-place writes (copy_, fill_, zero_)."""

from __future__ import annotations

import numpy as np

from ..autograd import record
from ..dtypes import bool_, i64
from ..errors import AutogradError, DTypeError, IndexOutOfRangeError, ShapeError, fmt_shape
from ..layout import Layout
from ..tensor import Tensor
from . import elementwise as ew
from . import shape as sh
from ._base import check_device, norm_dim, wrap


def _index_tensor(op: str, index, like: Tensor) -> Tensor:
    if not isinstance(index, Tensor):
        from .creation import tensor

        index = tensor(np.asarray(index, dtype=np.int64), device=like.device)
    check_device(op, like, index)
    if index.dtype.is_float or index.dtype is bool_:
        raise DTypeError(f"{op}: index must be an integer tensor, got {index.dtype}")
    return ew.cast(index, i64)


def index_select(x: Tensor, dim: int, index) -> Tensor:
    """Positions ``index`` (1-D integers, or 0-d) along ``dim``."""
    d = norm_dim(dim, x.ndim, "index_select")
    index = _index_tensor("index_select", index, x)
    if index.ndim > 1:
        raise ShapeError(f"index_select: index must be 1-D, got shape {fmt_shape(index.shape)}")
    index = index.reshape(-1)
    if x.ndim == 0:  # like torch: a 0-d input gives a 0-d result
        if index.numel != 1:
            raise ShapeError(f"index_select: a 0-d input takes one index, got {index.numel}")
        return index_select(x.reshape(1), 0, index).reshape(())
    storage = x._backend.index_select(
        x._storage, x.layout, x.dtype, d, index._storage, index.layout
    )
    shape = x.shape[:d] + (index.shape[0],) + x.shape[d + 1 :]
    out = wrap(storage, shape, x.dtype, x._backend)
    return record("index_select", out, (x,), (d, index)) if x.dtype.is_float else out


def embedding(weight: Tensor, indices) -> Tensor:
    """Rows of ``weight`` [N, D] for integer ``indices`` of any shape -> indices.shape + [D]."""
    indices = _index_tensor("embedding", indices, weight)
    rows = index_select(weight, 0, indices.reshape(-1))
    return rows.reshape(indices.shape + weight.shape[1:])


def index_add(x: Tensor, dim: int, index, source: Tensor, alpha=1) -> Tensor:
    """``x`` with ``alpha * source`` slices added at ``index`` along ``dim`` (out of place)."""
    d = norm_dim(dim, x.ndim, "index_add")
    index = _index_tensor("index_add", index, x).reshape(-1)
    source = ew.cast(source, x.dtype)
    if alpha != 1:
        source = source * alpha
    if x.ndim == 0:  # a 0-d input is one slot
        return index_add(x.reshape(1), 0, index, source.reshape(-1)).reshape(())
    expect = x.shape[:d] + (index.shape[0],) + x.shape[d + 1 :]
    if source.shape != expect:
        raise ShapeError(
            f"index_add: source shape {fmt_shape(source.shape)} != {fmt_shape(expect)}"
        )
    added = _scatter_rows(x, d, index, source)
    return x + added


def _scatter_rows(like: Tensor, d: int, index: Tensor, src: Tensor) -> Tensor:
    storage = like._backend.index_add(
        like.shape, d, index._storage, index.layout, src._storage, src.layout, src.dtype
    )
    out = wrap(storage, like.shape, src.dtype, like._backend)
    return record("index_add", out, (src,), (d, index)) if src.dtype.is_float else out


def _check_gather(op: str, x: Tensor, d: int, index: Tensor) -> None:
    if index.ndim != x.ndim:
        raise ShapeError(
            f"{op}: index rank {index.ndim} != input rank {x.ndim} "
            f"(index {fmt_shape(index.shape)}, input {fmt_shape(x.shape)})"
        )
    for i, (a, b) in enumerate(zip(index.shape, x.shape)):
        if i != d and a > b:
            raise ShapeError(
                f"{op}: index {fmt_shape(index.shape)} is larger than input "
                f"{fmt_shape(x.shape)} in dim {i}"
            )


def gather(x: Tensor, dim: int, index) -> Tensor:
    """torch.gather: ``out[i][j] = x[index[i][j]][j]`` for dim 0 (and so on). Like torch, 0-d
    and 1-D operands mix, and an empty index gives an empty result of its shape."""
    d = norm_dim(dim, x.ndim, "gather")
    index = _index_tensor("gather", index, x)
    if index.numel == 0:
        return sh.reshape(sh.narrow(x.reshape(-1), 0, 0, 0), index.shape)
    if x.ndim <= 1 and index.ndim <= 1 and (x.ndim == 0 or index.ndim == 0):
        return gather(x.reshape(-1), 0, index.reshape(-1)).reshape(index.shape)
    _check_gather("gather", x, d, index)
    storage = x._backend.gather(x._storage, x.layout, x.dtype, d, index._storage, index.layout)
    out = wrap(storage, index.shape, x.dtype, x._backend)
    return record("gather", out, (x,), (d, index, x.shape)) if x.dtype.is_float else out


def scatter_add(x: Tensor, dim: int, index, src: Tensor) -> Tensor:
    """``x`` plus ``src`` scattered at ``index`` along ``dim`` (torch.scatter_add, out of place)."""
    d = norm_dim(dim, x.ndim, "scatter_add")
    index = _index_tensor("scatter_add", index, x)
    src = ew.cast(src, x.dtype)
    if x.ndim == 0:  # a 0-d input is one slot (index and src are 0-d or 1-D)
        return scatter_add(x.reshape(1), 0, index.reshape(-1), src.reshape(-1)).reshape(())
    _check_gather("scatter_add", x, d, index)
    if src.ndim != index.ndim or any(a < b for a, b in zip(src.shape, index.shape)):
        raise ShapeError(
            f"scatter_add: src {fmt_shape(src.shape)} is smaller than index "
            f"{fmt_shape(index.shape)}"
        )
    for i, n in enumerate(index.shape):
        if src.shape[i] != n:
            src = sh.narrow(src, i, 0, n)
    return x + _scatter(x.shape, d, index, src)


def _scatter(shape, d: int, index: Tensor, src: Tensor) -> Tensor:
    storage = src._backend.scatter_add(
        shape, d, index._storage, index.layout, src._storage, src.layout, src.dtype
    )
    out = wrap(storage, shape, src.dtype, src._backend)
    return record("scatter_add", out, (src,), (d, index)) if src.dtype.is_float else out


def one_hot(x: Tensor, num_classes: int = -1) -> Tensor:
    """i64 one-hot encoding with a trailing dim of ``num_classes`` (max+1 when -1)."""
    if x.dtype.is_float or x.dtype is bool_:
        raise DTypeError(f"one_hot: expected an integer tensor, got {x.dtype}")
    from .creation import arange

    if num_classes < 0:
        num_classes = int(x.max().item()) + 1 if x.numel else 0
    classes = arange(num_classes, device=x.device)
    return ew.cast(ew.eq(x.unsqueeze(-1), classes), i64)


def nonzero(x: Tensor, *, as_tuple: bool = False):
    """Indices of non-zero elements, shape [count, ndim] (computed on the host); with
    ``as_tuple=True`` one 1-D index tensor per dim (one for a 0-d input), like torch."""
    from .creation import from_numpy

    idx = np.argwhere(np.asarray(x.numpy()) != 0).astype(np.int64)
    if as_tuple:
        cols = idx.T if x.ndim else np.zeros((1, idx.shape[0]), np.int64)
        return tuple(from_numpy(np.ascontiguousarray(c), device=x.device) for c in cols)
    return from_numpy(np.ascontiguousarray(idx), device=x.device)


def masked_select(x: Tensor, mask: Tensor) -> Tensor:
    """1-D tensor of the elements of ``x`` where ``mask`` (broadcast) is true."""
    x, mask = sh.broadcast_tensors(x, mask)
    flat_idx = nonzero(mask.reshape(-1)).reshape(-1)
    return index_select(x.reshape(-1), 0, flat_idx)


# --------------------------------------------------------------------- x[key]
def _expand_key(x: Tensor, key) -> tuple[list, bool]:
    """(the key as a list with ``...`` expanded, whether it holds an advanced index)."""
    key = list(key) if isinstance(key, tuple) else [key]
    used, n_ell, advanced = 0, 0, False
    for i, k in enumerate(key):
        if k is None or isinstance(k, (slice, int, np.integer)):
            used += k is not None and not isinstance(k, bool)
            continue
        if k is Ellipsis:
            n_ell += 1
            continue
        k = key[i] = _as_index(k)
        if isinstance(k, int) or _is_flag(k):
            used += isinstance(k, int)
        elif _is_bool_mask(k):
            used, advanced = used + k.ndim, True
        else:
            used, advanced = used + 1, True
    if n_ell > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if used > x.ndim:
        raise IndexError(f"too many indices for tensor of rank {x.ndim}: {len(key)} given")
    if n_ell:
        i = next(j for j, k in enumerate(key) if k is Ellipsis)  # not .index(): arrays compare
        key[i : i + 1] = [slice(None)] * (x.ndim - used)
    return key, advanced


def _as_index(k):
    """Lists and arrays of bools index like bool tensors; a 0-d integer tensor is an int
    (like PyTorch, so ``x[t] = v`` still writes through a view)."""
    if isinstance(k, (list, np.ndarray)):
        k = np.asarray(k)
        if k.dtype == np.bool_:
            from .creation import tensor

            return tensor(k)
        return k
    if isinstance(k, Tensor) and k.ndim == 0 and not k.dtype.is_float and k.dtype is not bool_:
        return int(k.item())
    return k


def _is_flag(k) -> bool:
    """``True``/``False`` (or a 0-d bool tensor): a new dim of size 1 or 0."""
    return isinstance(k, bool) or (_is_bool_mask(k) and k.ndim == 0)


def _flag(out: Tensor, d: int, k) -> Tensor:
    out = sh.unsqueeze(out, d)
    return out if bool(k) else sh.narrow(out, d, 0, 0)


def _is_bool_mask(k) -> bool:
    return isinstance(k, Tensor) and k.dtype is bool_


def getitem(x: Tensor, key) -> Tensor:
    """NumPy/PyTorch indexing. Ints, slices (step > 0), None and ``...`` give views; integer
    lists/tensors and bool masks are *advanced* indices: several of them broadcast together
    and pick elements pointwise, and their dims go where the first one stood when they are
    adjacent, else first (NumPy's rule; like torch, ints are applied first as views and do
    not count). A full-shape bool mask is ``masked_select``."""
    if type(key) is int and x.layout.shape:  # x[i], the most common key: one select
        return sh.select(x, 0, key)
    if _is_bool_mask(key) and key.shape == x.shape:
        return masked_select(x, key)
    key, advanced = _expand_key(x, key)
    if advanced:
        return _advanced(x, key)
    out, d = x, 0
    for k in key:
        step = _basic(out, d, k)
        if step is None:
            raise IndexError(f"unsupported index {k!r} of type {type(k).__name__}")
        out, d = step
    return out


def _basic(out: Tensor, d: int, k):
    """Apply one basic key (None, slice, flag, int) at dim ``d`` of ``out`` as a view:
    (view, next dim), or None when ``k`` is not basic. Ints select before any advanced
    key is applied, like torch (not NumPy's rule)."""
    if k is None:
        return sh.unsqueeze(out, d), d + 1
    if isinstance(k, slice):
        return (out if k == slice(None) else sh.slice_dim(out, d, k.start, k.stop, k.step)), d + 1
    if _is_flag(k):
        return _flag(out, d, k), d + 1
    if isinstance(k, (int, np.integer)):
        return sh.select(out, d, int(k)), d
    return None


def _advanced(x: Tensor, key: list) -> Tensor:
    """Basic parts as views first, then one gather over the advanced dims."""
    out, d = x, 0
    picks: list[tuple[int, Tensor]] = []  # (dim of ``out``, i64 index) per indexed dim
    for k in key:
        if (step := _basic(out, d, k)) is not None:
            out, d = step
        elif _is_bool_mask(k):  # a mask over k.ndim dims: its nonzero positions, per dim
            _check_mask(out, d, k)
            cols = nonzero(k)
            picks += [(d + j, cols[:, j]) for j in range(k.ndim)]
            d += k.ndim
        elif isinstance(k, (list, Tensor, np.ndarray)):
            picks.append((d, _wrapped(k, out.shape[d], out.device, out)))
            d += 1
        else:
            raise IndexError(f"unsupported index {k!r} of type {type(k).__name__}")
    if len(picks) == 1:  # one indexed dim: its index dims replace it in place
        d, i = picks[0]
        try:  # negative tensor indices are rare: wrap them only when the plain pick fails
            flat = index_select(out, d, i.reshape(-1))
        except IndexOutOfRangeError as err:
            try:
                flat = index_select(out, d, _wrap_negative(i, out.shape[d]).reshape(-1))
            except IndexOutOfRangeError:
                raise err from None
        return sh.reshape(flat, out.shape[:d] + i.shape + out.shape[d + 1 :])
    dims = [p[0] for p in picks]
    idx = sh.broadcast_tensors(*(_wrap_negative(p[1], out.shape[p[0]]) for p in picks))
    bshape = idx[0].shape
    rest = [i for i in range(out.ndim) if i not in dims]
    moved = sh.permute(out, tuple(dims) + tuple(rest))
    sizes = moved.shape[: len(dims)]
    _check_in_range(idx, sizes)
    flat_idx, scale = None, 1  # row-major position within the indexed dims
    for i, n in zip(reversed(idx), reversed(sizes)):
        term = i * scale if scale != 1 else i
        flat_idx = term if flat_idx is None else flat_idx + term
        scale *= n
    merged = sh.reshape(moved, (-1,) + moved.shape[len(dims) :])
    picked = index_select(merged, 0, flat_idx.reshape(-1))
    result = sh.reshape(picked, bshape + moved.shape[len(dims) :])
    adjacent = dims == list(range(dims[0], dims[0] + len(dims)))
    if adjacent and dims[0] > 0 and bshape:  # the picked dims go back where they stood
        nb, first = len(bshape), dims[0]
        order = [*range(nb, nb + first), *range(nb), *range(nb + first, result.ndim)]
        result = sh.permute(result, tuple(order))
    return result


def _check_mask(out: Tensor, d: int, mask: Tensor) -> None:
    want = out.shape[d : d + mask.ndim]
    if mask.shape != want:
        raise IndexOutOfRangeError(
            f"getitem: bool mask of shape {fmt_shape(mask.shape)} does not match the indexed "
            f"dims {fmt_shape(want)} of a tensor of shape {fmt_shape(out.shape)}"
        )


def _wrapped(k, size: int, device, like: Tensor | None = None) -> Tensor:
    """An i64 index; host data (lists, arrays) has its negative entries wrapped here, tensors
    are wrapped by the caller when needed (``_wrap_negative``)."""
    from .creation import tensor

    if isinstance(k, Tensor):
        return _index_tensor("getitem", k, like)
    arr = np.asarray(k, dtype=np.int64)
    if arr.size and arr.min() < 0:
        arr = np.where(arr < 0, arr + size, arr)
    return tensor(arr, device=device)


def _wrap_negative(idx: Tensor, size: int) -> Tensor:
    """Negative entries counted from the end, like Python and torch."""
    return ew.where(idx < 0, idx + size, idx) if idx.numel else idx


def _check_in_range(idx: list[Tensor], sizes) -> None:
    for i, n in zip(idx, sizes):
        if i.numel and bool(((i < 0) | (i >= n)).any().item()):
            raise IndexOutOfRangeError(
                f"getitem: an index is out of range for a dim of size {n} (valid: {-n}..{n - 1})"
            )


def _check_inplace(op: str, x: Tensor) -> None:
    """Like PyTorch: writing into a tensor that requires grad is allowed only under no_grad."""
    from ..autograd import is_grad_enabled

    if x._requires_grad and is_grad_enabled():
        raise AutogradError(
            f"{op}: in-place write into a tensor that requires grad; do it under no_grad() "
            "(e.g. an optimizer update) or write into x.detach()"
        )


def _write(x: Tensor, layout: Layout, value) -> None:
    if isinstance(value, Tensor):
        check_device("setitem", x, value)
        value = ew.cast(value, x.dtype)
        vl = value.layout.broadcast_to(layout.shape)
        if vl is None:
            raise ShapeError(
                f"setitem: value of shape {fmt_shape(value.shape)} cannot be broadcast to "
                f"{fmt_shape(layout.shape)}"
            )
        x._backend.copy_into(x._storage, layout, value._storage, vl, x.dtype)
    else:
        src = x._backend.full((), value, x.dtype)
        x._backend.copy_into(
            x._storage, layout, src, Layout((), ()).broadcast_to(layout.shape), x.dtype
        )


def setitem(x: Tensor, key, value) -> None:
    """``x[key] = value`` in place for basic indexing or a full-shape bool mask."""
    _check_inplace("setitem", x)
    if _is_bool_mask(key) and key.shape == x.shape and not (
        isinstance(value, Tensor) and value.ndim
    ):  # a full mask and one value: a where (any other mask selects, like integer keys)
        copy_(x, ew.where(key, value, x))
        return
    from ..autograd import no_grad

    with no_grad():
        target = getitem(x.detach(), key)
    if target._storage is not x._storage:  # advanced indices: not a view of x
        _index_put(x, key, value)
        return
    _write(x, target.layout, value)


def _index_put(x: Tensor, key, value) -> None:
    """``x[key] = value`` for advanced keys (integer lists/tensors, partial bool masks), like
    ``torch.Tensor.index_put_``: the flat positions the key selects come from indexing an
    arange the same way (on the host); where a position repeats, the last value wins (as
    torch on CPU). Any dtype, any device: the write is one ``where`` + ``copy_``."""
    from ..autograd import no_grad
    from .creation import arange, from_numpy, tensor

    with no_grad():
        pos = getitem(arange(x.numel, device=x.device).reshape(x.shape), key)
        if isinstance(value, Tensor):
            check_device("setitem", x, value)
            v = ew.cast(value.detach(), x.dtype)
        else:
            v = tensor(value, dtype=x.dtype, device=x.device)
        if v.layout.broadcast_to(pos.shape) is None:
            raise ShapeError(
                f"setitem: value of shape {fmt_shape(v.shape)} cannot be broadcast to the "
                f"indexed shape {fmt_shape(pos.shape)}"
            )
        flat = pos.numpy().reshape(-1)
        if flat.size == 0:
            return
        last = flat.size - 1 - np.unique(flat[::-1], return_index=True)[1]  # last of each
        source = np.zeros(x.numel, np.int64)  # which selected value lands on each position
        source[flat[last]] = last
        mask = np.zeros(x.numel, np.bool_)
        mask[flat] = True
        values = v.expand(pos.shape).reshape(-1)
        written = index_select(values, 0, from_numpy(source, device=x.device))
        copy_(x, ew.where(from_numpy(mask, device=x.device).reshape(x.shape),
                          written.reshape(x.shape), x.detach()))  # fmt: skip


def copy_(x: Tensor, src) -> Tensor:
    """Overwrite ``x`` in place with ``src`` (broadcast, cast to x's dtype)."""
    _check_inplace("copy_", x)
    _write(x, x.layout, src)
    return x


def fill_(x: Tensor, value) -> Tensor:
    _check_inplace("fill_", x)
    _write(x, x.layout, value)
    return x


def zero_(x: Tensor) -> Tensor:
    return fill_(x, 0)


def _inplace_fn(name: str, fn):
    def method(x: Tensor, other) -> Tensor:
        _check_inplace(name, x)
        from ..autograd import no_grad

        with no_grad():
            result = fn(x, other)
        _write(x, x.layout, result)
        return x

    method.__name__ = name
    return method


add_ = _inplace_fn("add_", ew.add)
sub_ = _inplace_fn("sub_", ew.sub)
mul_ = _inplace_fn("mul_", ew.mul)
div_ = _inplace_fn("div_", ew.div)
