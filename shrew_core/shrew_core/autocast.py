"""Autocast state: the low-precision dtype (f16 or bf16) ops compute in on this thread, if any.

``shrew.amp.autocast`` sets it; a few op entry points read it (torch's op lists, stricter
on softmax, which torch's CPU list keeps in bf16):

* low precision — ``matmul`` (and mm/bmm/dot), ``linear``, ``conv1d``/``conv2d``: floating
  inputs other than f64 are cast to the autocast dtype;
* f32 — ``softmax``, ``log_softmax``, ``layer_norm``, ``rms_norm``, ``cross_entropy``, the
  ``sum``/``mean``/``prod``/``var``/``std``/``norm``/``cumsum``/``logsumexp`` reductions, and
  shrew_nn's losses and norms (``fp32_op``): f16/bf16 inputs are cast up to f32.

f64 tensors are never cast. Every other op runs in the dtype of its inputs. The cast is an
ordinary differentiable ``cast`` node, so gradients reach the f32 parameters in f32, and the
backward walk runs with autocast off (backward ops use the dtypes forward chose). The state is
thread-local: worker threads start with autocast off unless they set it themselves.
"""

from __future__ import annotations

import functools
import threading
from typing import TYPE_CHECKING

from .dtypes import DType, bf16, f16, f32, f64

if TYPE_CHECKING:
    from .tensor import Tensor

LOW_PRECISION = (f16, bf16)


class _State(threading.local):
    dtype: DType | None = None


state = _State()


def get_autocast_dtype() -> DType | None:
    """The dtype autocast computes matmul/linear/conv in on this thread, or None when off."""
    return state.dtype


def set_autocast_dtype(dtype: DType | None) -> DType | None:
    """Set this thread's autocast dtype (``None`` turns it off); returns the previous one."""
    if dtype is not None and dtype not in LOW_PRECISION:
        raise ValueError(f"autocast: dtype must be f16 or bf16 (or None), got {dtype}")
    prev = state.dtype
    state.dtype = dtype
    return prev


def to_low(t: Tensor | None) -> Tensor | None:
    """``t`` cast to the autocast dtype when autocast is on and ``t`` is f32/f16/bf16."""
    target = state.dtype
    if target is None or t is None or t.dtype is target or t.dtype is f64 or not t.dtype.is_float:
        return t
    from .ops.elementwise import cast

    return cast(t, target)


def to_f32(t: Tensor | None) -> Tensor | None:
    """``t`` cast to f32 when autocast is on and ``t`` is f16/bf16."""
    if state.dtype is None or t is None or t.dtype not in LOW_PRECISION:
        return t
    from .ops.elementwise import cast

    return cast(t, f32)


def fp32_op(fn):
    """Decorator: under autocast, f16/bf16 tensor arguments of ``fn`` are cast to f32."""
    from .tensor import Tensor

    def up(v):
        return to_f32(v) if isinstance(v, Tensor) else v

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if state.dtype is None:
            return fn(*args, **kwargs)
        return fn(*[up(a) for a in args], **{k: up(v) for k, v in kwargs.items()})

    return wrapper


class disabled:
    """``with disabled():`` — autocast off on this thread for the block (the backward walk)."""

    def __enter__(self) -> None:
        self._prev = set_autocast_dtype(None)

    def __exit__(self, *exc) -> None:
        state.dtype = self._prev
