"""``GraphBuilder``: the one place that assembles ONNX graphs, through ``onnx.helper`` and
``onnx.numpy_helper`` only, and writes them (checked by ``onnx.checker``, atomically).

Both exporters (Modules and ``.sw`` programs) emit nodes through it. It names values and
nodes uniquely (nodes after the module path or IR node they come from, like torch's
``/0/Gemm``), keeps learned tensors as initializers and computational constants as
``Constant`` nodes (so an imported file's parameters are exactly the exported ones).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence

import numpy as np

from .._atomic import atomic_write_bytes
from ._deps import onnx
from .errors import OnnxError

OPSET = 17
IR_VERSION = 8  # the IR version that introduced opset 17: readable by every runtime since
PRODUCER = "Shrew"


class GraphBuilder:
    """Accumulates the nodes, initializers, inputs and outputs of one ONNX graph."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        self.outputs: list[onnx.ValueInfoProto] = []
        self._used: set[str] = set()
        self._constants: dict[tuple, str] = {}
        self._scope: list[str] = []
        self._node_count: dict[str, int] = {}

    # ------------------------------------------------------------------ names
    def fresh(self, hint: str) -> str:
        """A value name not used yet, derived from ``hint``."""
        base = hint or "v"
        name, k = base, 1
        while name in self._used:
            name, k = f"{base}_{k}", k + 1
        self._used.add(name)
        return name

    def reserve(self, name: str) -> str:
        """Claim an exact value name (graph inputs/outputs, initializers)."""
        if name in self._used:
            raise OnnxError(f"ONNX export: the value name {name!r} is used twice")
        self._used.add(name)
        return name

    @contextlib.contextmanager
    def scope(self, name: str) -> Iterator[None]:
        """Nodes created inside are named ``/<scope>/<OpType>_<k>`` (``name`` may be empty)."""
        self._scope.append(name)
        try:
            yield
        finally:
            self._scope.pop()

    def _node_name(self, op_type: str) -> str:
        prefix = "/".join(s for s in self._scope if s)
        key = f"/{prefix}/{op_type}" if prefix else f"/{op_type}"
        k = self._node_count.get(key, 0)
        self._node_count[key] = k + 1
        return key + (f"_{k}" if k else "")

    # ------------------------------------------------------------------ content
    def node(self, op_type: str, inputs: Sequence[str], n_out: int = 1, **attrs) -> str | list[str]:
        """Append a node; returns its output name (or names when ``n_out > 1``).

        ``None`` inputs become ``""`` (an absent optional input); trailing ones are dropped.
        Attributes whose value is None are left out."""
        ins = ["" if i is None else i for i in inputs]
        while ins and ins[-1] == "":
            ins.pop()
        name = self._node_name(op_type)
        outs = [self.fresh(f"{name}_output_{i}") for i in range(n_out)]
        attrs = {k: v for k, v in attrs.items() if v is not None}
        self.nodes.append(onnx.helper.make_node(op_type, ins, outs, name=name, **attrs))
        return outs[0] if n_out == 1 else outs

    def const(self, value, dtype=None) -> str:
        """A ``Constant`` node holding ``value`` (NumPy array or Python scalar/list), reused
        when the same constant is asked for again."""
        array = np.asarray(value, dtype=dtype)
        if array.dtype == np.float64 and dtype is None and not isinstance(value, np.ndarray):
            array = array.astype(np.float32)
        key = (array.dtype.str, array.shape, array.tobytes())
        found = self._constants.get(key)
        if found is not None:
            return found
        name = self._node_name("Constant")
        out = self.fresh(f"{name}_output_0")
        tensor = onnx.numpy_helper.from_array(np.array(array, order="C"), out)
        self.nodes.append(onnx.helper.make_node("Constant", [], [out], name=name, value=tensor))
        self._constants[key] = out
        return out

    def initializer(self, name: str, array: np.ndarray) -> str:
        self.reserve(name)
        self.initializers.append(onnx.numpy_helper.from_array(np.array(array, order="C"), name))
        return name

    def add_input(self, name: str, elem_type: int, shape: Sequence | None) -> str:
        self.reserve(name)
        self.inputs.append(onnx.helper.make_tensor_value_info(name, elem_type, _dims(shape)))
        return name

    def add_output(self, value: str, name: str, elem_type: int, shape: Sequence | None) -> None:
        """Declare ``value`` as graph output ``name`` (an Identity renames it if needed)."""
        if value != name:
            self.reserve(name)
            self.nodes.append(
                onnx.helper.make_node("Identity", [value], [name], name=self._node_name("Identity"))
            )
        self.outputs.append(onnx.helper.make_tensor_value_info(name, elem_type, _dims(shape)))

    # ------------------------------------------------------------------ model
    def model(self, graph_name: str, doc: str = "") -> onnx.ModelProto:
        """The checked ``ModelProto`` (opset 17, ``onnx.checker`` with ``full_check``)."""
        from shrew import __version__

        graph = onnx.helper.make_graph(
            self.nodes, graph_name, self.inputs, self.outputs, self.initializers, doc_string=doc
        )
        model = onnx.helper.make_model(
            graph,
            opset_imports=[onnx.helper.make_opsetid("", OPSET)],
            ir_version=IR_VERSION,
            producer_name=PRODUCER,
            producer_version=__version__,
        )
        _refine_outputs(model)
        check(model, graph_name)
        return model


def check(model: onnx.ModelProto, what: str) -> None:
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        raise OnnxError(f"ONNX export of {what!r} produced an invalid model: {e}") from e


def _refine_outputs(model: onnx.ModelProto) -> None:
    """Output dims declared unknown get what ONNX shape inference derives (symbolic names
    flow from the inputs: a ``batch`` input gives a ``batch`` output)."""
    unknown = [o for o in model.graph.output
               if any(not d.HasField("dim_value") and not d.HasField("dim_param")
                      for d in o.type.tensor_type.shape.dim)]  # fmt: skip
    if not unknown:
        return
    try:
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except onnx.shape_inference.InferenceError:
        return
    found = {v.name: v for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
    for out in unknown:
        v = found.get(out.name)
        if v is None or len(v.type.tensor_type.shape.dim) != len(out.type.tensor_type.shape.dim):
            continue
        for mine, theirs in zip(out.type.tensor_type.shape.dim, v.type.tensor_type.shape.dim):
            if theirs.HasField("dim_value") or theirs.HasField("dim_param"):
                mine.CopyFrom(theirs)


def save(model: onnx.ModelProto, path: str | os.PathLike) -> None:
    """Write ``model`` to ``path`` atomically (temporary file, fsync, rename)."""
    atomic_write_bytes(path, model.SerializeToString())


def _dims(shape: Sequence | None):
    """ONNX dims: ints are fixed, strings are named (``dim_param``), None is unknown."""
    if shape is None:
        return None
    return [d if isinstance(d, (int, str)) else None for d in shape]
