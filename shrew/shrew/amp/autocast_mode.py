"""``autocast``: run matmul/linear/conv in f16 or bf16 and precision-sensitive ops in f32.

The op lists and the thread-local state live in ``shrew_core.autocast`` (the ops read it);
this module is the user-facing context manager / decorator.
"""

from __future__ import annotations

import functools

import shrew_core as sc
from shrew_core.autocast import LOW_PRECISION, get_autocast_dtype, set_autocast_dtype


class autocast:  # noqa: N801 - torch's spelling
    """``with autocast(dtype=bf16):`` — mixed precision for the ops run inside, on this thread.

    Inside: ``matmul``/``mm``/``bmm``/``linear``/``conv1d``/``conv2d`` cast f32 (and the other
    half type) inputs to ``dtype``; ``softmax``, ``log_softmax``, the norms (``layer_norm``,
    ``rms_norm``, ``group_norm``, ``batch_norm``), the losses and the ``sum``/``mean``/
    ``prod``/``var``/``norm``/``cumsum``/``logsumexp`` reductions cast f16/bf16 inputs to f32.
    f64 is never cast; other ops run in their inputs' dtype. Parameters stay f32 and receive
    f32 gradients (the casts are differentiable). Run ``backward`` inside or outside: the
    gradient walk always runs with autocast off.

    Args:
        dtype: ``bf16`` (default, like torch on CPU) or ``f16``.
        enabled: ``False`` turns autocast off inside the block (also nested).

    Also a decorator: ``@autocast(dtype=sc.bf16)``.
    """

    def __init__(self, dtype=sc.bf16, enabled: bool = True) -> None:
        dt = sc.as_dtype(dtype)
        if dt not in LOW_PRECISION:
            raise ValueError(f"autocast: dtype must be f16 or bf16, got {dt}")
        self.dtype = dt
        self.enabled = bool(enabled)
        self._prev: list = []

    def __enter__(self) -> autocast:
        self._prev.append(set_autocast_dtype(self.dtype if self.enabled else None))
        return self

    def __exit__(self, *exc) -> None:
        set_autocast_dtype(self._prev.pop())

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with autocast(self.dtype, self.enabled):
                return fn(*args, **kwargs)

        return wrapper


def is_autocast_enabled() -> bool:
    """True inside an enabled ``autocast`` block on this thread."""
    return get_autocast_dtype() is not None


__all__ = ["autocast", "get_autocast_dtype", "is_autocast_enabled"]
