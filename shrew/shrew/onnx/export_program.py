"""``export_program``: a ``.sw`` program's graph to ONNX (opset 17), op by op from its IR.

The program is built into an ``Executor`` (params initialised with the program's seed, or
taken from the Executor given), so the file holds the executor's current parameters as
initializers named as in the graph (``w1``; a called graph's ``G/w1``;
``transformer_block`` weights ``<node>.<param>`` as in ``Executor.named_params()``).
Graph inputs and outputs keep the graph's names and declared types; symbolic dims
(``Batch``) stay ``dim_param`` unless bound in ``dims``, and ops that use them at run time
(``reshape(x, [Batch, -1])``, ``range(0, SeqLen)``) read them from the input shapes.

Each IR op is emitted by one entry of ``EMIT`` (``_program_ops``); an op ONNX cannot
express (bitwise integer ops, custom ops, ...) raises ``OnnxUnsupportedError`` naming the
op, graph, node and source position.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

import shrew_core as sc
import shrew_ir
from shrew.exec import Executor, RuntimeConfig, load_program
from shrew.exec.errors import where
from shrew.exec.params import runtime_dtype

from . import dtypes
from ._builder import GraphBuilder, save
from ._program_ops import EMIT, PV, materialize
from .errors import OnnxError, OnnxUnsupportedError
from .export_module import ModuleExporter

if TYPE_CHECKING:
    import onnx


class ProgramExporter(ModuleExporter):
    """Emits the nodes of IR graphs; what the ``_program_ops`` emitters see."""

    def __init__(self, builder: GraphBuilder, ex: Executor, main: str, dims: Mapping[str, int]):
        self.b = builder
        self.ex = ex
        self.dims = dict(dims)
        self.config = ex.module.config
        self._names = {}
        for key, t in ex.named_params().items():
            g, _, p = key.partition("/")
            self._names.setdefault(id(t), p if g == main else key)
        self._emitted = {}
        self._path = []
        self._dim_sources: dict[str, tuple[str, int]] = {}
        self.graph = main
        self.node = None

    # ------------------------------------------------------------------ context
    def where(self) -> str:
        return where(self.graph, self.node) if self.node is not None else f"graph {self.graph!r}"

    def unsupported(self, what: str) -> OnnxUnsupportedError:
        return OnnxUnsupportedError(f"ONNX export of {self.where()}: {what}")

    def dim_value(self, name: str) -> str:
        """A 1-element i64 value holding symbolic dim ``name`` at run time."""
        fixed = self.fixed_dim(name)
        if fixed is not None:
            return self.ints([fixed])
        src = self._dim_sources.get(name)
        if src is None:
            raise self.unsupported(f"symbolic dim {name!r} is bound by no graph input")
        value, axis = src
        return self.op("Slice", self.op("Shape", value), self.ints([axis]), self.ints([axis + 1]))

    def fixed_dim(self, name: str) -> int | None:
        if name in self.dims:
            return int(self.dims[name])
        value = self.config.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def onnx_dims(self, ttype) -> list | None:
        if not isinstance(ttype, shrew_ir.TensorType):
            return None
        out = []
        for d in ttype.dims:
            if isinstance(d, shrew_ir.Fixed):
                out.append(d.value)
            elif isinstance(d, shrew_ir.Symbolic):
                fixed = self.fixed_dim(d.name)
                out.append(d.name if fixed is None else fixed)
            else:
                out.append(None)
        return out

    def materialize(self, pv: PV, dtype) -> PV:
        return materialize(self, pv, dtype)

    def float_dtype(self, dtype: sc.DType) -> sc.DType:
        if self.ex.config.dtype is not None and dtype.is_float:
            return sc.as_dtype(self.ex.config.dtype)
        return dtype

    # ------------------------------------------------------------------ graphs
    def emit_graph(self, gname: str, bound: dict[int, PV] | None = None) -> dict[str, PV]:
        """Emit every node of graph ``gname``; ``bound`` maps its input ids to values (a
        call), else its inputs become the ONNX graph's inputs. Returns outputs by name."""
        graph = self.ex.module.graphs[gname]
        saved = self.graph, self.node
        self.graph = gname
        values: dict[int, PV] = dict(bound or {})
        try:
            if bound is None:
                for nid in graph.inputs:
                    node = graph.nodes[nid]
                    self.node = node
                    values[nid] = self._graph_input(node)
            for p in graph.params:
                t = self.ex.named_params()[f"{gname}/{p.name}"]
                values[p.node] = PV(self.param(t), t.dtype)
            for nid in graph.topo_order():
                if nid in values:
                    continue
                node = graph.nodes[nid]
                self.node = node
                if node.op in ("input", "param"):
                    raise self.unsupported(f"optional input {node.name!r} left unbound")
                emit = EMIT.get(node.op)
                if emit is None:
                    raise self.unsupported(f"IR op {node.op!r} has no ONNX equivalent")
                with self.b.scope(node.name):
                    values[nid] = emit(self, node, [values[i] for i in node.inputs])
            return {o.name: values[o.node] for o in graph.outputs}
        finally:
            self.graph, self.node = saved

    def _graph_input(self, node) -> PV:
        if node.id in self.ex.module.graphs[self.graph].optional_inputs:
            raise self.unsupported(f"optional input {node.name!r} (ONNX inputs are required)")
        ttype = node.type
        if not isinstance(ttype, shrew_ir.TensorType):
            raise self.unsupported(f"input {node.name!r} of type {ttype} is not a tensor")
        dtype = self.float_dtype(runtime_dtype(ttype.dtype, self.where()))
        name = self.b.add_input(node.name, dtypes.to_onnx(dtype), self.onnx_dims(ttype))
        for axis, d in enumerate(ttype.dims):
            if isinstance(d, shrew_ir.Symbolic):
                self._dim_sources.setdefault(d.name, (name, axis))
        return PV(name, dtype, rank=len(ttype.dims))


def export_program(
    program,
    path: str | os.PathLike,
    *,
    graph: str | None = None,
    dims: Mapping[str, int] | None = None,
    params: Mapping | None = None,
) -> onnx.ModelProto:
    """Export a graph of a ``.sw`` program as an ONNX file.

    Args:
        program: an ``Executor``, or a ``.sw`` path or source (built with its ``@config``
            seed, so the parameters are the ones ``load_program`` would create).
        path: the file to write (atomically).
        graph: which graph (default: the ``@training`` model graph, else the first).
        dims: sizes that fix symbolic dims (``{"Batch": 8}``); others stay ``dim_param``.
        params: parameter values to write instead, keyed ``graph/param`` (as
            ``Executor.state_dict()``) or by the bare name for the exported graph.

    Raises:
        OnnxUnsupportedError: an op with no ONNX equivalent, naming op, node and position.
    """
    dims = dict(dims or {})
    ex = (
        program
        if isinstance(program, Executor)
        else load_program(program, RuntimeConfig(dims=dims))
    )
    names = ex.graph_names()
    training = ex.module.training
    default = training.model if training is not None and training.model in names else None
    gname = graph or default or (names[0] if names else None)
    if gname not in names:
        raise OnnxError(f"export_program: no graph {gname!r}; the program has {names}")
    for key, value in (params or {}).items():
        ex.set_param(key if "/" in key else f"{gname}/{key}", value)
    was_training = ex.training
    ex.eval()
    try:
        b = GraphBuilder()
        P = ProgramExporter(b, ex, gname, dims)
        with sc.no_grad():
            outputs = P.emit_graph(gname)
        graph_ir = ex.module.graphs[gname]
        for out in graph_ir.outputs:
            pv = P.materialize(outputs[out.name], None)
            if pv.dtype is None:
                raise OnnxError(f"export_program: output {out.name!r} has no tensor type")
            shape = P.onnx_dims(graph_ir.nodes[out.node].type)
            if shape is None:
                raise OnnxError(f"export_program: the type of output {out.name!r} is unknown")
            b.add_output(pv.name, out.name, dtypes.to_onnx(pv.dtype), shape)
        model = b.model(gname, doc=f"exported by Shrew from .sw graph {gname!r}")
    finally:
        ex.train(was_training)
    save(model, path)
    return model
