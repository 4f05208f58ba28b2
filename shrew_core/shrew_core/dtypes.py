"""Data types and the one dtype-promotion table.

Shrew's dtypes map one-to-one onto NumPy dtypes (bfloat16 through ``ml_dtypes``, imported
the first time bf16's NumPy dtype is needed: ``import ml_dtypes`` costs ~0.8 s, most of
what ``import shrew_core`` would otherwise take).
Promotion follows PyTorch: ``bool < integers < floats``; within integers the wider
type wins (``u8 + u32 -> u32``, anything with ``i64 -> i64``); within floats the
wider wins and ``f16 + bf16 -> f32``. Python scalars are "weak": they never
widen a tensor of their own category (``f16 tensor * 2.5 -> f16``) and only lift
the category (``i64 tensor * 2.5 -> f32``, the default float dtype).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .errors import DTypeError


@dataclass(frozen=True)
class DType:
    """A tensor element type. Compare with ``is`` or ``==``; print for its name."""

    name: str  # long name, PyTorch/NumPy spelling: "float32"
    short: str  # seed spelling: "f32"
    np_type: type | None  # the NumPy scalar type; None: bfloat16 (ml_dtypes, lazily)
    category: int  # 0 bool, 1 integer, 2 float

    @cached_property
    def np_dtype(self) -> np.dtype:
        """The NumPy dtype (cached in the instance: reading it costs a dict lookup)."""
        if self.np_type is None:
            import ml_dtypes

            return np.dtype(ml_dtypes.bfloat16)
        return np.dtype(self.np_type)

    # cached_property: after the first read these are instance attributes (no call per op)
    @cached_property
    def is_float(self) -> bool:
        return self.category == 2

    @cached_property
    def is_int(self) -> bool:
        return self.category == 1

    @cached_property
    def is_bool(self) -> bool:
        return self.category == 0

    @cached_property
    def itemsize(self) -> int:
        return 2 if self.np_type is None else self.np_dtype.itemsize  # bf16: 2, no import

    def __repr__(self) -> str:
        return f"shrew.{self.name}"

    def __eq__(self, other) -> bool:  # one instance per dtype: identity first (the
        if self is other:  # dataclass's tuple comparison cost 270 ns per ``==``)
            return True
        return self.name == other.name if isinstance(other, DType) else NotImplemented

    def __str__(self) -> str:
        return self.name


bool_ = DType("bool", "bool", np.bool_, 0)
u8 = DType("uint8", "u8", np.uint8, 1)
u32 = DType("uint32", "u32", np.uint32, 1)
i64 = DType("int64", "i64", np.int64, 1)
f16 = DType("float16", "f16", np.float16, 2)
bf16 = DType("bfloat16", "bf16", None, 2)
f32 = DType("float32", "f32", np.float32, 2)
f64 = DType("float64", "f64", np.float64, 2)

ALL_DTYPES: tuple[DType, ...] = (bool_, u8, u32, i64, f16, bf16, f32, f64)
FLOAT_DTYPES: tuple[DType, ...] = (f16, bf16, f32, f64)
INT_DTYPES: tuple[DType, ...] = (u8, u32, i64)
DEFAULT_FLOAT = f32
DEFAULT_INT = i64

_BY_NAME = {d.name: d for d in ALL_DTYPES} | {d.short: d for d in ALL_DTYPES}
_BY_NP = {d.np_dtype: d for d in ALL_DTYPES if d is not bf16}  # + bf16 in as_dtype

# The promotion table, written out in full (row, column -> result). Symmetric.
_ORDER = ("bool", "u8", "u32", "i64", "f16", "bf16", "f32", "f64")
_TABLE_ROWS = {
    #        bool   u8    u32   i64   f16   bf16  f32   f64
    "bool": ("bool", "u8", "u32", "i64", "f16", "bf16", "f32", "f64"),
    "u8": ("u8", "u8", "u32", "i64", "f16", "bf16", "f32", "f64"),
    "u32": ("u32", "u32", "u32", "i64", "f16", "bf16", "f32", "f64"),
    "i64": ("i64", "i64", "i64", "i64", "f16", "bf16", "f32", "f64"),
    "f16": ("f16", "f16", "f16", "f16", "f16", "f32", "f32", "f64"),
    "bf16": ("bf16", "bf16", "bf16", "bf16", "f32", "bf16", "f32", "f64"),
    "f32": ("f32", "f32", "f32", "f32", "f32", "f32", "f32", "f64"),
    "f64": ("f64", "f64", "f64", "f64", "f64", "f64", "f64", "f64"),
}
PROMOTION_TABLE: dict[tuple[DType, DType], DType] = {
    (_BY_NAME[r], _BY_NAME[c]): _BY_NAME[res]
    for r, row in _TABLE_ROWS.items()
    for c, res in zip(_ORDER, row, strict=True)
}


def as_dtype(value) -> DType:
    """Accept a DType, a name (``"f32"``/``"float32"``), a NumPy dtype or a Python type."""
    if isinstance(value, DType):
        return value
    if isinstance(value, str):
        try:
            return _BY_NAME[value]
        except KeyError:
            raise DTypeError(
                f"unknown dtype {value!r}; expected one of "
                + ", ".join(d.short for d in ALL_DTYPES)
            ) from None
    if value is float:
        return DEFAULT_FLOAT
    if value is int:
        return DEFAULT_INT
    if value is bool:
        return bool_
    try:
        npd = np.dtype(value)
    except TypeError:
        raise DTypeError(f"cannot interpret {value!r} as a dtype") from None
    try:
        return _BY_NP[npd]
    except KeyError:
        if npd.name == "bfloat16" and npd == bf16.np_dtype:  # ml_dtypes is imported by now
            return bf16
        raise DTypeError(f"NumPy dtype {npd} has no Shrew equivalent") from None


def promote_types(a: DType, b: DType) -> DType:
    """The dtype two tensors of dtypes ``a`` and ``b`` combine into."""
    return PROMOTION_TABLE[(a, b)]


_PY_CATEGORY = {bool: 0, int: 1, float: 2}  # exact Python types: one lookup


def scalar_category(value) -> int:
    """0 for bool, 1 for int, 2 for float. Raises DTypeError for anything else."""
    cat = _PY_CATEGORY.get(type(value))
    if cat is not None:
        return cat
    if isinstance(value, (bool, np.bool_)):
        return 0
    if isinstance(value, (int, np.integer)):
        return 1
    if isinstance(value, (float, np.floating)):
        return 2
    raise DTypeError(f"expected a Python number, got {type(value).__name__}")


def result_type_with_scalar(dtype: DType, value) -> DType:
    """The dtype of ``tensor <op> scalar``: a scalar only lifts the category."""
    cat = scalar_category(value)
    if cat <= dtype.category:
        return dtype
    return DEFAULT_INT if cat == 1 else DEFAULT_FLOAT
