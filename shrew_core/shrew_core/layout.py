"""Layout: shape, strides (in elements) and offset of a tensor over its storage.

Every view (transpose, permute, narrow, squeeze, unsqueeze, expand, reshape of a
viewable tensor, ``t()``) is a pure function here from one Layout to another, so
views are zero-copy and no backend ever implements them. Errors are raised by the
tensor front end, which knows the op name; methods here assume validated input.
"""

from __future__ import annotations

from math import prod

try:  # the compiled hot path (shape arithmetic + backward walk), built by shrew_core's setup.py
    from ._speedups import (
        broadcast_shapes,
        broadcast_strides,
        contiguous_strides,
        is_contiguous,
        topo_order,
        view_strides,
    )

    COMPILED = True
except ImportError:  # pragma: no cover - exercised when the extension is not built
    from ._shapes import (
        broadcast_shapes,
        broadcast_strides,
        contiguous_strides,
        is_contiguous,
        topo_order,
        view_strides,
    )

    COMPILED = False

__all__ = [
    "Layout",
    "broadcast_shapes",
    "broadcast_strides",
    "contiguous_strides",
    "is_contiguous",
    "view_strides",
    "topo_order",
    "COMPILED",
]


#: Contiguous offset-0 layouts by shape (Layouts are immutable, so every op producing a
#: result of a known shape shares one): saves building strides on every op. Bounded.
_CONTIGUOUS: dict = {}
_CONTIGUOUS_MAX = 4096


class Layout:
    """An immutable (shape, strides, offset) triple; strides and offset count elements."""

    __slots__ = ("shape", "strides", "offset", "numel")

    def __init__(self, shape: tuple[int, ...], strides: tuple[int, ...], offset: int = 0):
        self.shape = shape
        self.strides = strides
        self.offset = offset
        self.numel = prod(shape)  #: element count (an attribute: read on every op)

    @classmethod
    def contiguous(cls, shape: tuple[int, ...], offset: int = 0) -> Layout:
        if offset == 0 and cls is Layout and type(shape) is tuple:  # the per-op case:
            lay = _CONTIGUOUS.get(shape)  # one shared Layout per shape
            if lay is None:
                if len(_CONTIGUOUS) >= _CONTIGUOUS_MAX:
                    _CONTIGUOUS.clear()
                lay = _CONTIGUOUS[shape] = cls(shape, contiguous_strides(shape), 0)
            return lay
        return cls(shape, contiguous_strides(shape), offset)

    # --- properties ------------------------------------------------------------------
    @property
    def ndim(self) -> int:
        return len(self.shape)

    def is_contiguous(self) -> bool:
        return is_contiguous(self.shape, self.strides)

    def __eq__(self, other) -> bool:
        return (
            isinstance(other, Layout)
            and self.shape == other.shape
            and self.strides == other.strides
            and self.offset == other.offset
        )

    def __hash__(self) -> int:
        return hash((self.shape, self.strides, self.offset))

    def __repr__(self) -> str:
        return f"Layout(shape={self.shape}, strides={self.strides}, offset={self.offset})"

    # --- views -----------------------------------------------------------------------
    def permute(self, dims: tuple[int, ...]) -> Layout:
        return Layout(
            tuple(self.shape[d] for d in dims), tuple(self.strides[d] for d in dims), self.offset
        )

    def transpose(self, d0: int, d1: int) -> Layout:
        shape, strides = list(self.shape), list(self.strides)
        shape[d0], shape[d1] = shape[d1], shape[d0]
        strides[d0], strides[d1] = strides[d1], strides[d0]
        return Layout(tuple(shape), tuple(strides), self.offset)

    def narrow(self, dim: int, start: int, length: int) -> Layout:
        shape = list(self.shape)
        shape[dim] = length
        return Layout(tuple(shape), self.strides, self.offset + start * self.strides[dim])

    def slice(self, dim: int, start: int, stop: int, step: int) -> Layout:
        """Python-style ``start:stop:step`` along ``dim`` (already clamped, step > 0)."""
        shape = list(self.shape)
        strides = list(self.strides)
        shape[dim] = max(0, (stop - start + step - 1) // step)
        offset = self.offset + start * strides[dim]
        strides[dim] *= step
        return Layout(tuple(shape), tuple(strides), offset)

    def select(self, dim: int, index: int) -> Layout:
        """Drop ``dim`` by taking position ``index`` along it."""
        return Layout(
            self.shape[:dim] + self.shape[dim + 1 :],
            self.strides[:dim] + self.strides[dim + 1 :],
            self.offset + index * self.strides[dim],
        )

    def unsqueeze(self, dim: int) -> Layout:
        inner = self.strides[dim] * self.shape[dim] if dim < self.ndim else 1
        return Layout(
            self.shape[:dim] + (1,) + self.shape[dim:],
            self.strides[:dim] + (inner,) + self.strides[dim:],
            self.offset,
        )

    def squeeze(self, dims: tuple[int, ...]) -> Layout:
        keep = [i for i in range(self.ndim) if i not in dims]
        return Layout(
            tuple(self.shape[i] for i in keep), tuple(self.strides[i] for i in keep), self.offset
        )

    def broadcast_to(self, shape: tuple[int, ...]) -> Layout | None:
        strides = broadcast_strides(self.shape, self.strides, shape)
        return None if strides is None else Layout(shape, strides, self.offset)

    def view(self, shape: tuple[int, ...]) -> Layout | None:
        """The layout of ``reshape(shape)`` without a copy, or None if one is needed."""
        strides = view_strides(self.shape, self.strides, shape)
        return None if strides is None else Layout(shape, strides, self.offset)
