"""Bounded spin-waits for the worker threads (``threads.py``), without the GIL, on shared
int64 counters: a worker that just finished a task watches for the next one, and the
caller waits for its helpers, for up to ``threads.SPIN`` checks (~0.2 ms) before blocking
on a queue. Waking a blocked thread took 50-250 us on the 2-core VM (an idle virtual CPU
has to be woken by the hypervisor), more than many parallel kernels run; back-to-back
kernels now hand over in ~25 us. A spin is a plain acquire load per check, so a waiting
thread costs one core for at most ~0.2 ms (OpenMP's default spin was ~ms)."""

from __future__ import annotations

from numba import njit, types
from numba.extending import intrinsic


@intrinsic
def _load_acquire(typingctx, counter):
    if not (isinstance(counter, types.Array) and counter.dtype == types.int64):
        return None

    def codegen(context, builder, sig, args):
        ary = context.make_array(sig.args[0])(context, builder, args[0])
        return builder.load_atomic(ary.data, "acquire", 8)

    return types.int64(counter), codegen


@intrinsic
def _fetch_add(typingctx, counter, value):
    if not (isinstance(counter, types.Array) and counter.dtype == types.int64):
        return None

    def codegen(context, builder, sig, args):
        ary = context.make_array(sig.args[0])(context, builder, args[0])
        val = context.cast(builder, args[1], sig.args[1], types.int64)
        return builder.atomic_rmw("add", ary.data, val, "acq_rel")

    return types.int64(counter, value), codegen


@njit(cache=True, nogil=True)
def spin_while_equal(counter, seen, checks):
    """True as soon as counter[0] != seen; False after ``checks`` checks."""
    for _ in range(checks):
        if _load_acquire(counter) != seen:
            return True
    return False


@njit(cache=True, nogil=True)
def spin_until(counter, target, checks):
    """True as soon as counter[0] >= target; False after ``checks`` checks."""
    for _ in range(checks):
        if _load_acquire(counter) >= target:
            return True
    return False


@njit(cache=True, nogil=True)
def add(counter, value):
    """counter[0] += value, atomically."""
    _fetch_add(counter, value)
