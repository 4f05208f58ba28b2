"""The compiled tape of one graph for one set of input shapes: instructions, value
lifetimes, memory slots, frees, and the run loop that measures its memory.

Every value the tape computes lives in a *slot*: a buffer that the instruction producing
it either writes through an out-parameter path (generated kernels, BLAS GEMM into a
given array) or adopts from an op that allocates its own result. After a value's last
use (and the last use of every view of it) the tape drops it; if a later value of the
same byte size and dtype is written through an out path, the slot's buffer is handed to
it instead of being released (``reused_slots``). Slots live for one run: nothing is
shared between runs, so outputs never alias a later run's buffers.

In a run that records gradients, a buffer that an autograd node may keep for backward
(the input of any instruction whose result requires grad) is never handed on, and the
memory meter counts such buffers until autograd frees them (a finalizer on the buffer),
not when the tape drops them.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import numpy as np

import shrew_core as sc
from shrew_core import ShrewError
from shrew_core.layout import Layout
from shrew_core.tensor import Tensor

from ..errors import ExecutionError, where

try:  # the host backend's Layout -> NumPy view (only host tapes call it)
    from shrew_cpu.strided import view
except ImportError:  # pragma: no cover - shrew_cpu is a dependency of shrew
    view = None


@dataclass
class JitStats:
    """What ``JitExecutor.stats(graph)`` reports for a compiled tape.

    Attributes:
        instructions: tape entries: loads of inputs/params, computations and frees.
        slots: distinct buffers the tape owns (one per value unless reused).
        reused_slots: values written into a buffer freed earlier in the run.
        frees: points where a value is dropped after its last use.
        fused_kernels: instructions that run a generated elementwise kernel (chains and
            GEMM epilogues).
        peak_bytes: measured high-water mark, during the last run, of the buffers the tape
            owns (intermediates and outputs; inputs and params excluded).
        intermediate_bytes: the bytes of every value the tape computes, as if nothing were
            freed or reused (what an interpreter holding all values needs).
        compile_seconds: time to build the tape (not the first run itself).
    """

    instructions: int = 0
    slots: int = 0
    reused_slots: int = 0
    frees: int = 0
    fused_kernels: int = 0
    peak_bytes: int = 0
    intermediate_bytes: int = 0
    compile_seconds: float = 0.0
    source_nodes: int = 0

    def __str__(self) -> str:
        return (
            f"CompiledGraph: {self.instructions} instructions ({self.source_nodes} source "
            f"nodes), {self.slots} slots ({self.reused_slots} reused), {self.frees} frees, "
            f"{self.fused_kernels} fused, peak {self.peak_bytes} of "
            f"{self.intermediate_bytes} bytes, compiled in {self.compile_seconds * 1e6:.0f}us"
        )


class _Meter:
    """Live and peak bytes of the tape's buffers during one run."""

    __slots__ = ("live", "peak")

    def __init__(self) -> None:
        self.live = 0
        self.peak = 0

    def add(self, n: int) -> None:
        self.live += n
        if self.live > self.peak:
            self.peak = self.live

    def sub(self, n: int) -> None:
        self.live -= n


class _State:
    """Per-run state handed to instructions."""

    __slots__ = ("vals", "bufs", "meter", "grad", "ctx", "backend")

    def __init__(self, n_vals, n_slots, grad, ctx, backend):
        self.vals = [None] * n_vals
        self.bufs = [None] * n_slots
        self.meter = _Meter()
        self.grad = grad
        self.ctx = ctx
        self.backend = backend

    def track(self, storage, nbytes: int) -> None:
        """Count a new buffer; under autograd it stays counted until it is really freed."""
        self.meter.add(nbytes)
        if self.grad:
            try:
                weakref.finalize(storage, self.meter.sub, nbytes)
            except TypeError:  # a storage type without weak references: count it as kept
                pass


@dataclass
class Instr:
    """One computation. ``ins``/``out`` are value indices; ``slot`` the output's buffer.

    ``frees`` (value indices) and ``releases`` (slots) run right after it.
    """

    node: object
    ins: list[int]
    out: int
    label: str
    slot: int | None = None
    slot_bytes: int = 0
    owned: bool = False  # the output is a new buffer (not a view of another value)
    keep_buffer: bool = False  # store an adopted buffer so a later value can reuse it
    frees: list[int] = field(default_factory=list)
    releases: list[int] = field(default_factory=list)
    fused: bool = False
    reused: bool = False
    in_names: tuple[str, ...] = ()
    graph: str = ""

    def fail(self, err: Exception) -> ExecutionError:
        names = ", ".join(repr(n) for n in self.in_names)
        return ExecutionError(
            f"{where(self.graph, self.node)}: {self.node.op} (inputs {names}): {err}"
        )

    def take_buffer(self, st: _State, n: int, np_dtype) -> np.ndarray:
        buf = st.bufs[self.slot]
        if buf is None or buf.size != n or buf.dtype != np_dtype:
            buf = np.empty(n, np_dtype)
            st.bufs[self.slot] = buf
            st.track(buf, self.slot_bytes)
        return buf


class GenericInstr(Instr):
    """An op run through the executor's op table (exactly what the interpreter does)."""

    def run(self, st: _State) -> None:
        vals = st.vals
        value = st.ctx.evaluate(self.node, [vals[i] for i in self.ins])
        vals[self.out] = value
        if self.owned:
            storages = _storages(value)
            if storages:
                if self.keep_buffer:
                    st.bufs[self.slot] = storages[0]
                st.track(storages[0], self.slot_bytes)


class GemmInstr(Instr):
    """``matmul`` / ``linear`` / ``matmul_add`` as one BLAS call into the slot's buffer
    (host backend, float32/64), then the bias/addend added in place. Exactly the
    interpreter's arithmetic: the same GEMM, then the same IEEE additions."""

    kind: str = "matmul"
    shape: tuple = ()
    dtype: object = None
    layout: object = None

    def run(self, st: _State) -> None:
        vals = st.vals
        try:
            a, b = vals[self.ins[0]], vals[self.ins[1]]
            buf = self.take_buffer(st, _numel(self.shape), self.dtype.np_dtype)
            out = buf.reshape(self.shape)
            gemm_into(self.kind, a, b, out)
            if len(self.ins) > 2:
                np.add(out, view_of(vals[self.ins[2]]), out=out)
        except (ShrewError, ValueError, TypeError) as e:
            raise self.fail(e) from e
        vals[self.out] = Tensor._make(buf, self.layout, self.dtype, st.backend)


class FusedInstr(Instr):
    """A generated elementwise kernel (optionally after a GEMM whose result it reads and
    overwrites in place: a matmul + bias + activation epilogue)."""

    chain: object = None  # FusedChain
    gemm: str | None = None  # "matmul" / "linear" / "matmul_add": ins[0:2] are its operands
    mode: str = "kernel"  # kernel | grad | protocol | compose

    def run(self, st: _State) -> None:
        vals = st.vals
        fc = self.chain
        try:
            ins = [vals[i] for i in self.ins]
            if self.gemm is not None:
                ins = self._gemm(st, ins)
            if self.mode == "kernel":
                buf = self.take_buffer(st, fc.numel, fc.out_dtype.np_dtype)
                if fc.run_into(ins, buf):
                    vals[self.out] = fc.wrap(buf, st.backend)
                    return
            elif self.mode == "grad":
                buf = self.take_buffer(st, fc.numel, fc.out_dtype.np_dtype)
                out = fc.apply(ins, buf, st.backend)
                if out is not None:
                    vals[self.out] = out
                    return
            elif self.mode == "protocol":
                out = _protocol(fc, ins, st.backend)
                if out is not None:
                    vals[self.out] = out
                    self._track_new(st, out)
                    return
            out = fc.compose(st.ctx, ins)
            vals[self.out] = out
            if self.mode in ("compose", "protocol"):
                self._track_new(st, out)
        except ExecutionError:
            raise
        except (ShrewError, ValueError, TypeError, ZeroDivisionError) as e:
            raise self.fail(e) from e

    def _track_new(self, st, out) -> None:
        if self.owned and isinstance(out, Tensor):
            st.track(out._storage, self.slot_bytes)

    def _gemm(self, st: _State, ins: list) -> list:
        """Compute the GEMM operand of the chain; returns the chain's inputs."""
        a, b = ins[0], ins[1]
        rest = ins[2:]
        fc = self.chain
        if self.mode == "kernel":
            buf = self.take_buffer(st, fc.numel, fc.out_dtype.np_dtype)
            gemm_into(self.gemm, a, b, buf.reshape(fc.out_shape))
            mm = fc.wrap(buf, st.backend)
        else:  # differentiable: the GEMM through shrew_core, the chain through its Function
            mm = gemm_autograd(self.gemm, a, b)
        return [mm, *rest]


def gemm_into(kind: str, a: Tensor, b: Tensor, out: np.ndarray) -> None:
    """The GEMM of ``matmul``/``linear``/``matmul_add``/``module_linear`` into ``out`` (the
    result's shape), through the same BLAS call the backend makes."""
    av, bv = view_of(a), view_of(b)
    if kind in ("linear", "module_linear"):
        bv = bv.T
    if kind == "module_linear" and av.ndim > 2:  # shrew_nn.Linear: one GEMM over leading dims
        np.matmul(av.reshape(-1, av.shape[-1]), bv, out=out.reshape(-1, bv.shape[-1]))
    else:
        np.matmul(av, bv, out=out)


def gemm_autograd(kind: str, a: Tensor, b: Tensor) -> Tensor:
    """The same GEMM through shrew_core, recording gradients (one node for linear)."""
    if kind == "linear":
        return sc.linear(a, b)
    if kind == "module_linear":
        from .lowering import module_linear

        return module_linear(None, None, [a, b])
    return sc.matmul(a, b)


def protocol_program(chain) -> tuple | None:
    """The chain in the program format of ``Backend.fused_elementwise`` (protocol float ops,
    no attributes), or None when it is not expressible there."""
    from shrew_core.backend import BINARY_OPS, UNARY_OPS

    rename = {"mod": "remainder"}
    program, index, n = [], {}, chain.n_inputs
    for k, step in enumerate(chain.steps):
        op = rename.get(step.op, step.op)
        if step.attrs or (op not in UNARY_OPS and op not in BINARY_OPS):
            return None
        refs = []
        for a in step.args:
            if a[0] == "in":
                refs.append(a[1])
            elif a[0] == "step":
                refs.append(index[a[1]])
            else:
                program.append(("const", float(a[1])))
                refs.append(n + len(program) - 1)
        program.append((op, *refs))
        index[k] = n + len(program) - 1
    return tuple(program)


def _protocol(fc, ins, backend):
    """The chain through the backend's optional ``fused_elementwise`` kernel."""
    program = protocol_program(fc.chain)
    dtype = fc.out_dtype
    if program is None or not dtype.is_float:
        return None
    if not all(isinstance(t, Tensor) and t.dtype is dtype for t in ins):
        return None
    storage = backend.fused_elementwise(
        program, [(t._storage, t.layout, t.dtype) for t in ins], fc.out_shape, dtype
    )
    return Tensor._make(storage, Layout.contiguous(fc.out_shape), dtype, backend)


def view_of(t: Tensor) -> np.ndarray:
    return view(t._storage, t.layout)


def _numel(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _storages(value) -> list:
    if isinstance(value, Tensor):
        return [value._storage]
    if isinstance(value, (tuple, list)):
        out = []
        for v in value:
            out += _storages(v)
        return out
    return []


class Tape:
    """One graph compiled for one input signature."""

    def __init__(self, graph_name, graph, instrs, inputs, params, outputs, n_vals, slot_bytes,
                 stats, ctx, backend, grad, loads):  # fmt: skip
        self.graph_name, self.graph = graph_name, graph
        self.instrs = instrs
        self.inputs = inputs  # value index per graph input, in graph.inputs order
        self.params = params  # (value index, param name)
        self.outputs = outputs  # (output name, value index)
        self.n_vals, self.n_slots = n_vals, len(slot_bytes)
        self.slot_bytes = slot_bytes
        self.stats = stats
        self.ctx, self.backend, self.grad = ctx, backend, grad
        self.loads = loads  # (label, value index) for the dump

    def run(self, params: dict, bound: list) -> dict:
        st = _State(self.n_vals, self.n_slots, self.grad, self.ctx, self.backend)
        vals = st.vals
        for pos, t in zip(self.inputs, bound):
            vals[pos] = t
        for pos, name in self.params:
            vals[pos] = params[name]
        meter = st.meter
        bufs = st.bufs
        for ins in self.instrs:
            ins.run(st)
            for j in ins.frees:
                vals[j] = None
            for s in ins.releases:
                bufs[s] = None
                if not self.grad:
                    meter.sub(self.slot_bytes[s])
        self.stats.peak_bytes = meter.peak
        return {name: vals[j] for name, j in self.outputs}

    def dump(self) -> str:
        lines = [f"=== JIT Compiled: {self.graph_name} ===", str(self.stats), ""]
        k = 0
        for label, pos in self.loads:
            lines.append(f"  [{k:3d}] {label} -> v{pos}")
            k += 1
        for ins in self.instrs:
            tag = " (reused slot)" if ins.reused else ""
            slot = f" -> slot {ins.slot}{tag}" if ins.slot is not None and ins.owned else ""
            lines.append(f"  [{k:3d}] {ins.label} = v{ins.out}{slot}  @ node {ins.node.name!r}")
            k += 1
            for j in ins.frees:
                lines.append(f"  [{k:3d}] Free v{j}")
                k += 1
        outs = ", ".join(f"{n}: v{j}" for n, j in self.outputs)
        lines.append(f"Outputs: {{{outs}}}")
        return "\n".join(lines)
