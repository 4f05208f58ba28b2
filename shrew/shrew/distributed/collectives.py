"""Collectives on Shrew tensors: ``all_reduce``, ``broadcast``, ``all_gather``,
``reduce_scatter``, ``barrier``.

Each works in place on its tensor and also returns it. ``op`` is a string: ``"sum"``,
``"avg"``, ``"max"``, ``"min"``, ``"prod"`` (``ReduceOp.SUM`` ... are the same strings).

Staging: a CPU tensor that is contiguous in its storage is handed to the backend as its own
memory (zero-copy); other tensors (non-contiguous views, other devices) go through a
contiguous host copy that is written back afterwards. f16 and bf16 are *reduced in f32*:
converted, reduced, then rounded once (MPI has no bf16 type, and one rounding matches a
1-process f32 sum) — so every rank gets bit-identical values. ``broadcast`` and
``all_gather`` move raw bytes, exact for every dtype. Every call first checks that all ranks
called the same collective with the same shape and dtype (CollectiveMismatchError on every
rank otherwise) within the group's timeout.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

import shrew_core as sc
from shrew_core import ALL_DTYPES, DTypeError, Tensor

from .errors import DistributedError
from .group import ProcessGroup, current_group, describe_call, make_signature


class ReduceOp:
    """torch.distributed's names for the reduce-op strings."""

    SUM = "sum"
    AVG = "avg"
    MAX = "max"
    MIN = "min"
    PRODUCT = "prod"


_OPS = ("sum", "avg", "max", "min", "prod")
_HALF = (sc.f16, sc.bf16)


def _check_op(op: str, what: str) -> str:
    if op not in _OPS:
        raise DistributedError(f"{what}: op must be one of {_OPS}, got {op!r}")
    return op


def _check_tensor(t, what: str) -> Tensor:
    if not isinstance(t, Tensor):
        raise TypeError(f"{what}: expected a shrew Tensor, got {type(t).__name__}")
    return t


def _group(group: ProcessGroup | None, what: str) -> ProcessGroup:
    return group if group is not None else current_group(what)


def signature(kind: str, t: Tensor, op: str = "", root: int = 0) -> np.ndarray:
    return make_signature(kind, op, ALL_DTYPES.index(t.dtype), t.shape, root)


def reduce_dtype(dtype: sc.DType, op: str, what: str) -> np.dtype:
    """The NumPy dtype a tensor of ``dtype`` is reduced in (f32 for f16/bf16)."""
    if dtype in _HALF:
        return np.dtype(np.float32)
    if dtype is sc.bool_:
        if op not in ("max", "min"):
            raise DTypeError(f"{what}: op {op!r} is not defined for bool tensors (use max/min)")
        return np.dtype(np.uint8)
    if op == "avg" and not dtype.is_float:
        raise DTypeError(f"{what}: op 'avg' needs a floating-point tensor, got {dtype}")
    return dtype.np_dtype


def stage(t: Tensor, np_dtype: np.dtype | None = None) -> tuple[np.ndarray, Callable]:
    """A 1-D contiguous host buffer holding ``t`` (its own memory when possible) and the
    function that writes a result buffer back into ``t``."""
    arr = t.numpy()
    np_dtype = arr.dtype if np_dtype is None else np.dtype(np_dtype)
    on_host = t.device.type == "cpu"
    if on_host and arr.dtype == np_dtype and arr.flags.c_contiguous and arr.size:
        return arr.reshape(-1), _no_writeback
    buf = np.ascontiguousarray(arr, dtype=np_dtype).reshape(-1)

    def write_back(result: np.ndarray) -> None:
        if on_host:
            np.copyto(arr, result.reshape(arr.shape), casting="unsafe")
        else:
            src = sc.from_numpy(result.reshape(t.shape).astype(t.dtype.np_dtype), device=t.device)
            with sc.no_grad():
                t.detach().copy_(src)

    return buf, write_back


def _no_writeback(result: np.ndarray) -> None:
    return None


def all_reduce(tensor: Tensor, op: str = "sum", group: ProcessGroup | None = None) -> Tensor:
    """Reduce ``tensor`` over all ranks with ``op``; every rank ends with the result."""
    what = "all_reduce"
    t = _check_tensor(tensor, what)
    op = _check_op(op, what)
    wire = reduce_dtype(t.dtype, op, what)
    g = _group(group, what)
    g.verify(what, signature(what, t, op), describe_call)
    buf, write_back = stage(t, wire)
    g.allreduce(buf, "sum" if op == "avg" else op)
    if op == "avg":
        np.divide(buf, g.world_size, out=buf)
    write_back(buf)
    return t


def broadcast(tensor: Tensor, src: int = 0, group: ProcessGroup | None = None) -> Tensor:
    """Overwrite ``tensor`` on every rank with rank ``src``'s values."""
    what = "broadcast"
    t = _check_tensor(tensor, what)
    g = _group(group, what)
    if isinstance(src, bool) or not isinstance(src, int) or not 0 <= src < g.world_size:
        raise DistributedError(f"broadcast: src must be a rank in 0..{g.world_size - 1}, got {src}")
    g.verify(what, signature(what, t, root=src), describe_call)
    buf, write_back = stage(t)
    g.broadcast(buf, src)
    write_back(buf)
    return t


def all_gather(
    tensor_or_list: Tensor | list[Tensor],
    tensor: Tensor | None = None,
    group: ProcessGroup | None = None,
) -> list[Tensor]:
    """Every rank's ``tensor``, in rank order: ``all_gather(t) -> [t_0, ..., t_{N-1}]``.

    torch's form ``all_gather(tensor_list, t)`` fills ``tensor_list`` in place (and returns
    it). Every rank must pass the same shape and dtype."""
    what = "all_gather"
    out_list = None
    if isinstance(tensor_or_list, list):
        out_list, t = tensor_or_list, _check_tensor(tensor, what)
    else:
        t = _check_tensor(tensor_or_list, what)
    g = _group(group, what)
    if out_list is not None and len(out_list) != g.world_size:
        raise DistributedError(
            f"all_gather: tensor_list has {len(out_list)} tensors for {g.world_size} ranks"
        )
    g.verify(what, signature(what, t), describe_call)
    buf, _ = stage(t)
    out = np.empty((g.world_size, buf.size), buf.dtype)
    g.allgather(buf, out)
    gathered = [sc.from_numpy(out[r].reshape(t.shape), device=t.device) for r in range(len(out))]
    if out_list is None:
        return gathered
    with sc.no_grad():
        for dst, src in zip(out_list, gathered):
            dst.detach().copy_(src)
    return out_list


def reduce_scatter(
    output: Tensor,
    input: Tensor | Sequence[Tensor],  # noqa: A002 - torch's keyword
    op: str = "sum",
    group: ProcessGroup | None = None,
) -> Tensor:
    """Reduce ``input`` over the ranks and leave rank r's share in ``output``.

    ``input`` is a list of ``world_size`` tensors shaped like ``output`` (torch's
    ``reduce_scatter``) or one tensor whose dim 0 is ``world_size * output.shape[0]``
    (torch's ``reduce_scatter_tensor``): rank r receives the reduction of chunk r."""
    what = "reduce_scatter"
    out = _check_tensor(output, what)
    op = _check_op(op, what)
    g = _group(group, what)
    parts = list(input) if not isinstance(input, Tensor) else None
    if parts is not None:
        if len(parts) != g.world_size or any(
            not isinstance(p, Tensor) or p.shape != out.shape or p.dtype != out.dtype
            for p in parts
        ):
            raise DistributedError(
                f"reduce_scatter: input must be {g.world_size} tensors of shape {out.shape} "
                f"and dtype {out.dtype}"
            )
        whole = sc.cat([p.detach().reshape((1,) + out.shape) for p in parts], 0)
    else:
        whole = input
        want = (g.world_size * (out.shape[0] if out.ndim else 1),) + out.shape[1:]
        if whole.shape != want or whole.dtype != out.dtype:
            raise DistributedError(
                f"reduce_scatter: input {whole.dtype} {whole.shape} does not match output "
                f"{out.dtype} {out.shape} on {g.world_size} ranks (expected {want})"
            )
    wire = reduce_dtype(out.dtype, op, what)
    g.verify(what, signature(what, out, op), describe_call)
    inp_buf, _ = stage(whole, wire)
    out_buf, write_back = stage(out, wire)
    g.reduce_scatter(inp_buf, out_buf, "sum" if op == "avg" else op)
    if op == "avg":
        np.divide(out_buf, g.world_size, out=out_buf)
    write_back(out_buf)
    return out


reduce_scatter_tensor = reduce_scatter


def barrier(group: ProcessGroup | None = None) -> None:
    """Wait until every rank has called ``barrier``."""
    _group(group, "barrier").barrier()
