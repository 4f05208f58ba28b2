"""Element types: Shrew dtypes <-> ONNX ``TensorProto`` element types, in one table.

Export writes every Shrew dtype exactly. Import reads those exactly and widens the integer
types Shrew lacks without loss (int8/int16/int32 -> i64, uint16 -> u32), like the
checkpoint loaders; anything else (uint64, strings, complex, float8) is an ``OnnxError``
naming the type.
"""

from __future__ import annotations

import numpy as np

import shrew_core as sc

from ._deps import onnx
from .errors import OnnxError

TensorProto = onnx.TensorProto

_TO_ONNX = {
    sc.f32: TensorProto.FLOAT,
    sc.f64: TensorProto.DOUBLE,
    sc.f16: TensorProto.FLOAT16,
    sc.bf16: TensorProto.BFLOAT16,
    sc.u8: TensorProto.UINT8,
    sc.u32: TensorProto.UINT32,
    sc.i64: TensorProto.INT64,
    sc.bool_: TensorProto.BOOL,
}
_FROM_ONNX = {v: k for k, v in _TO_ONNX.items()} | {
    TensorProto.INT8: sc.i64,
    TensorProto.INT16: sc.i64,
    TensorProto.INT32: sc.i64,
    TensorProto.UINT16: sc.u32,
}
# .sw element types for ONNX element types (shrew_ir knows the narrow integers)
SW_DTYPES = {
    TensorProto.FLOAT: "f32",
    TensorProto.DOUBLE: "f64",
    TensorProto.FLOAT16: "f16",
    TensorProto.BFLOAT16: "bf16",
    TensorProto.UINT8: "u8",
    TensorProto.UINT16: "u16",
    TensorProto.UINT32: "u32",
    TensorProto.INT8: "i8",
    TensorProto.INT16: "i16",
    TensorProto.INT32: "i32",
    TensorProto.INT64: "i64",
    TensorProto.BOOL: "bool",
}


def to_onnx(dtype) -> int:
    """The ONNX element type of a Shrew dtype (or anything ``as_dtype`` accepts)."""
    return _TO_ONNX[sc.as_dtype(dtype)]


def from_onnx(elem_type: int, what: str = "tensor") -> sc.DType:
    """The Shrew dtype holding ONNX element type ``elem_type`` exactly."""
    dtype = _FROM_ONNX.get(elem_type)
    if dtype is None:
        name = TensorProto.DataType.Name(elem_type) if elem_type in TensorProto.DataType.values() \
            else str(elem_type)
        raise OnnxError(f"{what}: ONNX element type {name} has no Shrew dtype")
    return dtype


def name(elem_type: int) -> str:
    return TensorProto.DataType.Name(elem_type)


def numpy_dtype(elem_type: int) -> np.dtype:
    """The NumPy dtype of a Shrew-representable ONNX element type (after widening)."""
    return from_onnx(elem_type).np_dtype


def to_shrew_array(array: np.ndarray, what: str) -> np.ndarray:
    """``array`` in a dtype Shrew has (integers widened exactly)."""
    dtype = _NP_WIDEN.get(array.dtype)
    if dtype is not None:
        return array.astype(dtype)
    if array.dtype not in _SHREW_NP:
        raise OnnxError(f"{what}: NumPy dtype {array.dtype} has no Shrew dtype")
    return array


_NP_WIDEN = {
    np.dtype(np.int8): np.int64,
    np.dtype(np.int16): np.int64,
    np.dtype(np.int32): np.int64,
    np.dtype(np.uint16): np.uint32,
}
_SHREW_NP = {d.np_dtype for d in _TO_ONNX}
