"""Strided views over 1-D storages: Layout -> NumPy view, and layout canonicalisation.

Storage is a 1-D C-contiguous NumPy array. A Layout (shape, strides and offset in
elements) becomes a zero-copy NumPy view here; kernels that walk layouts themselves get
a *canonical* form instead: dims of size 1 dropped and adjacent dims merged wherever
every operand allows it, padded to ``CANON_RANK`` dims, so a kernel compiled once
serves every rank.
"""

from __future__ import annotations

import functools

import numpy as np

CANON_RANK = 4


def is_full(storage: np.ndarray, layout) -> bool:
    """True when ``layout`` covers all of ``storage`` in row-major order."""
    return layout.offset == 0 and storage.size == layout.numel and layout.is_contiguous()


def view(storage: np.ndarray, layout) -> np.ndarray:
    """The NumPy view of ``storage`` through ``layout`` (shares memory, never copies)."""
    shape = layout.shape
    n = layout.numel
    if layout.offset == 0 and storage.size == n and layout.is_contiguous():
        return storage.reshape(shape)
    if n == 0:
        return np.empty(shape, storage.dtype)
    isz = storage.itemsize
    return np.ndarray(shape, storage.dtype, storage, layout.offset * isz,
                      [s * isz for s in layout.strides])  # fmt: skip


def flat(storage: np.ndarray, layout) -> np.ndarray | None:
    """A 1-D view when ``layout`` is one contiguous run (any offset), else None."""
    if layout.is_contiguous():
        return storage[layout.offset : layout.offset + layout.numel]
    return None


def contiguous(storage: np.ndarray, layout) -> np.ndarray:
    """The elements of the view in row-major order as a C-contiguous array of its shape."""
    if layout.is_contiguous():
        return storage[layout.offset : layout.offset + layout.numel].reshape(layout.shape)
    return np.ascontiguousarray(view(storage, layout))


def coalesce(shape, *strides_list):
    """Drop size-1 dims and merge adjacent dims that are contiguous for every operand.

    Returns ``(shape, [strides, ...])`` as lists, innermost dim last.
    """
    keep = [i for i, d in enumerate(shape) if d != 1]
    out_shape: list[int] = []
    out_strides: list[list[int]] = [[] for _ in strides_list]
    for i in keep:
        d = shape[i]
        if out_shape and all(
            st[-1] == s[i] * d for st, s in zip(out_strides, strides_list)
        ):
            out_shape[-1] *= d
            for st, s in zip(out_strides, strides_list):
                st[-1] = s[i]
        else:
            out_shape.append(d)
            for st, s in zip(out_strides, strides_list):
                st.append(s[i])
    return out_shape, out_strides


def canonical(shape, *strides_list):
    """``coalesce`` padded on the left to CANON_RANK dims, as int64 tuples; None if the
    layouts need more dims than that (the caller then copies to contiguous first)."""
    cshape, cstrides = coalesce(shape, *strides_list)
    if len(cshape) > CANON_RANK:
        return None
    pad = CANON_RANK - len(cshape)
    return (
        tuple([1] * pad + cshape),
        [tuple([0] * pad + st) for st in cstrides],
    )


def row_offsets(shape, strides, offset: int) -> np.ndarray:
    """Element offsets of every index of (shape, strides), row-major, as int64."""
    off = np.array([offset], dtype=np.int64)
    for d, s in zip(shape, strides):
        off = (off[:, None] + np.arange(d, dtype=np.int64) * s).ravel()
    return off


# ---------------------------------------------------------------- quiet floating-point errors
# NumPy warns on float overflow / invalid / divide-by-zero; the backend's results follow
# IEEE (inf, nan) silently like PyTorch. ``np.errstate(all="ignore")`` costs ~0.9 us per
# call (it builds its settings object each time), a third of a small elementwise op, so
# the hot paths set NumPy's error-state context variable to a settings object built once.
# Both are C callables (no Python frame): the pair costs ~115 ns, against 245 ns as two
# Python functions around the same calls.
try:  # NumPy >= 2
    from numpy._core.umath import _extobj_contextvar, _make_extobj

    #: Start ignoring floating-point errors; pass the result to ``fp_restore``.
    fp_quiet = functools.partial(_extobj_contextvar.set, _make_extobj(all="ignore"))
    fp_restore = _extobj_contextvar.reset

except ImportError:  # pragma: no cover - NumPy 1.x

    def fp_quiet():
        state = np.errstate(all="ignore")
        state.__enter__()
        return state

    def fp_restore(token) -> None:
        token.__exit__(None, None, None)
