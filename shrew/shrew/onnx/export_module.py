"""``export``: a shrew_nn Module to an ONNX file (opset 17), one converter per layer type.

The exporter walks the module tree from the top: the converter registered for a module's
class emits the ONNX nodes for that module, calling the converters of its children where
it has them (``Sequential`` chains them; ``TransformerBlock`` composes LayerNorm, attention
and Linear). While it walks, the real module runs on the example inputs, so every converter
knows the rank, dtype and shape of what it receives (``Value.example``).

Parameters and buffers become initializers under their ``state_dict()`` names (shared
tensors once), so ``load_onnx_weights`` gives the state dict back and an imported model's
parameters are exactly the exported ones; recurrent weights are re-ordered into ONNX's gate
order by nodes in the graph. Graphs do not bake in the example's sizes where a dimension
may vary (batch, sequence length): reshapes copy dims (``0``) or compute them with
``Shape``. A module with no converter raises ``OnnxUnsupportedError`` naming its class and
path; add one with ``register_converter``.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

import shrew_core as sc
import shrew_nn as nn

from . import dtypes
from ._builder import OPSET, GraphBuilder, save
from .errors import OnnxError, OnnxUnsupportedError


@dataclass(frozen=True)
class Value:
    """An ONNX value (its name) with the Shrew tensor the module computed for it."""

    name: str
    example: sc.Tensor

    @property
    def ndim(self) -> int:
        return self.example.ndim

    @property
    def dtype(self) -> sc.DType:
        return self.example.dtype


Converter = Callable[..., Any]
_CONVERTERS: dict[type, Converter] = {}


def register_converter(*classes: type) -> Callable[[Converter], Converter]:
    """Register ``fn(exporter, module, *args, **kwargs)`` as the ONNX converter of
    ``classes``. ``args`` are ``Value``s (or the constants passed to ``forward``); it returns
    what ``forward`` returns with every tensor replaced by a ``Value``
    (``exporter.op(...)``/``exporter.value(...)`` build them)."""

    def register(fn: Converter) -> Converter:
        for cls in classes:
            _CONVERTERS[cls] = fn
        return fn

    return register


def _converter_for(module: nn.Module) -> Converter | None:
    cls = type(module)
    for base in cls.__mro__:
        fn = _CONVERTERS.get(base)
        if fn is not None:
            # a subclass that overrides forward computes something else: not convertible
            return fn if cls.forward is base.forward else None
    return None


class ModuleExporter:
    """What converters see: emits nodes into a ``GraphBuilder`` under the module's path."""

    def __init__(self, builder: GraphBuilder, model: nn.Module):
        self.b = builder
        self._names: dict[int, str] = {}
        for name, t in list(model.named_parameters()) + list(model.named_buffers()):
            self._names.setdefault(id(t), name)
        self._emitted: dict[int, str] = {}
        self._path: list[str] = []

    # ------------------------------------------------------------------ graph building
    def op(self, op_type: str, *inputs, n_out: int = 1, **attrs):
        """Emit a node; ``inputs`` are value names, ``Value``s or None (absent)."""
        names = [i.name if isinstance(i, Value) else i for i in inputs]
        return self.b.node(op_type, names, n_out, **attrs)

    def const(self, value, dtype=None) -> str:
        """A constant (``Constant`` node); floats default to f32, ints to i64."""
        if isinstance(dtype, sc.DType):
            dtype = dtype.np_dtype
        return self.b.const(value, dtype)

    def ints(self, values: Sequence[int]) -> str:
        return self.b.const(np.asarray(list(values), dtype=np.int64))

    def param(self, t: sc.Tensor) -> str:
        """The initializer holding parameter/buffer ``t`` (named as in the state dict)."""
        found = self._emitted.get(id(t))
        if found is not None:
            return found
        name = self._names.get(id(t))
        if name is None:
            raise OnnxError(
                f"ONNX export: a tensor of shape {t.shape} used by "
                f"{self.where()} is not a parameter or buffer of the model"
            )
        self.b.initializer(name, _numpy(t))
        self._emitted[id(t)] = name
        return name

    def value(self, name: str, example: sc.Tensor) -> Value:
        return Value(name, example)

    def where(self) -> str:
        return "module '" + (".".join(p for p in self._path if p) or "<root>") + "'"

    # ------------------------------------------------------------------ modules
    def call(self, module: nn.Module, name: str, *args, **kwargs) -> Any:
        """Convert ``module`` (registered under ``name`` in its parent) applied to ``args``."""
        self._path.append(name)
        try:
            fn = _converter_for(module)
            if fn is None:
                raise OnnxUnsupportedError(
                    f"ONNX export: no converter for {type(module).__name__} ({self.where()}); "
                    "register one with shrew.onnx.register_converter"
                )
            with self.b.scope(name):
                return fn(self, module, *args, **kwargs)
        finally:
            self._path.pop()

    @staticmethod
    def run(module: nn.Module, *args, **kwargs) -> Any:
        """The module's own output on the example values of ``args``."""
        return module(*examples(args), **examples(kwargs))

    @staticmethod
    def bind(module: nn.Module, args, kwargs) -> dict[str, Any]:
        """``forward``'s arguments by name, defaults filled in."""
        bound = inspect.signature(module.forward).bind(*args, **kwargs)
        bound.apply_defaults()
        return dict(bound.arguments)

    def unsupported(self, what: str) -> OnnxUnsupportedError:
        return OnnxUnsupportedError(f"ONNX export of {self.where()}: {what}")


def examples(tree: Any) -> Any:
    """``tree`` with every Value replaced by its example tensor."""
    if isinstance(tree, Value):
        return tree.example
    if isinstance(tree, (tuple, list)):
        return type(tree)(examples(v) for v in tree)
    if isinstance(tree, dict):
        return {k: examples(v) for k, v in tree.items()}
    return tree


def _numpy(t: sc.Tensor) -> np.ndarray:
    t = t.detach()
    if t.device != sc.as_device("cpu"):
        t = t.to("cpu")
    return np.array(t.numpy(), order="C")


# ---------------------------------------------------------------------------- export
def export(
    model: nn.Module,
    args: Any,
    path: str | os.PathLike,
    *,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
    dynamic_axes: Mapping[str, Mapping[int, str] | Sequence[int]] | None = None,
    opset_version: int = OPSET,
) -> onnx.ModelProto:
    """Export ``model`` applied to ``args`` as an ONNX file (like ``torch.onnx.export``).

    Args:
        model: a shrew_nn Module (exported in eval mode: dropout off, running statistics).
        args: the example input: a tensor, or a tuple of tensors / None / Python constants
            (constants are baked in); a trailing dict is passed as keyword arguments.
            Every tensor becomes a graph input, in order (nested tuples are flattened).
        path: the file to write (atomically).
        input_names, output_names: graph input / output names (default ``input``/``output``,
            or ``input_0``, ``input_1``, ... when there are several).
        dynamic_axes: ``{name: {axis: "dim_name"}}`` or ``{name: [axis, ...]}``: those dims
            are symbolic (``dim_param``), e.g. ``{"input": {0: "batch"}}``.
        opset_version: must be 17.

    Raises:
        OnnxUnsupportedError: a module without a converter (naming its class and path).
    """
    if opset_version != OPSET:
        raise OnnxUnsupportedError(
            f"ONNX export: opset_version {opset_version} is not supported; Shrew writes opset "
            f"{OPSET}"
        )
    if not isinstance(model, nn.Module):
        raise TypeError(f"export: model must be a shrew_nn Module, got {type(model).__name__}")
    args, kwargs = _split_args(args)
    modes = {id(m): m.training for m in model.modules()}
    model.eval()
    try:
        with sc.no_grad():
            model_proto = _build(model, args, kwargs, input_names, output_names, dynamic_axes)
    finally:
        for m in model.modules():
            object.__setattr__(m, "training", modes[id(m)])
    save(model_proto, path)
    return model_proto


def _split_args(args: Any) -> tuple[tuple, dict]:
    if isinstance(args, (sc.Tensor, np.ndarray)):
        return (args,), {}
    args = tuple(args)
    if args and isinstance(args[-1], dict):
        return args[:-1], dict(args[-1])
    return args, {}


def _build(model, args, kwargs, input_names, output_names, dynamic_axes):
    b = GraphBuilder()
    exporter = ModuleExporter(b, model)
    leaves: list[sc.Tensor] = []
    index: dict[int, int] = {}

    def collect(tree):
        if isinstance(tree, np.ndarray):
            tree = sc.tensor(tree)
        if isinstance(tree, sc.Tensor):  # one graph input per distinct tensor
            if id(tree) not in index:
                index[id(tree)] = len(leaves)
                leaves.append(tree)
            return ("__input__", index[id(tree)])
        if isinstance(tree, (tuple, list)):
            return type(tree)(collect(v) for v in tree)
        if isinstance(tree, dict):
            return {k: collect(v) for k, v in tree.items()}
        return tree

    arg_tree, kw_tree = collect(args), collect(kwargs)
    names = _default_names(input_names, len(leaves), "input")
    dyn = _dynamic_axes(dynamic_axes, names)
    inputs = []
    for name, t in zip(names, leaves):
        b.add_input(name, dtypes.to_onnx(t.dtype), _shape(t.shape, dyn.get(name, {})))
        inputs.append(Value(name, t))

    def place(tree):
        if isinstance(tree, tuple) and len(tree) == 2 and tree[0] == "__input__":
            return inputs[tree[1]]
        if isinstance(tree, (tuple, list)):
            return type(tree)(place(v) for v in tree)
        if isinstance(tree, dict):
            return {k: place(v) for k, v in tree.items()}
        return tree

    result = exporter.call(model, "", *place(arg_tree), **place(kw_tree))
    outs = _flatten_outputs(result)
    if not outs:
        raise OnnxError(f"ONNX export: {type(model).__name__} returned no tensor")
    out_names = _default_names(output_names, len(outs), "output")
    dyn = _dynamic_axes(dynamic_axes, names + out_names)
    unknown = sorted(set(dynamic_axes or {}) - set(names) - set(out_names))
    if unknown:
        raise OnnxError(
            f"ONNX export: dynamic_axes names {unknown} are neither inputs "
            f"{names} nor outputs {out_names}"
        )
    for name, v in zip(out_names, outs):
        if name in dyn or not any(dyn.get(n) for n in names):
            shape = _shape(v.example.shape, dyn.get(name, {}))
        else:
            shape = [None] * v.ndim  # dims depend on the dynamic inputs: shape inference
        b.add_output(v.name, name, dtypes.to_onnx(v.dtype), shape)
    return b.model(type(model).__name__)


def _flatten_outputs(tree) -> list[Value]:
    if isinstance(tree, Value):
        return [tree]
    if isinstance(tree, (tuple, list)):
        return [v for item in tree for v in _flatten_outputs(item)]
    return []


def _default_names(given, n: int, stem: str) -> list[str]:
    names = list(given or [])
    if len(names) > n:
        raise OnnxError(f"ONNX export: {len(names)} {stem} names given for {n} {stem}s")
    defaults = [stem] if n == 1 else [f"{stem}_{i}" for i in range(n)]
    return names + defaults[len(names) :]


def _dynamic_axes(dynamic_axes, names: list[str]) -> dict[str, dict[int, str]]:
    out: dict[str, dict[int, str]] = {}
    for name, axes in (dynamic_axes or {}).items():
        if name not in names:
            continue
        if isinstance(axes, Mapping):
            out[name] = {int(a): str(d) for a, d in axes.items()}
        else:
            out[name] = {int(a): f"{name}_dynamic_axes_{i + 1}" for i, a in enumerate(axes)}
    return out


def _shape(shape: tuple[int, ...], dyn: Mapping[int, str]) -> list:
    ndim = len(shape)
    named = {(a % ndim if ndim else a): d for a, d in dyn.items()}
    return [named.get(i, s) for i, s in enumerate(shape)]


def export_weights(
    path: str | os.PathLike,
    module: nn.Module,
    name: str = "model",
    input_shape: Sequence[int] | None = None,
) -> None:
    """The seed's ``export_weights(path, module, name, input_shape)``: with ``input_shape``,
    the full model exported on a zero input of that shape (input ``input``, dim 0 dynamic);
    without it, a graph named ``name`` holding only the state dict as initializers."""
    if input_shape is not None:
        dtype = next((p.dtype for p in module.parameters()), sc.f32)
        export(
            module,
            sc.zeros(tuple(input_shape), dtype=dtype),
            path,
            dynamic_axes={"input": {0: "batch"}},
        )
        return
    b = GraphBuilder()
    for key, t in module.state_dict().items():
        b.initializer(key, _numpy(t))
    save(b.model(name), path)


from . import _attention, _layers, _recurrent  # noqa: E402,F401 - registers the converters

if TYPE_CHECKING:
    import onnx
