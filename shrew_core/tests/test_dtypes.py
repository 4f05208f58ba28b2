"""The promotion table, tested exhaustively and against PyTorch where torch defines it."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import shrew_core as sc
from shrew_core.dtypes import ALL_DTYPES, PROMOTION_TABLE, promote_types, result_type_with_scalar

TORCH = {
    "bool": torch.bool,
    "uint8": torch.uint8,
    "int64": torch.int64,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float32": torch.float32,
    "float64": torch.float64,
}


def test_table_is_complete_and_symmetric():
    assert len(PROMOTION_TABLE) == len(ALL_DTYPES) ** 2
    for a, b in itertools.product(ALL_DTYPES, ALL_DTYPES):
        assert promote_types(a, b) is promote_types(b, a)
        assert promote_types(a, a) is a


def test_table_is_associative():
    for a, b, c in itertools.product(ALL_DTYPES, repeat=3):
        assert promote_types(promote_types(a, b), c) is promote_types(a, promote_types(b, c))


@pytest.mark.parametrize("a,b", list(itertools.product(TORCH, TORCH)))
def test_matches_torch(a, b):
    expected = str(torch.promote_types(TORCH[a], TORCH[b])).removeprefix("torch.")
    assert promote_types(sc.as_dtype(a), sc.as_dtype(b)).name == expected


def test_u32_rules():
    assert promote_types(sc.u8, sc.u32) is sc.u32
    assert promote_types(sc.u32, sc.i64) is sc.i64
    assert promote_types(sc.u32, sc.f16) is sc.f16


@pytest.mark.parametrize("dtype", list(TORCH))
@pytest.mark.parametrize("scalar", [True, 2, 2.5])
def test_scalar_promotion_matches_torch(dtype, scalar):
    t = torch.ones(1, dtype=TORCH[dtype])
    expected = (
        str((t * scalar).dtype).removeprefix("torch.")
        if dtype != "bool" or scalar is not True
        else "bool"
    )
    assert result_type_with_scalar(sc.as_dtype(dtype), scalar).name == expected


def test_spellings():
    for d in ALL_DTYPES:
        assert (
            sc.as_dtype(d.name) is d and sc.as_dtype(d.short) is d and sc.as_dtype(d.np_dtype) is d
        )
    assert sc.as_dtype(float) is sc.f32 and sc.as_dtype(np.float64) is sc.f64
    with pytest.raises(sc.DTypeError, match="unknown dtype"):
        sc.as_dtype("complex64")


def test_dtype_equality_is_by_dtype_and_hash_agrees():
    from dataclasses import replace

    twin = replace(sc.f32)  # another instance of the same dtype: equal, same hash
    assert twin is not sc.f32 and twin == sc.f32 and hash(twin) == hash(sc.f32)
    assert {sc.f32: "x"}[twin] == "x"
    assert sc.f32 != sc.f64 and not (sc.f32 == sc.f64)
    assert sc.f32 != "float32" and sc.f32 != np.float32 and sc.f32 != None  # noqa: E711
