"""JitExecutor: an Executor whose ``run`` executes compiled tapes.

The first run of a graph with a new input signature (shapes, dtypes and strides of the
inputs, which fix every symbolic dim; the training flag; whether gradients are recorded
and which params require them) runs the interpreter once and compiles a tape from that
trace (``planner``); later runs with the same signature execute the tape. Tapes are
cached per signature (least recently used beyond ``cache_size``). Params, ``state_dict``,
``train()/eval()`` and errors are the Executor's.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping

import numpy as np

import shrew_core as sc
import shrew_ir
from shrew_core import ShapeEnv, ShrewError
from shrew_core.tensor import Tensor

from ..config import RuntimeConfig
from ..errors import ExecutionError, where
from ..executor import Executor, _load_module, _RunContext
from ..params import resolve_shape, runtime_dtype
from .lowering import JIT_OPS, expand_modules
from .planner import compile_tape
from .tape import JitStats, Tape


class _JitContext(_RunContext):
    """The executor's run context, plus the ops only the JIT's graphs contain."""

    def evaluate(self, node, args):
        fn = JIT_OPS.get(node.op)
        if fn is None:
            return super().evaluate(node, args)
        try:
            return fn(self, node, args)
        except (ShrewError, ValueError, TypeError, IndexError) as e:
            raise ExecutionError(f"{where(self.graph, node)}: {node.op}: {e}") from e


def _signature(value):
    if isinstance(value, Tensor):
        return (value.shape, value.dtype, value.layout.strides, value._requires_grad)
    if value is None:
        return None
    try:
        hash(value)
        return (type(value).__name__, value)
    except TypeError:
        return (type(value).__name__, id(value))


class JitExecutor(Executor):
    """Runs graphs through compiled instruction tapes (see the module docstring)."""

    def __init__(
        self,
        module: shrew_ir.IRModule,
        config: RuntimeConfig | None = None,
        custom_ops: Mapping[str, Callable] | None = None,
        cache_size: int = 64,
    ):
        super().__init__(module, config, custom_ops)
        self.cache_size = int(cache_size)
        self._tapes: OrderedDict[tuple, Tape] = OrderedDict()
        self._latest: dict[str, Tape] = {}
        self._lock = threading.Lock()
        self._backend = sc.zeros(0, device=self.device)._backend
        self._expanded: dict[str, shrew_ir.ir.Graph] = {}
        self._declared: dict[str, list] = {}
        for name, g in module.graphs.items():
            kinds = []
            for nid in g.inputs:
                node = g.nodes[nid]
                if isinstance(node.type, shrew_ir.TensorType):
                    dt = self._float_dtype(runtime_dtype(node.type.dtype, where(name, node)))
                    kinds.append(dt)
                else:
                    kinds.append(None)
            self._declared[name] = kinds

    # ------------------------------------------------------------------ running
    def run(self, graph: str | None = None, inputs: Mapping | None = None, **kw) -> dict:
        name, g = self._graph(graph)
        given = inputs if (not kw and type(inputs) is dict) else dict(inputs or {}, **kw)
        bound = self._quick_bind(name, g, given)
        if bound is None:
            ctx = _RunContext(self, name)
            values = ctx.bind_inputs(g, given)
            bound = [values.get(nid) for nid in g.inputs]
        params = self._params[name]
        grad = sc.is_grad_enabled() and (
            any(p._requires_grad for p in params.values())
            or any(isinstance(t, Tensor) and t._requires_grad for t in bound)
        )
        sig = tuple([_signature(t) for t in bound])
        rg = tuple([p._requires_grad for p in params.values()]) if grad else ()
        key = (name, self.training, grad, sig, rg)
        tape = self._tapes.get(key)
        if tape is None:
            return self._compile(name, g, bound, key, grad)
        if len(self._tapes) >= self.cache_size:  # keep the recently used ones on eviction
            self._tapes.move_to_end(key)
        self._latest[name] = tape
        return tape.run(params, bound)

    __call__ = run

    def _quick_bind(self, name: str, g, given: dict) -> list | None:
        """The inputs in graph order when each is already a tensor of its declared dtype on
        this device (the common case); None sends the run through the full validation."""
        out = []
        matched = 0
        for nid, dtype in zip(g.inputs, self._declared[name]):
            node = g.nodes[nid]
            if node.name not in given:
                if nid in g.optional_inputs:
                    out.append(None)
                    continue
                return None
            value = given[node.name]
            matched += 1
            if dtype is not None and not (
                isinstance(value, Tensor)
                and value.dtype is dtype
                and value._backend is self._backend
            ):
                return None
            out.append(value)
        return out if matched == len(given) else None

    def _compile(self, name: str, g, bound: list, key: tuple, grad: bool) -> dict:
        """Run the graph once on ``bound`` (op by op, as the interpreter does, with module ops
        opened up) and compile a tape from that trace."""
        g = self._expanded.get(name)
        if g is None:
            g = self._expanded[name] = expand_modules(self, name, self.module.graphs[name])
        ctx = _JitContext(self, name)
        feed = {g.nodes[nid].name: t for nid, t in zip(g.inputs, bound) if t is not None}
        values = self._evaluate(name, g, ctx, ctx.bind_inputs(g, feed))
        outputs = {o.name: values[o.node] for o in g.outputs}
        tape = compile_tape(name, g, values, ctx, grad, self._backend)
        with self._lock:
            self._tapes[key] = tape
            while len(self._tapes) > self.cache_size:
                self._tapes.popitem(last=False)
            self._latest[name] = tape
        return outputs

    # ------------------------------------------------------------------ inspection
    def compile(self, graph: str | None = None, inputs: Mapping | None = None) -> JitStats:
        """Compile ``graph`` for ``inputs`` (default: zeros of the declared types, with
        symbolic dims from ``RuntimeConfig.dims`` / ``@config``), running it once without
        recording gradients; returns the tape's stats."""
        name, g = self._graph(graph)
        feed = dict(inputs) if inputs is not None else self._zeros_for(name, g)
        with sc.no_grad():
            self.run(name, feed)
        return self.stats(name)

    def _tape(self, graph: str | None) -> Tape:
        name, g = self._graph(graph)
        tape = self._latest.get(name)
        if tape is None:
            self.compile(name)
            tape = self._latest[name]
        return tape

    def stats(self, graph: str | None = None) -> JitStats:
        """Stats of the graph's most recently run tape (compiling one from the declared
        input types if the graph has not run yet)."""
        return copy.copy(self._tape(graph).stats)

    def all_stats(self) -> dict[str, JitStats]:
        return {name: copy.copy(t.stats) for name, t in self._latest.items()}

    def dump(self, graph: str | None = None) -> str:
        """The tape as text: stats, one line per instruction and free, then the outputs."""
        return self._tape(graph).dump()

    def recompile(self, graph: str | None = None) -> None:
        """Forget the graph's tapes (the next run compiles again)."""
        name, _ = self._graph(graph)
        with self._lock:
            for key in [k for k in self._tapes if k[0] == name]:
                del self._tapes[key]
            self._latest.pop(name, None)

    def _zeros_for(self, name: str, g) -> dict:
        env = ShapeEnv(self.config.dims)
        feed = {}
        for nid, dtype in zip(g.inputs, self._declared[name]):
            node = g.nodes[nid]
            if nid in g.optional_inputs:
                continue
            if dtype is None:
                raise ExecutionError(
                    f"{where(name, node)}: cannot make a sample value for input {node.name!r} "
                    f"of type {node.type}; pass inputs= to compile()"
                )
            shape = resolve_shape(node.type, env, self.module.config, where(name, node))
            feed[node.name] = sc.tensor(np.zeros(shape, dtype.np_dtype), device=self.device)
        return feed


def load_jit(
    source,
    config: RuntimeConfig | None = None,
    *,
    custom_ops: Mapping[str, Callable] | None = None,
    filename: str | None = None,
) -> JitExecutor:
    """Like ``load_program``, but the graphs run as compiled tapes (``JitExecutor``)."""
    config = config or RuntimeConfig()
    return JitExecutor(_load_module(source, config, filename), config, custom_ops)
