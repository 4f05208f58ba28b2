"""Shape ops. Views (reshape of viewable tensors, permute/transpose, narrow/slice/select,
squeeze/unsqueeze, expand) only change the Layout; cat/stack/pad/clone copy."""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..autograd import record
from ..dtypes import promote_types
from ..errors import DeviceError, DimError, ShapeError, fmt_shape
from ..layout import Layout
from ..tensor import Tensor
from . import elementwise as ew
from ._base import broadcast_shape, norm_dim, wrap


def _shape_arg(args) -> tuple[int, ...]:
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = tuple(args[0])
    try:
        return tuple(map(int, args))
    except TypeError:
        raise TypeError(f"expected a shape of ints, got {args!r}") from None


def _view(x: Tensor, layout: Layout) -> Tensor:
    return Tensor._make(x._storage, layout, x.dtype, x._backend)


def _infer_shape(op: str, x: Tensor, shape: tuple[int, ...]) -> tuple[int, ...]:
    if -1 not in shape and (not shape or min(shape) >= 0) and math.prod(shape) == x.numel:
        return shape  # the common case: nothing to infer, nothing wrong
    if shape.count(-1) > 1:
        raise ShapeError(f"{op}: only one dimension can be -1, got {shape}")
    if any(d < -1 for d in shape):
        raise ShapeError(f"{op}: invalid size in shape {shape}")
    known = math.prod(d for d in shape if d != -1)
    if -1 in shape:
        if known == 0 or x.numel % known:
            raise ShapeError(
                f"{op}: shape {shape} is invalid for input of shape {fmt_shape(x.shape)} "
                f"({x.numel} elements)"
            )
        shape = tuple(x.numel // known if d == -1 else d for d in shape)
    elif known != x.numel:
        raise ShapeError(
            f"{op}: cannot reshape tensor of shape {fmt_shape(x.shape)} ({x.numel} elements) "
            f"into shape {fmt_shape(shape)} ({known} elements)"
        )
    return shape


def reshape(x: Tensor, *shape) -> Tensor:
    """A view when the strides allow it, otherwise a contiguous copy. One dim may be -1."""
    shape = _infer_shape("reshape", x, _shape_arg(shape))
    if shape == x.shape:
        layout = x.layout
    else:
        layout = x.layout.view(shape)
    if layout is None:
        x = contiguous(x)
        layout = Layout.contiguous(shape, x.layout.offset)
    return record("reshape", _view(x, layout), (x,), x.shape)


def view(x: Tensor, *shape) -> Tensor:
    """Like reshape, but never copies: a ShapeError when the strides do not allow it."""
    shape = _infer_shape("view", x, _shape_arg(shape))
    layout = x.layout.view(shape)
    if layout is None:
        raise ShapeError(
            f"view: shape {fmt_shape(shape)} is not compatible with the strides "
            f"{x.layout.strides} of the input of shape {fmt_shape(x.shape)}; use reshape()"
        )
    return record("reshape", _view(x, layout), (x,), x.shape)


def flatten(x: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    if x.ndim == 0:
        return reshape(x, (1,))
    s = norm_dim(start_dim, x.ndim, "flatten")
    e = norm_dim(end_dim, x.ndim, "flatten")
    if s > e:
        raise DimError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    return reshape(x, x.shape[:s] + (math.prod(x.shape[s : e + 1]),) + x.shape[e + 1 :])


def unflatten(x: Tensor, dim: int, sizes: Sequence[int]) -> Tensor:
    d = norm_dim(dim, x.ndim, "unflatten")
    return reshape(x, x.shape[:d] + tuple(sizes) + x.shape[d + 1 :])


def squeeze(x: Tensor, dim=None) -> Tensor:
    """Remove size-1 dims (all, or those among ``dim``; other dims are left as they are)."""
    if dim is None:
        dims = tuple(i for i, d in enumerate(x.shape) if d == 1)
    else:
        dims = (dim,) if isinstance(dim, int) else tuple(dim)
        dims = tuple(norm_dim(d, x.ndim, "squeeze") for d in dims)
        dims = tuple(d for d in dims if x.ndim and x.shape[d] == 1)  # a 0-d input keeps its shape
    if not dims:
        return record("reshape", _view(x, x.layout), (x,), x.shape)
    return record("reshape", _view(x, x.layout.squeeze(dims)), (x,), x.shape)


def squeeze_all(x: Tensor) -> Tensor:
    return squeeze(x)


def unsqueeze(x: Tensor, dim: int) -> Tensor:
    d = norm_dim(dim, x.ndim + 1, "unsqueeze")
    return record("reshape", _view(x, x.layout.unsqueeze(d)), (x,), x.shape)


def permute(x: Tensor, *dims) -> Tensor:
    dims = _shape_arg(dims)
    nd = tuple(norm_dim(d, x.ndim, "permute") for d in dims)
    if len(nd) != x.ndim or sorted(nd) != list(range(x.ndim)):
        raise DimError(
            f"permute: dims {dims} are not a permutation of the {x.ndim} dims of a tensor of "
            f"shape {fmt_shape(x.shape)}"
        )
    return record("permute", _view(x, x.layout.permute(nd)), (x,), nd)


def transpose(x: Tensor, dim0: int, dim1: int) -> Tensor:
    if x.ndim == 0:
        return record("reshape", _view(x, x.layout), (x,), x.shape)
    n = len(x.layout.shape)
    d0, d1 = norm_dim(dim0, n, "transpose"), norm_dim(dim1, n, "transpose")
    out = _view(x, x.layout.transpose(d0, d1))
    if not x._requires_grad:
        return out
    dims = list(range(n))
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return record("permute", out, (x,), tuple(dims))


swapaxes = transpose


def t(x: Tensor) -> Tensor:
    """Transpose a 2-D tensor (0-d and 1-D tensors are returned as they are), like torch."""
    if x.ndim > 2:
        raise DimError(
            f"t: expects a tensor with <= 2 dims, got shape {fmt_shape(x.shape)}; "
            "use transpose(-2, -1) or .mT"
        )
    return transpose(x, 0, 1) if x.ndim == 2 else x


def expand(x: Tensor, *sizes) -> Tensor:
    """Broadcast size-1 dims to ``sizes`` without copying (-1 keeps a dim)."""
    sizes = _shape_arg(sizes)
    if len(sizes) < x.ndim:
        raise ShapeError(f"expand: target {sizes} has fewer dims than input {fmt_shape(x.shape)}")
    lead = len(sizes) - x.ndim
    target = sizes if -1 not in sizes else tuple(
        (x.shape[i - lead] if s == -1 else s) if i >= lead else s for i, s in enumerate(sizes)
    )  # fmt: skip
    layout = x.layout.broadcast_to(target) if -1 not in target[:lead] else None
    if layout is None:
        raise ShapeError(f"expand: cannot expand shape {fmt_shape(x.shape)} to {sizes}")
    if target == x.shape:
        return x
    return record("expand", _view(x, layout), (x,))


def expand_to(x: Tensor, shape: tuple[int, ...]) -> Tensor:
    return expand(x, shape)


def expand_as(x: Tensor, other: Tensor) -> Tensor:
    return expand(x, other.shape)


broadcast_to = expand


def broadcast_tensors(*tensors: Tensor) -> list[Tensor]:
    shape = broadcast_shape("broadcast_tensors", *(t.shape for t in tensors))
    return [expand(t, shape) for t in tensors]


def _slice_view(x: Tensor, layout: Layout, spec: tuple) -> Tensor:
    return record("slice", _view(x, layout), (x,), (x.shape, spec))


def narrow(x: Tensor, dim: int, start: int, length: int) -> Tensor:
    d = norm_dim(dim, x.ndim, "narrow")
    size = x.shape[d]
    if start < 0:
        start += size
    if not (0 <= start <= size and 0 <= length and start + length <= size):
        raise ShapeError(
            f"narrow: start {start} + length {length} exceeds dim {d} of size {size} "
            f"(shape {fmt_shape(x.shape)})"
        )
    return _slice_view(x, x.layout.narrow(d, start, length), ("narrow", d, start, length))


def slice_dim(x: Tensor, dim: int, start, stop, step) -> Tensor:
    d = norm_dim(dim, x.ndim, "slice")
    if step is not None and step <= 0:
        raise ValueError(f"slice: step must be positive, got {step} (use flip())")
    start, stop, step = slice(start, stop, step).indices(x.shape[d])
    stop = max(stop, start)
    return _slice_view(x, x.layout.slice(d, start, stop, step), ("slice", d, start, stop, step))


def select(x: Tensor, dim: int, index: int) -> Tensor:
    d = norm_dim(dim, x.ndim, "select")
    size = x.shape[d]
    if not -size <= index < size:
        raise IndexError(f"select: index {index} is out of range for dim {d} of size {size}")
    index %= size
    return _slice_view(x, x.layout.select(d, index), ("select", d, index))


def apply_slice_spec(layout: Layout, spec: tuple) -> Layout:
    kind, *args = spec
    return getattr(layout, kind)(*args)


def contiguous(x: Tensor) -> Tensor:
    if x.layout.is_contiguous():
        return x
    return clone(x)


def clone(x: Tensor) -> Tensor:
    out = wrap(x._backend.copy(x._storage, x.layout, x.dtype), x.shape, x.dtype, x._backend)
    return record("clone", out, (x,))


def _cat_dtype(tensors: Sequence[Tensor]):
    dtype = tensors[0].dtype
    for t in tensors[1:]:
        dtype = promote_types(dtype, t.dtype)
    return dtype


def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Concatenate along ``dim``; every other dim must match. Dtypes promote."""
    tensors = list(tensors)
    if not tensors:
        raise ShapeError("cat: expected a non-empty list of tensors")
    if any(not isinstance(t, Tensor) for t in tensors):
        raise TypeError("cat: expected a sequence of Tensors")
    legacy = [t for t in tensors if t.shape == (0,)]
    if legacy and len(legacy) < len(tensors):  # like torch: 1-D empty tensors are skipped
        dtype = _cat_dtype(tensors)
        return ew.cast(cat([t for t in tensors if t.shape != (0,)], dim), dtype)
    first = tensors[0]
    d = norm_dim(dim, first.ndim, "cat")
    for i, t in enumerate(tensors):
        if t._backend is not first._backend:
            raise DeviceError(f"cat: tensor {i} is on {t.device}, tensor 0 on {first.device}")
        if t.ndim != first.ndim or any(
            a != b for j, (a, b) in enumerate(zip(t.shape, first.shape)) if j != d
        ):
            raise ShapeError(
                f"cat: tensor {i} has shape {fmt_shape(t.shape)}, expected "
                f"{fmt_shape(first.shape)} except in dim {d}"
            )
    if first.ndim == 0:
        raise ShapeError("cat: zero-dimensional tensors cannot be concatenated; use stack")
    dtype = _cat_dtype(tensors)
    tensors = [ew.cast(t, dtype) for t in tensors]
    sizes = tuple(t.shape[d] for t in tensors)
    shape = first.shape[:d] + (sum(sizes),) + first.shape[d + 1 :]
    b = first._backend
    storage = b.full(shape, 0, dtype)
    base = Layout.contiguous(shape)
    start = 0
    for t, n in zip(tensors, sizes):
        if n:
            b.copy_into(storage, base.narrow(d, start, n), t._storage, t.layout, dtype)
        start += n
    return record("cat", wrap(storage, shape, dtype, b), tuple(tensors), (d, sizes))


concat = cat


def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    tensors = list(tensors)
    if not tensors:
        raise ShapeError("stack: expected a non-empty list of tensors")
    for i, t in enumerate(tensors):
        if t.shape != tensors[0].shape:
            raise ShapeError(
                f"stack: tensor {i} has shape {fmt_shape(t.shape)}, tensor 0 has "
                f"{fmt_shape(tensors[0].shape)}; all must be equal"
            )
    d = norm_dim(dim, tensors[0].ndim + 1, "stack")
    return cat([unsqueeze(t, d) for t in tensors], d)


def split(x: Tensor, split_size_or_sections, dim: int = 0) -> list[Tensor]:
    """Pieces of ``split_size`` along ``dim`` (the last may be smaller), or explicit sizes."""
    d = norm_dim(dim, x.ndim, "split")
    size = x.shape[d]
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        if step <= 0:
            raise ValueError(f"split: split_size must be positive, got {step}")
        sizes = [min(step, size - s) for s in range(0, size, step)] or [0]
    else:
        sizes = list(split_size_or_sections)
        if sum(sizes) != size or any(s < 0 for s in sizes):
            raise ShapeError(f"split: sections {sizes} do not sum to dim {d} of size {size}")
    out, start = [], 0
    for n in sizes:
        out.append(narrow(x, d, start, n))
        start += n
    return out


def chunk(x: Tensor, chunks: int, dim: int = 0) -> list[Tensor]:
    """Split into ``chunks`` pieces of size ceil(size/chunks) (fewer when it divides unevenly)."""
    if chunks <= 0:
        raise ValueError(f"chunk: chunks must be positive, got {chunks}")
    d = norm_dim(dim, x.ndim, "chunk")
    return split(x, max(1, -(-x.shape[d] // chunks)), d)


def unbind(x: Tensor, dim: int = 0) -> list[Tensor]:
    d = norm_dim(dim, x.ndim, "unbind")
    return [select(x, d, i) for i in range(x.shape[d])]


def _pad_pairs(x: Tensor, pad) -> list[tuple[int, int]]:
    """Per-dim (before, after) for every dim of x from torch's flat form or the seed's pairs."""
    pad = list(pad)
    if pad and isinstance(pad[0], (list, tuple)):  # seed form: pairs for the last len(pad) dims
        pairs = [tuple(p) for p in pad]
    else:
        if len(pad) % 2:
            raise ShapeError(f"pad: expected an even number of padding values, got {len(pad)}")
        pairs = [(pad[i], pad[i + 1]) for i in range(0, len(pad), 2)][::-1]
    if len(pairs) > x.ndim:
        raise ShapeError(
            f"pad: {len(pairs)} padded dims exceed the rank of shape {fmt_shape(x.shape)}"
        )
    return [(0, 0)] * (x.ndim - len(pairs)) + pairs


def pad(x: Tensor, pad, value: float | None = 0.0, mode: str = "constant") -> Tensor:
    """torch.nn.functional.pad. ``pad`` is torch's flat ``(last_before, last_after, ...)`` or
    the seed's ``[[before, after], ...]`` for the last dims; negative values crop. ``mode``
    is ``"constant"`` (fill with ``value``, None = 0), ``"reflect"`` (mirror without the
    edge), ``"replicate"`` (repeat the edge) or ``"circular"`` (wrap around). Torch's
    positional order ``pad(x, pad, mode, value)`` works too."""
    if isinstance(value, str):  # pad(x, pad, "reflect") / pad(x, pad, "constant", 1.5)
        mode, value = value, (None if mode == "constant" else mode)
    if value is None:
        value = 0.0
    pairs = _pad_pairs(x, pad)
    if mode in ("reflect", "replicate"):  # these index the uncropped input, like torch
        return _pad_indexed(x, pairs, mode)
    for d, (lo, hi) in enumerate(pairs):  # negative padding crops first
        if lo < 0 or hi < 0:
            c_lo, c_hi = max(0, -lo), max(0, -hi)
            if c_lo + c_hi > x.shape[d]:
                raise ShapeError(
                    f"pad: cropping {c_lo}+{c_hi} exceeds dim {d} of size {x.shape[d]}"
                )
            x = narrow(x, d, c_lo, x.shape[d] - c_lo - c_hi)
    pairs = [(max(0, lo), max(0, hi)) for lo, hi in pairs]
    if mode != "constant":
        return _pad_indexed(x, pairs, mode)
    shape = tuple(s + lo + hi for s, (lo, hi) in zip(x.shape, pairs))
    b = x._backend
    storage = b.full(shape, value, x.dtype)
    inner = Layout.contiguous(shape)
    for d, ((lo, _), s) in enumerate(zip(pairs, x.shape)):
        inner = inner.narrow(d, lo, s)
    if x.numel:
        b.copy_into(storage, inner, x._storage, x.layout, x.dtype)
    return record("pad", wrap(storage, shape, x.dtype, b), (x,), tuple(lo for lo, _ in pairs))


def _pad_indexed(x: Tensor, pairs, mode: str) -> Tensor:
    """reflect / replicate / circular padding as one index_select per padded dim, so the
    gradient accumulates into the source positions like torch (output position ``j`` of a
    dim reads source ``j - before``, mirrored, clamped or wrapped into range)."""
    import numpy as np

    from .creation import tensor
    from .indexing import index_select

    if mode not in ("reflect", "replicate", "circular"):
        raise ValueError(
            f"pad: mode must be 'constant', 'reflect', 'replicate' or 'circular', got {mode!r}"
        )
    for d, (lo, hi) in enumerate(pairs):
        if lo == 0 and hi == 0:
            continue
        n = x.shape[d]
        limit = {"reflect": n - 1, "circular": n}.get(mode, None if n else -1)
        if (limit is not None and max(lo, hi) > limit) or n + lo + hi < 0:
            raise ShapeError(
                f"pad: {mode} padding ({lo}, {hi}) is too large for dim {d} of size {n} "
                f"(shape {fmt_shape(x.shape)})"
            )
        i = np.arange(n + lo + hi, dtype=np.int64) - lo
        if mode == "reflect":
            i = np.abs(i)
            i = np.where(i >= n, 2 * (n - 1) - i, i)
        elif mode == "replicate":
            i = np.clip(i, 0, n - 1)
        else:
            i = np.mod(i, n)
        x = index_select(x, d, tensor(i, device=x.device))
    return x


def flip(x: Tensor, dims) -> Tensor:
    from .creation import arange
    from .indexing import index_select

    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    for d in dims:
        d = norm_dim(d, x.ndim, "flip")
        n = x.shape[d]
        x = index_select(x, d, arange(n - 1, -1, -1, device=x.device)) if n > 1 else x
    return x


def repeat(x: Tensor, *sizes) -> Tensor:
    """Tile ``x``: ``repeat(2, 3)`` on a [a, b] tensor gives [2a, 3b] (like torch)."""
    sizes = _shape_arg(sizes)
    if len(sizes) < x.ndim:
        raise ShapeError(f"repeat: {len(sizes)} repeats for a tensor of rank {x.ndim}")
    x = reshape(x, (1,) * (len(sizes) - x.ndim) + x.shape)
    inter = []
    for s in x.shape:
        inter += [1, s]
    y = reshape(x, tuple(inter))
    y = expand(y, tuple(v for r, s in zip(sizes, x.shape) for v in (r, s)))
    return reshape(contiguous(y), tuple(r * s for r, s in zip(sizes, x.shape)))
