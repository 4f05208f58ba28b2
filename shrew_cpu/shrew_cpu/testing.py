"""Test helpers for backend kernels: per-dtype tolerances, random values, storages seen
through every kind of view (contiguous, offset, transposed, narrowed, broadcast row /
column, scalar), and a result check that compares size, dtype, then values."""

from __future__ import annotations

import numpy as np
from numpy.testing import assert_allclose

from shrew_core import dtypes as D
from shrew_core.layout import Layout

#: (rtol, atol) per dtype, stated once.
TOL = {
    D.f16: (2e-3, 2e-3),
    D.bf16: (1.6e-2, 1.6e-2),
    D.f32: (2e-5, 2e-6),
    D.f64: (1e-12, 1e-13),
    D.u8: (0, 0),
    D.u32: (0, 0),
    D.i64: (0, 0),
    D.bool_: (0, 0),
}
FLOATS = (D.f16, D.bf16, D.f32, D.f64)
VIEW_KINDS = ("contig", "offset", "transposed", "narrow", "bcast_row", "bcast_col", "scalar")


def rand(shape, dtype, rng, low=-3.0, high=3.0):
    if dtype.is_float:
        return rng.uniform(low, high, size=shape).astype(dtype.np_dtype)
    if dtype.is_bool:
        return rng.integers(0, 2, size=shape).astype(bool)
    hi = 50 if dtype is D.u8 else 1000
    lo = 0 if dtype in (D.u8, D.u32) else -1000
    return rng.integers(lo, hi, size=shape).astype(dtype.np_dtype)


def storage_of(values: np.ndarray, kind: str):
    """(storage, layout, logical values) for a 2-D ``values`` seen through view ``kind``.
    Broadcast kinds replace ``values`` by a broadcast of its first row / column / element."""
    m, n = values.shape
    dt = values.dtype
    if kind == "contig":
        return values.reshape(-1).copy(), Layout.contiguous((m, n)), values
    if kind == "offset":
        s = np.concatenate([np.zeros(3, dt), values.reshape(-1)])
        return s, Layout.contiguous((m, n), offset=3), values
    if kind == "transposed":
        s = np.ascontiguousarray(values.T).reshape(-1)
        return s, Layout.contiguous((n, m)).transpose(0, 1), values
    if kind == "narrow":
        wide = np.concatenate([np.zeros((m, 1), dt), values, np.zeros((m, 2), dt)], axis=1)
        return wide.reshape(-1).copy(), Layout.contiguous((m, n + 3)).narrow(1, 1, n), values
    if kind == "bcast_row":
        row = values[:1].copy()
        return row.reshape(-1), Layout((m, n), (0, 1), 0), np.broadcast_to(row, (m, n))
    if kind == "bcast_col":
        col = values[:, :1].copy()
        return col.reshape(-1), Layout((m, n), (1, 0), 0), np.broadcast_to(col, (m, n))
    if kind == "scalar":
        v = values[:1, :1].copy()
        return v.reshape(-1), Layout((m, n), (0, 0), 0), np.broadcast_to(v, (m, n))
    raise ValueError(kind)


def check(actual_storage, expected, dtype, rtol=None, atol=None):
    """Compare a result storage with the expected array: size, dtype, then values."""
    expected = np.asarray(expected)
    assert actual_storage.ndim == 1 and actual_storage.flags.c_contiguous
    assert actual_storage.size == expected.size, (actual_storage.size, expected.shape)
    assert actual_storage.dtype == dtype.np_dtype, (actual_storage.dtype, dtype)
    r, a = TOL[dtype]
    a_f = actual_storage.astype(np.float64) if dtype.np_dtype.itemsize == 2 else actual_storage
    e_f = expected.reshape(-1)
    if dtype.np_dtype.itemsize == 2:
        e_f = e_f.astype(np.float64)
    assert_allclose(a_f, e_f, rtol=r if rtol is None else rtol, atol=a if atol is None else atol,
                    equal_nan=True)  # fmt: skip
