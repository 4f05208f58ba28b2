"""Small helpers shared by the layer modules."""

from __future__ import annotations

import math
from typing import Any

import shrew_core as sc
from shrew_core import Tensor

from .module import Parameter


def empty_param(*shape: int, dtype: Any = sc.f32, device: Any = "cpu") -> Tensor:
    """A zero-filled parameter (the caller initialises it)."""
    dtype = sc.as_dtype(dtype)
    if not dtype.is_float:
        raise sc.DTypeError(f"parameters must be floating point, got {dtype}")
    return Parameter(sc.zeros(*shape, dtype=dtype, device=device))


def uniform_param(shape: tuple[int, ...], bound: float, dtype: Any, device: Any) -> Tensor:
    """A parameter drawn from U(-bound, bound) (PyTorch's default for Linear/Conv/RNN)."""
    dtype = sc.as_dtype(dtype)
    if not dtype.is_float:
        raise sc.DTypeError(f"parameters must be floating point, got {dtype}")
    return Parameter(sc.uniform(shape, -bound, bound, dtype=dtype, device=device))


def fan_in_bound(fan_in: int) -> float:
    return 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0


def check_rank(op: str, x: Tensor, ranks: tuple[int, ...], what: str) -> None:
    if x.ndim not in ranks:
        raise sc.ShapeError(f"{op}: expected {what}, got input of shape {x.shape}")


def tuple_n(v: Any, n: int, name: str) -> tuple:
    if isinstance(v, int):
        return (v,) * n
    v = tuple(v)
    if len(v) != n:
        raise ValueError(f"{name}: expected an int or {n} values, got {v}")
    return v
