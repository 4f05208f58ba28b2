"""``to_sw``: an ONNX model as ``.sw`` source plus its weights, so an imported model becomes
an editable, trainable program: ``load_program(source).load_state_dict(weights)`` runs it
to the outputs onnxruntime gives.

The conversion has two passes over the (topologically sorted) graph:

1. **Constant evaluation.** ``Constant`` nodes, integer initializers and everything computed
   only from them are evaluated now (through the importer's op table); ``Shape`` of a graph
   value is a vector of dims (ints, or the symbolic names ONNX shape inference gives, such
   as ``batch``), and Gather / Concat / Slice / Unsqueeze / Squeeze / Cast / arithmetic on
   such vectors are evaluated symbolically. So torch's ``Shape -> Gather -> Concat ->
   Reshape`` chains become ``reshape(x, [batch, -1])``.
2. **Emission.** Every other node becomes one ``node`` statement whose ``op:`` is the
   equivalent ``.sw`` expression, with constant inputs written as attributes or literals.
   torch's erf-GELU pattern (``x * 0.5 * (1 + erf(x / √2))``) becomes ``gelu(x)``.

Float initializers become ``param``s (weights keyed ``graph/param``, as
``Executor.state_dict()``); constant tensors the graph computes with become frozen params.
Names are made identifiers that are not reserved words. An ONNX op (or attribute value) the
language cannot express — LSTM/GRU/RNN, Erf outside GELU, asymmetric padding, ... — raises
``OnnxUnsupportedError`` naming the op and node.
"""

from __future__ import annotations

import math
import os
import re

import numpy as np

import shrew_core as sc
from shrew_ir.tokens import DTYPE_WORDS

from . import dtypes
from ._deps import onnx
from ._import_ops import OPS
from .errors import OnnxError, OnnxUnsupportedError
from .importer import _Node, _read, _tensor, _topological

# keywords are valid names, except those that start expressions or statements; "input" and
# "output" (torch's and Shrew's default names) stay as they are
_RESERVED = DTYPE_WORDS | {"Tensor", "true", "false", "null", "if", "else", "repeat", "for",
                           "in", "call", "scan", "range", "op", "node", "param", "type"}
_SYM_OPS = {"Shape", "Gather", "Concat", "Unsqueeze", "Squeeze", "Slice", "Cast", "Reshape",
            "Identity", "Mul", "Add", "Sub", "Div"}  # fmt: skip
_MAX_LITERAL = 16  # constant int vectors up to this size are written inline as attributes


class _Sym:
    """A small integer vector whose entries are ints or symbolic dim names/expressions."""

    def __init__(self, values: list):
        self.values = list(values)

    def shape(self) -> tuple[int, ...]:
        return (len(self.values),)


def _fmt_float(v: float) -> str:
    text = repr(float(v))
    return text if ("e" in text or "." in text) else text + ".0"


class _Converter:
    def __init__(self, model: onnx.ModelProto, source: str):
        self.source = source
        self.graph = model.graph
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
                          1)  # fmt: skip
        try:
            inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
        except Exception:  # noqa: BLE001 - inference is a help, not a requirement
            inferred = model
        self.types = {v.name: v.type.tensor_type for v in
                      list(inferred.graph.value_info) + list(inferred.graph.input)
                      + list(inferred.graph.output)}  # fmt: skip
        self.names: dict[str, str] = {}
        self.taken: set[str] = set()
        self.static: dict[str, object] = {}  # value -> np.ndarray | _Sym
        self.known_dims: dict[str, list] = {}  # Reshape outputs: dims from their target
        self.input_dims = {self.dim_name(d) for i in self.graph.input
                           for d in i.type.tensor_type.shape.dim if d.HasField("dim_param")}
        self.exprs: dict[str, str] = {}  # value -> .sw reference
        self.params: list[str] = []
        self.weights: dict[str, np.ndarray] = {}
        self.lines: list[str] = []
        self.gname = self.ident(self.graph.name or "main")
        self.inits = {i.name: i for i in self.graph.initializer}

    # ------------------------------------------------------------------ names
    def ident(self, name: str) -> str:
        if name in self.names:
            return self.names[name]
        base = re.sub(r"\W", "_", name).strip("_") or "v"
        if base[0].isdigit() or base in _RESERVED:
            base = f"v_{base}"
        ident, k = base, 1
        while ident in self.taken:
            ident, k = f"{base}_{k}", k + 1
        self.taken.add(ident)
        self.names[name] = ident
        return ident

    def dim_name(self, d) -> str | int:
        if d.HasField("dim_value"):
            return int(d.dim_value)
        if d.HasField("dim_param"):
            return re.sub(r"\W", "_", d.dim_param) or "?"
        return "?"

    def dims_of(self, value: str) -> list | None:
        if value in self.known_dims:
            return self.known_dims[value]
        if value in self.inits:
            return [int(d) for d in self.inits[value].dims]
        t = self.types.get(value)
        if t is None or not t.HasField("shape"):
            return None
        return [self.dim_name(d) for d in t.shape.dim]

    def err(self, node: _Node, what: str) -> OnnxUnsupportedError:
        return OnnxUnsupportedError(f"to_sw({self.source}): {node.op_type} node {node.name!r}: "
                                    f"{what}")

    # ------------------------------------------------------------------ values
    def param(self, key: str, array: np.ndarray, frozen: bool = False) -> str:
        name = self.ident(key)
        array = dtypes.to_shrew_array(np.asarray(array), key)
        dt = sc.as_dtype(array.dtype).short
        dims = ", ".join(str(d) for d in array.shape)
        init = '"zeros"; frozen: true;' if frozen or dt not in ("f16", "bf16", "f32", "f64") \
            else '"zeros";'
        self.params.append(f"    param {name}: Tensor<[{dims}], {dt}> {{ init: {init} }};")
        self.weights[f"{self.gname}/{name}"] = np.array(array, order="C")
        self.exprs[key] = name
        return name

    def ref(self, value: str, node: _Node) -> str:
        """A .sw expression for ``value`` used as a tensor by ``node``."""
        if value in self.exprs:
            return self.exprs[value]
        const = self.static.get(value)
        if isinstance(const, _Sym):
            raise self.err(node, f"the shape value {value!r} is used as a tensor")
        if const is None:
            raise OnnxError(f"to_sw({self.source}): value {value!r} read by node {node.name!r} "
                            "is produced by nothing")
        array = np.asarray(const)
        if array.ndim == 0 and array.dtype.kind in "fiu" and np.isfinite(array):
            return _fmt_float(array) if array.dtype.kind == "f" else str(int(array))
        return self.param(value, array, frozen=True)

    def ints(self, value: str, node: _Node, what: str) -> list[int]:
        const = self.static.get(value)
        if const is None or isinstance(const, _Sym):
            raise self.err(node, f"{what} must be a constant")
        return [int(v) for v in np.asarray(const).ravel()]

    def scalar(self, value: str, node: _Node, what: str) -> float:
        const = self.static.get(value)
        if const is None or isinstance(const, _Sym) or np.asarray(const).size != 1:
            raise self.err(node, f"{what} must be a constant scalar")
        return np.asarray(const).ravel()[0].item()

    # ------------------------------------------------------------------ pass 1
    def evaluate_constants(self, nodes: list[_Node]) -> None:
        for name, init in self.inits.items():
            if init.data_type not in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE,
                                      onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16):
                self.static[name] = _tensor(init, name).numpy()
        for node in nodes:
            ins = [i for i in node.inputs if i]
            if node.op_type == "Constant":
                self.static[node.outputs[0]] = node.attrs["__value__"].numpy()
            elif node.op_type == "Shape" and node.inputs[0] not in self.static:
                dims = self.dims_of(node.inputs[0])
                if dims is not None:  # unknown dims ("?") may be sliced away
                    s, e = node.attrs.get("start", 0), node.attrs.get("end", len(dims))
                    self.static[node.outputs[0]] = _sym_or_array(dims[s:e])
            elif ins and all(i in self.static for i in ins):
                self._fold(node)
            elif node.op_type == "Reshape" and node.inputs[1] in self.static:
                self._reshape_dims(node)

    def _reshape_dims(self, node: _Node) -> None:
        """What shape inference may miss: a Reshape to [batch, 2, seq, 4] has those dims."""
        target = self.static[node.inputs[1]]
        vals = target.values if isinstance(target, _Sym) else [int(v) for v in
                                                               np.asarray(target).ravel()]
        src = self.dims_of(node.inputs[0]) or []
        dims = [src[i] if (v == 0 and i < len(src) and not node.attrs.get("allowzero", 0))
                else v for i, v in enumerate(vals)]  # fmt: skip
        if -1 in dims:
            known = [d for d in dims if d != -1]
            if dims.count(-1) > 1 or not all(isinstance(d, int) for d in known + src):
                return
            total = int(np.prod(src, dtype=np.int64))
            rest = int(np.prod(known, dtype=np.int64)) or 1
            dims = [total // rest if d == -1 else d for d in dims]
        if all(isinstance(d, int) or d in self.input_dims for d in dims):
            self.known_dims[node.outputs[0]] = dims

    def _fold(self, node: _Node) -> None:
        values = [self.static.get(i) if i else None for i in node.inputs]
        if any(isinstance(v, _Sym) for v in values):
            if node.op_type in _SYM_OPS:
                out = _sym_eval(node, values)
                if out is not None:
                    self.static[node.outputs[0]] = _sym_or_array(out.values)
            return
        if node.op_type not in OPS or node.op_type in ("LSTM", "GRU", "RNN", "Dropout"):
            return
        tensors = [None if v is None else sc.tensor(np.asarray(v)) for v in values]
        out = OPS[node.op_type](node, tensors)
        outs = out if isinstance(out, list) else [out]
        for name, t in zip(node.outputs, outs):
            if name:
                self.static[name] = np.array(t.numpy())

    # ------------------------------------------------------------------ pass 2
    def emit(self, node: _Node, gelu: dict) -> None:
        outs = [o for o in node.outputs if o]
        if all(o in self.static for o in outs):
            return
        if node.op_type in ("Identity", "Dropout"):
            self.exprs[node.outputs[0]] = self.ref(node.inputs[0], node)
            return
        if node.name in gelu.get("skip", set()):
            return
        if node.name in gelu:
            expr = f"gelu({self.ref(gelu[node.name], node)})"
        else:
            fn = _EMIT.get(node.op_type)
            if fn is None:
                raise self.err(node, "has no .sw equivalent")
            expr = fn(self, node)
        name = self.ident(node.outputs[0])
        self.lines.append(f"    node {name} {{ op: {expr}; }};")
        if node.op_type == "Split":
            for i, o in enumerate(node.outputs):
                self.exprs[o] = f"{name}[{i}]"
        else:
            self.exprs[node.outputs[0]] = name

    def reshape_dims(self, node: _Node, x: str, target) -> list:
        """Reshape target entries as .sw dims: ints, -1 or symbolic names."""
        in_dims = self.dims_of(x) or []
        vals = target.values if isinstance(target, _Sym) else [int(v) for v in
                                                               np.asarray(target).ravel()]
        out = []
        for i, v in enumerate(vals):
            if isinstance(v, (int, np.integer)) and v == 0 and not node.attrs.get("allowzero", 0):
                v = in_dims[i] if i < len(in_dims) else "?"
            out.append(int(v) if isinstance(v, (int, np.integer)) else v)
        bad = [i for i, v in enumerate(out) if isinstance(v, str) and v not in self.input_dims]
        if len(bad) + out.count(-1) > 1:
            raise self.err(node, f"target shape {out} has several unknown dims")
        for i in bad:
            out[i] = -1
        return out


def _sym_or_array(values: list):
    """Dims that are all known become an ordinary i64 constant."""
    if all(isinstance(v, (int, np.integer)) for v in values):
        return np.asarray(values, dtype=np.int64)
    return _Sym(values)


def _sym_eval(node: _Node, values: list):
    """Shape arithmetic on _Sym vectors (None when it cannot be done symbolically)."""
    op = node.op_type

    def vec(v):
        if isinstance(v, _Sym):
            return list(v.values)
        return [int(x) for x in np.asarray(v).ravel()]

    if op in ("Cast", "Identity", "Unsqueeze", "Squeeze", "Reshape"):
        return _Sym(vec(values[0]))
    if op == "Concat":
        return _Sym([x for v in values if v is not None for x in vec(v)])
    if op == "Gather":
        idx = np.asarray(values[1])
        items = vec(values[0])
        picked = [items[int(i)] for i in idx.ravel()]
        return _Sym(picked)
    if op == "Slice":
        starts, ends = vec(values[1]), vec(values[2])
        steps = vec(values[4]) if len(values) > 4 and values[4] is not None else [1]
        return _Sym(vec(values[0])[slice(starts[0], ends[0], steps[0])])
    a, b = vec(values[0]), vec(values[1])
    if len(a) == 1:
        a = a * len(b)
    if len(b) == 1:
        b = b * len(a)
    sym = {"Mul": "*", "Add": "+", "Sub": "-", "Div": "/"}[op]
    out = []
    for x, y in zip(a, b):
        if isinstance(x, int) and isinstance(y, int):
            out.append({"*": x * y, "+": x + y, "-": x - y, "/": int(x / y) if y else 0}[sym])
        else:
            out.append(f"({x}{sym}{y})")
    return _Sym(out)


# ---------------------------------------------------------------------------- emitters
_EMIT: dict = {}


def _emits(*names):
    def register(fn):
        for n in names:
            _EMIT[n] = fn
        return fn

    return register


def _list(values) -> str:
    return "[" + ", ".join(str(v) for v in values) + "]"


_FN = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "Exp": "exp", "Log": "log",
       "Sqrt": "sqrt", "Neg": "neg", "Abs": "abs", "Reciprocal": "reciprocal", "Floor": "floor",
       "Ceil": "ceil", "Sin": "sin", "Cos": "cos", "Sign": "sign", "Round": "round",
       "Not": "not", "Softplus": "softplus"}  # fmt: skip


@_emits(*_FN)
def _unary(C, node):
    return f"{_FN[node.op_type]}({C.ref(node.inputs[0], node)})"


_INFIX = {"Add": "+", "Sub": "-", "Mul": "*", "Div": "/", "Pow": "**", "Equal": "==",
          "Less": "<", "Greater": ">", "LessOrEqual": "<=", "GreaterOrEqual": ">=",
          "And": "&&", "Or": "||"}  # fmt: skip


@_emits(*_INFIX)
def _binary(C, node):
    a, b = (C.ref(i, node) for i in node.inputs[:2])
    if node.op_type == "Div":
        t = C.types.get(node.inputs[0])
        if t is not None and t.elem_type not in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE,
                                                 onnx.TensorProto.FLOAT16,
                                                 onnx.TensorProto.BFLOAT16):
            raise C.err(node, "integer division (it truncates in ONNX, .sw divides exactly)")
    return f"({a} {_INFIX[node.op_type]} {b})"


@_emits("Max", "Min")
def _max_min(C, node):
    if len(node.inputs) != 2:
        raise C.err(node, f"{len(node.inputs)} inputs (two are supported)")
    fn = "maximum" if node.op_type == "Max" else "minimum"
    return f"{fn}({C.ref(node.inputs[0], node)}, {C.ref(node.inputs[1], node)})"


@_emits("Gelu")
def _gelu(C, node):
    approximate = node.attrs.get("approximate", "none")
    return f'gelu({C.ref(node.inputs[0], node)}, approximate: "{approximate}")'


@_emits("LeakyRelu")
def _leaky(C, node):
    return f"leaky_relu({C.ref(node.inputs[0], node)}, negative_slope: " \
           f"{_fmt_float(node.attrs.get('alpha', 0.01))})"


@_emits("Elu")
def _elu(C, node):
    return f"elu({C.ref(node.inputs[0], node)}, alpha: {_fmt_float(node.attrs.get('alpha', 1.0))})"


@_emits("Clip")
def _clip(C, node):
    parts = [C.ref(node.inputs[0], node)]
    for key, i in (("min", 1), ("max", 2)):
        if len(node.inputs) > i and node.inputs[i]:
            parts.append(f"{key}: {_fmt_float(C.scalar(node.inputs[i], node, key))}")
    return f"clamp({', '.join(parts)})"


@_emits("Softmax", "LogSoftmax")
def _softmax(C, node):
    if C.opset < 13:
        raise C.err(node, "opset < 13 softmax (2-D coercion)")
    fn = "softmax" if node.op_type == "Softmax" else "log_softmax"
    return f"{fn}({C.ref(node.inputs[0], node)}, dim: {node.attrs.get('axis', -1)})"


@_emits("MatMul")
def _matmul(C, node):
    return f"matmul({C.ref(node.inputs[0], node)}, {C.ref(node.inputs[1], node)})"


@_emits("Gemm")
def _gemm(C, node):
    at = node.attrs
    a, b = C.ref(node.inputs[0], node), C.ref(node.inputs[1], node)
    c = C.ref(node.inputs[2], node) if len(node.inputs) > 2 and node.inputs[2] else None
    if at.get("transA", 0):
        a = f"transpose({a})"
    alpha, beta = at.get("alpha", 1.0), at.get("beta", 1.0)
    if at.get("transB", 0) and alpha == 1.0 and beta == 1.0:
        return f"linear({a}, {b}" + (f", {c})" if c else ")")
    y = f"matmul({a}, {'transpose(' + b + ')' if at.get('transB', 0) else b})"
    if alpha != 1.0:
        y = f"({y} * {_fmt_float(alpha)})"
    if c is not None:
        y = f"({y} + {c}" + (f" * {_fmt_float(beta)})" if beta != 1.0 else ")")
    return y


@_emits("Cast")
def _cast(C, node):
    dt = dtypes.SW_DTYPES.get(node.attrs["to"])
    if dt is None:
        raise C.err(node, f"cast to {dtypes.name(node.attrs['to'])}")
    return f'cast({C.ref(node.inputs[0], node)}, dtype: "{dt}")'


@_emits("Where")
def _where(C, node):
    c, a, b = (C.ref(i, node) for i in node.inputs)
    return f"where({c}, {a}, {b})"


@_emits("Conv")
def _conv(C, node):
    at = node.attrs
    if at.get("auto_pad", "NOTSET") not in ("NOTSET", ""):
        raise C.err(node, f"auto_pad {at['auto_pad']}")
    w = node.inputs[1]
    wdims = C.dims_of(w) or list(C.inits[w].dims) if w in C.inits else C.dims_of(w)
    nd = len(wdims) - 2 if wdims else len(at.get("kernel_shape", [0, 0]))
    if nd not in (1, 2):
        raise C.err(node, f"{nd}-D convolution")
    pads = list(at.get("pads", [0] * 2 * nd))
    if pads[:nd] != pads[nd:]:
        raise C.err(node, f"asymmetric pads {pads}")
    args = [C.ref(i, node) for i in node.inputs if i]
    args += [f"stride: {_list(at.get('strides', [1] * nd))}", f"padding: {_list(pads[:nd])}",
             f"dilation: {_list(at.get('dilations', [1] * nd))}",
             f"groups: {at.get('group', 1)}"]  # fmt: skip
    return f"conv{nd}d({', '.join(args)})"


@_emits("BatchNormalization")
def _bn(C, node):
    if node.attrs.get("training_mode", 0):
        raise C.err(node, "training_mode=1")
    x, s, b, m, v = (C.ref(i, node) for i in node.inputs[:5])
    eps = _fmt_float(node.attrs.get("epsilon", 1e-5))
    return f"batch_norm({x}, {s}, {b}, {m}, {v}, eps: {eps})"


@_emits("MaxPool", "AveragePool")
def _pool(C, node):
    at = node.attrs
    k = list(at["kernel_shape"])
    nd = len(k)
    if nd not in (1, 2):
        raise C.err(node, f"{nd}-D pooling")
    pads = list(at.get("pads", [0] * 2 * nd))
    if at.get("auto_pad", "NOTSET") not in ("NOTSET", "") or pads[:nd] != pads[nd:]:
        raise C.err(node, f"pads {pads} / auto_pad (only symmetric explicit pads)")
    if at.get("ceil_mode", 0):
        raise C.err(node, "ceil_mode=1")
    if any(d != 1 for d in at.get("dilations", [1] * nd)):
        raise C.err(node, "dilations")
    if node.op_type == "AveragePool" and any(pads) and not at.get("count_include_pad", 0):
        raise C.err(node, "padding with count_include_pad=0 (.sw pools count the padding)")
    if node.op_type == "MaxPool" and len([o for o in node.outputs if o]) > 1:
        raise C.err(node, "the Indices output")
    fn = ("max" if node.op_type == "MaxPool" else "avg") + f"_pool{nd}d"
    return (f"{fn}({C.ref(node.inputs[0], node)}, kernel_size: {_list(k)}, stride: "
            f"{_list(at.get('strides', [1] * nd))}, padding: {_list(pads[:nd])})")


@_emits("GlobalAveragePool", "GlobalMaxPool")
def _global_pool(C, node):
    x = C.ref(node.inputs[0], node)
    rank = len(C.dims_of(node.inputs[0]) or [0, 0, 0, 0])
    if node.op_type == "GlobalAveragePool" and rank == 4:
        return f"adaptive_avg_pool2d({x}, output_size: 1)"
    fn = "mean" if node.op_type == "GlobalAveragePool" else "max"
    return f"{fn}({x}, dim: {_list(range(2, rank))}, keepdim: true)"


@_emits("Reshape")
def _reshape(C, node):
    target = C.static.get(node.inputs[1])
    if target is None:
        raise C.err(node, "the target shape must be computable from constants and input shapes")
    dims = C.reshape_dims(node, node.inputs[0], target)
    return f"reshape({C.ref(node.inputs[0], node)}, {_list(dims)})"


@_emits("Expand")
def _expand(C, node):
    target = C.static.get(node.inputs[1])
    if target is None:
        raise C.err(node, "the target shape must be constant")
    dims = C.reshape_dims(node, node.inputs[0], target)
    in_dims = C.dims_of(node.inputs[0]) or []
    lead = len(dims) - len(in_dims)
    dims = [-1 if (d == 1 and i >= lead and in_dims[i - lead] != 1) else d
            for i, d in enumerate(dims)]  # fmt: skip
    return f"expand({C.ref(node.inputs[0], node)}, {_list(dims)})"


@_emits("Flatten")
def _flatten(C, node):
    x = C.ref(node.inputs[0], node)
    axis = node.attrs.get("axis", 1)
    rank = len(C.dims_of(node.inputs[0]) or [])
    axis = axis + rank if axis < 0 else axis
    if axis == 0:
        return f"reshape({x}, [1, -1])"
    inner = f"flatten({x}, start_dim: {axis})"
    return inner if axis == 1 else f"flatten({inner}, start_dim: 0, end_dim: {axis - 1})"


@_emits("Transpose")
def _transpose(C, node):
    perm = node.attrs.get("perm")
    if perm is None:
        rank = len(C.dims_of(node.inputs[0]) or [])
        perm = list(reversed(range(rank)))
    return f"permute({C.ref(node.inputs[0], node)}, dims: {_list(perm)})"


def _axes(C, node, since: int) -> list[int] | None:
    if C.opset < since:
        return node.attrs.get("axes")
    if len(node.inputs) < 2 or not node.inputs[1]:
        return None
    return C.ints(node.inputs[1], node, "axes")


@_emits("Squeeze", "Unsqueeze")
def _squeeze(C, node):
    x = C.ref(node.inputs[0], node)
    axes = _axes(C, node, 13)
    rank = len(C.dims_of(node.inputs[0]) or [])
    if node.op_type == "Squeeze":
        if axes is None:
            return f"squeeze({x})"
        for a in sorted((a + rank if a < 0 else a for a in axes), reverse=True):
            x = f"squeeze({x}, dim: {a})"
        return x
    out_rank = rank + len(axes)
    for a in sorted(a + out_rank if a < 0 else a for a in axes):
        x = f"unsqueeze({x}, dim: {a})"
    return x


@_emits("Concat")
def _concat(C, node):
    parts = [C.ref(i, node) for i in node.inputs if i]
    return f"concat({', '.join(parts)}, dim: {node.attrs['axis']})"


@_emits("Slice")
def _slice(C, node):
    x = C.ref(node.inputs[0], node)
    starts = C.ints(node.inputs[1], node, "starts")
    ends = C.ints(node.inputs[2], node, "ends")
    axes = C.ints(node.inputs[3], node, "axes") if len(node.inputs) > 3 and node.inputs[3] \
        else list(range(len(starts)))
    steps = C.ints(node.inputs[4], node, "steps") if len(node.inputs) > 4 and node.inputs[4] \
        else [1] * len(starts)
    for s, e, a, st in zip(starts, ends, axes, steps):
        if st <= 0:
            raise C.err(node, f"step {st} (only positive steps)")
        end = "null" if e >= 2**62 else str(e)
        x = f"slice({x}, dim: {a}, start: {s}, end: {end}, step: {st})"
    return x


@_emits("Gather")
def _gather(C, node):
    data, idx = node.inputs[:2]
    axis = node.attrs.get("axis", 0)
    if idx in C.static and np.asarray(C.static[idx]).ndim == 0:
        return f"index({C.ref(data, node)}, index: {int(np.asarray(C.static[idx]))}, dim: {axis})"
    if axis == 0 and idx not in C.static:
        return f"embedding({C.ref(idx, node)}, {C.ref(data, node)})"
    raise C.err(node, "gather with constant index lists (only embeddings and single indices)")


@_emits("ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd")
def _reduce(C, node):
    axes = _axes(C, node, 13 if node.op_type == "ReduceSum" else 18)
    keep = "true" if node.attrs.get("keepdims", 1) else "false"
    fn = {"ReduceMean": "mean", "ReduceSum": "sum", "ReduceMax": "max", "ReduceMin": "min",
          "ReduceProd": "prod"}[node.op_type]  # fmt: skip
    x = C.ref(node.inputs[0], node)
    if not axes:
        if node.attrs.get("noop_with_empty_axes", 0):
            return x
        return f"{fn}({x}, keepdim: {keep})"
    return f"{fn}({x}, dim: {_list(axes)}, keepdim: {keep})"


@_emits("ArgMax", "ArgMin")
def _arg(C, node):
    if node.attrs.get("select_last_index", 0):
        raise C.err(node, "select_last_index=1")
    keep = "true" if node.attrs.get("keepdims", 1) else "false"
    fn = "argmax" if node.op_type == "ArgMax" else "argmin"
    return f"{fn}({C.ref(node.inputs[0], node)}, dim: {node.attrs.get('axis', 0)}, keepdim: {keep})"


@_emits("LayerNormalization")
def _layer_norm(C, node):
    x = C.ref(node.inputs[0], node)
    scale = node.inputs[1]
    sdims = C.dims_of(scale)
    rank = len(C.dims_of(node.inputs[0]) or [])
    axis = node.attrs.get("axis", -1)
    if sdims is None or (axis + rank if axis < 0 else axis) != rank - len(sdims):
        raise C.err(node, f"axis {axis} with a scale of shape {sdims}")
    args = [x, C.ref(scale, node)]
    if len(node.inputs) > 2 and node.inputs[2]:
        args.append(C.ref(node.inputs[2], node))
    if len([o for o in node.outputs if o]) > 1:
        raise C.err(node, "the Mean / InvStdDev outputs")
    return f"layer_norm({', '.join(args)}, eps: {_fmt_float(node.attrs.get('epsilon', 1e-5))})"


@_emits("Range")
def _range(C, node):
    """``range`` of constants and symbolic dims (``range(0, seq)``: a dim node at run time)."""
    args = []
    for i, what in zip(node.inputs, ("start", "limit", "delta")):
        v = C.static.get(i)
        if isinstance(v, _Sym) and len(v.values) == 1 and v.values[0] in C.input_dims:
            args.append(str(v.values[0]))
        elif v is not None and not isinstance(v, _Sym) and np.asarray(v).dtype.kind in "iu":
            args.append(str(int(np.asarray(v).ravel()[0])))
        else:
            raise C.err(node, f"{what} must be an integer constant or a symbolic dim")
    return f"range({', '.join(args)})"


@_emits("Split")
def _split(C, node):
    x = node.inputs[0]
    axis = node.attrs.get("axis", 0)
    dims = C.dims_of(x) or []
    n = len(node.outputs)
    sizes = node.attrs.get("split") if C.opset < 13 else (
        C.ints(node.inputs[1], node, "split") if len(node.inputs) > 1 and node.inputs[1] else None)
    size = dims[axis] if dims else None
    if not isinstance(size, int):
        raise C.err(node, "split of a dim of unknown size")
    each = -(-size // n)
    if sizes and list(sizes) != [min(each, size - i * each) for i in range(n)]:
        raise C.err(node, f"split sizes {sizes} (only equal chunks)")
    return f"split({C.ref(x, node)}, chunks: {n}, dim: {axis})"


# ---------------------------------------------------------------------------- GELU pattern
def _gelu_patterns(C: _Converter, nodes: list[_Node]) -> dict:
    """Find ``Mul(Mul(x, Add(Erf(Div(x, √2)), 1)), 0.5)`` (torch's and Shrew's erf GELU).
    Returns {final Mul node name: x, "skip": names of the other nodes}."""
    producer = {o: n for n in nodes for o in n.outputs}
    users: dict[str, list[_Node]] = {}
    for n in nodes:
        for i in n.inputs:
            users.setdefault(i, []).append(n)

    def const_near(value: str, target: float) -> bool:
        v = C.static.get(value)
        return v is not None and not isinstance(v, _Sym) and np.asarray(v).size == 1 and \
            math.isclose(float(np.asarray(v).ravel()[0]), target, rel_tol=1e-4)

    def other(n: _Node, value: str) -> str | None:
        ins = [i for i in n.inputs if i]
        return ins[1] if ins[0] == value else ins[0] if len(ins) == 2 and ins[1] == value \
            else None

    def only_user(value: str) -> _Node | None:
        us = users.get(value, [])
        return us[0] if len(us) == 1 else None

    found: dict = {"skip": set()}
    for erf in (n for n in nodes if n.op_type == "Erf"):
        div = producer.get(erf.inputs[0])
        if div is None or div.op_type not in ("Div", "Mul"):
            continue
        x = div.inputs[0]
        if not const_near(div.inputs[1], math.sqrt(2.0) if div.op_type == "Div" else
                          1 / math.sqrt(2.0)):  # fmt: skip
            continue
        add = only_user(erf.outputs[0])
        if add is None or add.op_type != "Add" or not const_near(other(add, erf.outputs[0]) or
                                                                 "", 1.0):  # fmt: skip
            continue
        mul1 = only_user(add.outputs[0])
        if mul1 is None or mul1.op_type != "Mul" or other(mul1, add.outputs[0]) != x:
            continue
        mul2 = only_user(mul1.outputs[0])
        if mul2 is None or mul2.op_type != "Mul" or not const_near(other(mul2, mul1.outputs[0])
                                                                   or "", 0.5):  # fmt: skip
            continue
        found[mul2.name] = x
        found["skip"].update({div.name, erf.name, add.name, mul1.name})
    return found


# ---------------------------------------------------------------------------- entry point
def to_sw(path: str | os.PathLike) -> tuple[str, dict[str, np.ndarray]]:
    """The ONNX model at ``path`` as ``(source, weights)``: ``.sw`` source that shrew_ir
    validates and ``weights`` keyed ``graph/param`` (NumPy arrays), so

    >>> ex = load_program(source); ex.load_state_dict(weights)   # doctest: +SKIP

    runs it to the same outputs as onnxruntime.

    Raises:
        OnnxUnsupportedError: an op the ``.sw`` language cannot express, naming it and the
            node.
    """
    source = os.fspath(path)
    model = _read(path)
    C = _Converter(model, source)
    opset = C.opset
    nodes = []
    for k, proto in enumerate(model.graph.node):
        if proto.domain not in ("", "ai.onnx"):
            raise OnnxUnsupportedError(f"to_sw({source}): op {proto.op_type!r} in domain "
                                       f"{proto.domain!r} (node {proto.name!r})")
        nodes.append(_Node(proto, k, opset, None))
    inputs = [i for i in model.graph.input if i.name not in C.inits]
    nodes = _topological(nodes, set(C.inits) | {i.name for i in inputs})
    C.evaluate_constants(nodes)
    producer = f"{model.producer_name} {model.producer_version}".strip() or "unknown"
    header = [f"// converted from {os.path.basename(source)} by shrew.onnx.to_sw",
              "@model {", f'    name: "{C.gname}";', f'    producer: "{producer}";', "}",
              ""]  # fmt: skip
    body = []
    for i in inputs:
        t = i.type.tensor_type
        dt = dtypes.SW_DTYPES.get(t.elem_type)
        if dt is None:
            raise OnnxError(f"to_sw({source}): input {i.name!r} has type "
                            f"{dtypes.name(t.elem_type)}")
        dims = ", ".join(str(C.dim_name(d)) for d in t.shape.dim)
        name = C.ident(i.name)
        C.exprs[i.name] = name
        body.append(f"    input {name}: Tensor<[{dims}], {dt}>;")
    for name, init in C.inits.items():
        if init.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE,
                              onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16):
            C.param(name, _tensor(init, name).numpy())
    gelu = _gelu_patterns(C, nodes)
    for node in nodes:
        C.emit(node, gelu)
    outputs = []
    for o in model.graph.output:
        ref = C.ref(o.name, _Node(onnx.helper.make_node("Identity", [o.name], [o.name],
                                                        name=f"output {o.name}"), 0, opset, None))
        out_name = C.ident(o.name) if o.name not in C.names else C.names[o.name]
        outputs.append(f"    output {out_name}: {ref};")
    lines = header + [f"@graph {C.gname} {{"] + body + C.params + C.lines + outputs + ["}", ""]
    return "\n".join(lines), C.weights
