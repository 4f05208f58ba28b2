"""GPipe pipeline parallelism: ``PipelineStage`` (a chain of layers) and
``PipelineParallel(stages, micro_batches)``.

The batch is split into ``m`` micro-batches along dim 0; stage ``s`` has its own worker
thread, which runs micro-batch ``j`` as soon as stage ``s - 1`` has finished it, so with ``p``
stages up to ``p`` micro-batches are in flight (GPipe's schedule: all forwards, then all
backwards). Each (stage, micro-batch) is one autograd node whose inner graph is recorded in
its worker, so:

* ``loss.backward()`` on the concatenated output works as for the unsplit model (the walk
  runs the stage graphs one after another) and gives the same gradients;
* ``pp.backward(loss)`` runs the backward pipelined too: the loss's gradient with respect to
  each micro-batch output is taken first, then each stage's worker back-propagates the
  micro-batches in turn and hands the input gradient to the previous stage.

``last_stats`` measures the schedule: each stage's busy time against the makespan gives the
bubble fraction (idle share), to compare with GPipe's ``(p - 1) / (m + p - 1)`` for
balanced stages. Worker threads run with the caller's grad mode and autocast dtype.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import shrew_core as sc
from shrew_core import Function, GradStore, Tensor
from shrew_core.autocast import get_autocast_dtype
from shrew_core.autograd import backward as autograd_backward
from shrew_nn import Module, ModuleList

from .data_parallel import run_in_mode, split_sizes
from .errors import DistributedError

_STOP = object()  # sent downstream when a stage failed


class PipelineStage(Module):
    """Stage ``index`` of a pipeline: ``add_layer(module)`` appends a layer (returns the stage,
    so calls chain); ``forward`` applies the layers in order."""

    def __init__(self, index: int) -> None:
        super().__init__()
        self.index = int(index)

    def add_layer(self, module: Module) -> PipelineStage:
        self.add_module(str(len(self._modules)), module)
        return self

    @property
    def layers(self) -> list[Module]:
        return list(self._modules.values())

    def forward(self, x: Any) -> Any:
        for layer in self._modules.values():
            x = layer(x)
        return x


@dataclass
class PipelineStats:
    """Measured schedule of the last pipelined forward (and ``backward``, if run).

    Attributes:
        stages, micro_batches: ``p`` and ``m``.
        forward_s / backward_s: makespans in seconds (``backward_s`` None until backward).
        forward_bubble / backward_bubble: ``1 - sum(stage busy time) / (p * makespan)``.
        ideal_bubble: GPipe's ``(p - 1) / (m + p - 1)`` for balanced stages.
    """

    stages: int
    micro_batches: int
    forward_s: float
    forward_bubble: float
    backward_s: float | None = None
    backward_bubble: float | None = None

    @property
    def ideal_bubble(self) -> float:
        p, m = self.stages, self.micro_batches
        return (p - 1) / (m + p - 1)


def _bubble(spans: list[tuple[float, float]], stages: int) -> tuple[float, float]:
    start = min(a for a, _ in spans)
    makespan = max(b for _, b in spans) - start
    busy = sum(b - a for a, b in spans)
    return makespan, (1.0 - busy / (stages * makespan)) if makespan > 0 else 0.0


class _StageCall(Function):
    """One stage on one micro-batch as a single autograd node of the outer graph."""

    @staticmethod
    def forward(ctx, x: Tensor, stage: Module, *params: Tensor) -> Tensor:
        with sc.enable_grad():
            local_in = x.detach()
            if ctx.needs_input_grad[0]:
                local_in.requires_grad_()
            local_out = stage(local_in)
        if not isinstance(local_out, Tensor):
            raise DistributedError(
                f"PipelineParallel: stage {getattr(stage, 'index', '?')} returned "
                f"{type(local_out).__name__}; stages must return one tensor"
            )
        ctx.local_in, ctx.local_out, ctx.params = local_in, local_out, params
        ctx.capture = None
        return local_out.detach()

    @staticmethod
    def backward(ctx, g: Tensor):
        nothing = (None,) * (1 + len(ctx.params))
        if ctx.capture is not None:  # PipelineParallel.backward takes it from here
            ctx.capture(g)
            return nothing
        if not ctx.local_out.requires_grad:
            return nothing
        gs = autograd_backward(ctx.local_out, g)
        local_in = ctx.local_in
        return (gs.get(local_in) if local_in.requires_grad else None,) + tuple(
            gs.get(p) for p in ctx.params
        )


class PipelineParallel(Module):
    """GPipe over ``stages`` (PipelineStages or any Modules) with ``micro_batches`` splits.

    Attributes:
        stages: the stages (a ModuleList: parameters ``stages.0.0.weight``, ...).
        micro_batches: the number of micro-batches (at most the batch size is used).
        last_stats: PipelineStats of the last forward/backward.
    """

    def __init__(self, stages: Sequence[Module], micro_batches: int = 1) -> None:
        super().__init__()
        stages = list(stages)
        if not stages or not all(isinstance(s, Module) for s in stages):
            raise ValueError("PipelineParallel: stages must be a non-empty list of Modules")
        if isinstance(micro_batches, bool) or not isinstance(micro_batches, int) or (
            micro_batches <= 0
        ):
            raise ValueError(f"PipelineParallel: micro_batches must be a positive int, got "
                             f"{micro_batches!r}")  # fmt: skip
        self.stages = ModuleList(stages)
        self.micro_batches = micro_batches
        self.last_stats: PipelineStats | None = None
        self._ctxs: list[list[Any]] | None = None
        self._input: tuple[Tensor, list[int]] | None = None

    # ------------------------------------------------------------------ scheduling
    def _run(self, order: list[int], first_inbox: list[tuple[int, Any]], work):
        """Run ``work(stage, j, value) -> value`` on one thread per stage, stages in
        ``order``; returns the last stage's outputs by micro-batch and the busy spans."""
        inboxes: list[queue.Queue] = [queue.Queue() for _ in order]
        for item in first_inbox:
            inboxes[0].put(item)
        results: dict[int, Any] = {}
        spans: list[tuple[float, float]] = []
        errors: list[tuple[int, BaseException]] = []
        lock = threading.Lock()
        n = len(first_inbox)

        def worker(k: int) -> None:
            s = order[k]
            downstream = inboxes[k + 1] if k + 1 < len(order) else None
            for _ in range(n):
                item = inboxes[k].get()
                if item is _STOP:
                    break
                j, value = item
                try:
                    t0 = time.perf_counter()
                    value = work(s, j, value)
                    t1 = time.perf_counter()
                except BaseException as exc:  # noqa: BLE001 - re-raised by the caller
                    with lock:
                        errors.append((s, exc))
                    break
                with lock:
                    spans.append((t0, t1))
                if downstream is None:
                    results[j] = value
                else:
                    downstream.put((j, value))
            else:
                return
            if downstream is not None:
                downstream.put(_STOP)

        threads = [
            threading.Thread(target=worker, args=(k,), name=f"shrew-pipe-{order[k]}", daemon=True)
            for k in range(len(order))
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            s, exc = errors[0]
            if hasattr(exc, "add_note"):
                exc.add_note(f"(raised in PipelineParallel stage {s})")
            raise exc
        return results, spans

    # ------------------------------------------------------------------ forward / backward
    def forward(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor) or x.ndim == 0:
            raise DistributedError("PipelineParallel: forward needs a tensor with a batch dim")
        m = min(self.micro_batches, x.shape[0]) or 1
        sizes = split_sizes(x.shape[0], m)
        chunks, start = [], 0
        for size in sizes:
            chunks.append(x.narrow(0, start, size))
            start += size
        stages = list(self.stages)
        p = len(stages)
        grad = sc.is_grad_enabled()
        ctxs: list[list[Any]] = [[None] * m for _ in range(p)]

        def call(s: int, j: int, value: Tensor) -> Tensor:
            stage = stages[s]
            if not grad:
                return stage(value)
            params = [q for q in stage.parameters() if q.requires_grad]
            out = _StageCall.apply(value, stage, *params)
            if out._node is not None:
                ctxs[s][j] = out._node.saved[1]
            return out

        work = run_in_mode(call, grad, get_autocast_dtype())
        outs, spans = self._run(list(range(p)), list(enumerate(chunks)), work)
        makespan, bubble = _bubble(spans, p)
        self.last_stats = PipelineStats(p, m, makespan, bubble)
        self._ctxs = ctxs if grad else None
        self._input = (x, sizes)
        return sc.cat([outs[j] for j in range(m)], 0)

    def backward(self, loss: Tensor, grad: Tensor | None = None) -> GradStore:
        """Gradients of ``loss`` with the stages' backward pipelined (one worker per stage);
        equal to ``loss.backward()``. Needs the graph of the last grad-enabled forward."""
        ctxs = self._ctxs
        if ctxs is None:
            raise DistributedError(
                "PipelineParallel.backward: no forward with grad enabled to back-propagate"
            )
        p, m = len(ctxs), len(ctxs[0])
        captured: dict[int, Tensor] = {}
        for j, ctx in enumerate(ctxs[-1]):
            if ctx is not None:
                ctx.capture = lambda g, j=j: captured.__setitem__(j, g)
        try:
            outer = autograd_backward(loss, grad)
        finally:
            for ctx in ctxs[-1]:
                if ctx is not None:
                    ctx.capture = None
        sums: list[dict[int, tuple[Tensor, Tensor]]] = [{} for _ in range(p)]

        def back(s: int, j: int, g: Tensor | None) -> Tensor | None:
            ctx = ctxs[s][j]
            if g is None or ctx is None or not ctx.local_out.requires_grad:
                return None
            gs = autograd_backward(ctx.local_out, g)
            acc = sums[s]
            for q in ctx.params:
                gq = gs.get(q)
                if gq is not None:
                    prev = acc.get(id(q))
                    acc[id(q)] = (q, gq if prev is None else prev[1] + gq)
            return gs.get(ctx.local_in) if ctx.local_in.requires_grad else None

        first = [(j, captured.get(j)) for j in reversed(range(m))]
        input_grads, spans = self._run(list(reversed(range(p))), first, back)
        self._ctxs = None  # the stage graphs are consumed
        out = outer.copy()
        with sc.no_grad():
            for acc in sums:
                for q, gq in acc.values():
                    prev = out.get(q)
                    out[q] = gq if prev is None else prev + gq
        self._merge_input_grad(out, input_grads)
        makespan, bubble = _bubble(spans, p) if spans else (0.0, 0.0)
        if self.last_stats is not None:
            self.last_stats.backward_s, self.last_stats.backward_bubble = makespan, bubble
        return out

    def _merge_input_grad(self, out: GradStore, input_grads: dict[int, Any]) -> None:
        """Carry the input's gradient on: into the store for a variable leaf, or through the
        graph that produced the input."""
        x, sizes = self._input
        if not x.requires_grad or not any(g is not None for g in input_grads.values()):
            return
        with sc.no_grad():
            parts = [
                input_grads.get(j) if input_grads.get(j) is not None
                else sc.zeros(size, *x.shape[1:], dtype=x.dtype, device=x.device)
                for j, size in enumerate(sizes)
            ]  # fmt: skip
            gx = sc.cat(parts, 0)
        if x._node is None:
            prev = out.get(x)
            out[x] = gx if prev is None else prev + gx
            return
        for t, g in autograd_backward(x, gx).items():
            prev = out.get(t)
            out[t] = g if prev is None else prev + g
