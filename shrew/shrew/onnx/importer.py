"""``load``: an ONNX file as ``OnnxModule``, a shrew_nn Module that runs the graph eagerly
on Shrew tensors (differentiable: fine-tune an imported model like any other).

Initializers become the module's state: float ones are parameters (trainable), the others
buffers, under their names made identifiers (``.``, ``:`` and ``/`` -> ``_``; clashes get a
numeric suffix; ``initializer_names`` maps ONNX name -> attribute). Nodes run in
topological order through the op table of ``_import_ops`` (every op on shrew_core ops, so
gradients flow); an op that is not in it raises ``OnnxUnsupportedError`` at load time,
naming the op type and the node. ``load_onnx_weights`` reads only the initializers.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

import shrew_core as sc
import shrew_nn as nn
from shrew_core import ShrewError

from . import dtypes
from ._deps import onnx
from ._import_ops import OPS
from .errors import OnnxError, OnnxUnsupportedError


class _Node:
    """A decoded ONNX node: op type, name, input/output value names and attributes."""

    __slots__ = ("op_type", "name", "inputs", "outputs", "attrs", "opset", "device", "n_out")

    def __init__(self, proto, index: int, opset: int, device):
        self.op_type = proto.op_type
        self.name = proto.name or f"#{index} ({proto.op_type})"
        self.inputs = list(proto.input)
        self.outputs = list(proto.output)
        self.n_out = len(self.outputs)
        self.opset, self.device = opset, device
        self.attrs = {a.name: _attr_value(a, self.name, device) for a in proto.attribute}
        if self.op_type == "Constant":
            self.attrs["__value__"] = _constant_value(self, device)


def _attr_value(attr, node: str, device) -> Any:
    if attr.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
        raise OnnxUnsupportedError(f"ONNX import: node {node!r}: subgraph attribute "
                                   f"{attr.name!r} (control flow is not supported)")
    value = onnx.helper.get_attribute_value(attr)
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, list) and value and isinstance(value[0], bytes):
        return [v.decode() for v in value]
    if isinstance(value, onnx.TensorProto):
        return _tensor(value, f"node {node!r} attribute {attr.name!r}", device)
    return value


def _constant_value(node: _Node, device) -> sc.Tensor:
    at = node.attrs
    if "value" in at:
        return at["value"]
    for key, dtype in (("value_float", np.float32), ("value_floats", np.float32),
                       ("value_int", np.int64), ("value_ints", np.int64)):  # fmt: skip
        if key in at:
            return sc.tensor(np.asarray(at[key], dtype=dtype), device=device)
    raise OnnxUnsupportedError(f"ONNX import: Constant node {node.name!r}: "
                               f"{', '.join(at) or 'no value'} (numeric values only)")


def _tensor(proto, what: str, device=None) -> sc.Tensor:
    dtypes.from_onnx(proto.data_type, what)  # a clear error for types Shrew lacks
    array = dtypes.to_shrew_array(onnx.numpy_helper.to_array(proto), what)
    return sc.tensor(np.array(array, order="C"), device=device)


def _identifier(name: str) -> str:
    ident = re.sub(r"[.:/]", "_", name)
    ident = re.sub(r"\W", "_", ident)
    return ident if ident and not ident[0].isdigit() else f"_{ident}"


def _read(path: str | os.PathLike) -> onnx.ModelProto:
    path = os.fspath(path)
    if os.path.isdir(path):
        raise OnnxError(f"{path}: is a folder, not an ONNX file")
    if not os.path.exists(path):
        raise FileNotFoundError(f"ONNX file not found: {path}")
    try:
        return onnx.load(path)
    except Exception as e:  # protobuf DecodeError, truncated file, bad external data
        raise OnnxError(f"{path}: not a readable ONNX model ({type(e).__name__}: {e})") from e


def _topological(nodes: list[_Node], available: set[str]) -> list[_Node]:
    """Nodes in an order where every input is produced first (Kahn, file order kept)."""
    produced = set(available)
    pending, order = list(nodes), []
    while pending:
        rest = []
        for n in pending:
            if all(i == "" or i in produced for i in n.inputs):
                order.append(n)
                produced.update(n.outputs)
            else:
                rest.append(n)
        if len(rest) == len(pending):
            missing = sorted({i for n in rest for i in n.inputs if i and i not in produced})
            raise OnnxError(f"ONNX graph: node {rest[0].name!r} ({rest[0].op_type}) reads "
                            f"values nothing produces (or a cycle): {missing[:5]}")
        pending = rest
    return order


class OnnxModule(nn.Module):
    """An ONNX graph as a Module: ``forward(*inputs)`` returns one tensor, or a tuple in
    graph-output order; ``run(feeds)`` works like onnxruntime's ``InferenceSession.run``
    (NumPy in and out, a dict by output name).

    Attributes:
        input_names, output_names: the graph's (initializers listed as inputs excluded).
        initializer_names: ONNX initializer name -> attribute name.
        opset: the model's default-domain opset.
    """

    def __init__(self, model: onnx.ModelProto, device=None, source: str = "<model>"):
        super().__init__()
        graph = model.graph
        self.source = source
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
                          1)  # fmt: skip
        self.device = sc.as_device(device) if device is not None else None
        self.initializer_names: dict[str, str] = {}
        taken: set[str] = set()
        for init in graph.initializer:
            t = _tensor(init, f"{source}: initializer {init.name!r}", self.device)
            ident = base = _identifier(init.name)
            k = 1
            while ident in taken:
                ident, k = f"{base}_{k}", k + 1
            taken.add(ident)
            if t.dtype.is_float:
                self.register_parameter(ident, nn.Parameter(t))
            else:
                self.register_buffer(ident, t)
            self.initializer_names[init.name] = ident
        self.input_names = [i.name for i in graph.input if i.name not in self.initializer_names]
        self.output_names = [o.name for o in graph.output]
        self._input_types = {i.name: i.type.tensor_type.elem_type for i in graph.input}
        nodes = []
        for k, proto in enumerate(graph.node):
            if proto.domain not in ("", "ai.onnx") or proto.op_type not in OPS:
                where = f" in domain {proto.domain!r}" if proto.domain not in ("", "ai.onnx") \
                    else ""
                raise OnnxUnsupportedError(
                    f"{source}: ONNX op {proto.op_type!r}{where} (node "
                    f"{proto.name or f'#{k}'!r}) is not supported by shrew.onnx"
                )
            nodes.append(_Node(proto, k, self.opset, self.device))
        self._nodes = _topological(nodes, set(self.initializer_names) | set(self.input_names))
        missing = [o for o in self.output_names if o not in
                   {v for n in self._nodes for v in n.outputs} | set(self.initializer_names)
                   | set(self.input_names)]  # fmt: skip
        if missing:
            raise OnnxError(f"{source}: graph outputs {missing} are produced by no node")

    # ------------------------------------------------------------------ running
    def _bind(self, inputs: tuple, named: Mapping[str, Any]) -> dict[str, sc.Tensor]:
        if len(inputs) > len(self.input_names):
            raise OnnxError(f"{self.source}: {len(inputs)} inputs given, the graph takes "
                            f"{len(self.input_names)} ({', '.join(self.input_names)})")
        given = dict(zip(self.input_names, inputs)) | dict(named)
        unknown = set(given) - set(self.input_names) - set(self.initializer_names)
        if unknown:
            raise OnnxError(f"{self.source}: no graph input named {sorted(unknown)}; inputs: "
                            f"{self.input_names}")
        values: dict[str, Any] = {onnx_name: getattr(self, ident)
                                  for onnx_name, ident in self.initializer_names.items()}
        for name in self.input_names:
            if name not in given:
                raise OnnxError(f"{self.source}: missing input {name!r}")
        for name, v in given.items():
            values[name] = self._as_tensor(name, v)
        return values

    def _as_tensor(self, name: str, v) -> sc.Tensor:
        if isinstance(v, sc.Tensor):
            return v if self.device is None or v.device == self.device else v.to(self.device)
        array = np.asarray(v)
        declared = self._input_types.get(name, 0)
        if declared:
            want = dtypes.numpy_dtype(declared)
            if array.dtype != want and np.can_cast(array.dtype, want, "same_kind"):
                array = array.astype(want)
        array = dtypes.to_shrew_array(array, f"input {name!r}")
        return sc.tensor(np.array(array, order="C"), device=self.device)

    def _execute(self, values: dict[str, Any]) -> dict[str, Any]:
        for node in self._nodes:
            args = [values[i] if i else None for i in node.inputs]
            try:
                out = OPS[node.op_type](node, args)
            except (OnnxError, NotImplementedError):
                raise
            except (ShrewError, ValueError, TypeError, IndexError, KeyError) as e:
                raise OnnxError(f"{self.source}: {node.op_type} node {node.name!r}: "
                                f"{type(e).__name__}: {e}") from e
            outs = out if isinstance(out, list) else [out]
            for name, t in zip(node.outputs, outs):
                if name:
                    values[name] = t
        return values

    def forward(self, *inputs, **named):
        """Run the graph; inputs by position (``input_names`` order) or name."""
        values = self._execute(self._bind(inputs, named))
        outs = tuple(values[o] for o in self.output_names)
        return outs[0] if len(outs) == 1 else outs

    def run(self, feeds: Mapping[str, Any], output_names=None) -> dict[str, np.ndarray]:
        """Like ``onnxruntime.InferenceSession.run``: NumPy arrays (or tensors) by input
        name in, NumPy arrays by output name out (no gradient is recorded)."""
        with sc.no_grad():
            values = self._execute(self._bind((), feeds))
        names = output_names or self.output_names
        return {n: np.array(values[n].numpy()) for n in names}

    def extra_repr(self) -> str:
        return (f"{self.source}: {len(self._nodes)} nodes, inputs {self.input_names}, "
                f"outputs {self.output_names}, opset {self.opset}")


def load(path: str | os.PathLike, device=None) -> OnnxModule:
    """Read an ONNX file as an ``OnnxModule`` with its initializers on ``device``."""
    return OnnxModule(_read(path), device, os.fspath(path))


def load_onnx_weights(path: str | os.PathLike, device=None) -> dict[str, sc.Tensor]:
    """The seed's ``load_onnx_weights``: every initializer by its ONNX name, as tensors."""
    model = _read(path)
    return {init.name: _tensor(init, f"{os.fspath(path)}: initializer {init.name!r}", device)
            for init in model.graph.initializer}  # fmt: skip
