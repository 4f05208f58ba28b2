"""``ModelSummary.from_module(model, input_shape=None)``: a torchinfo-style table of a
model's layers (name, type, output shape, parameters) and its parameter totals.

With an input shape, the model runs once on a random input (no grad, in eval mode, the
training flags restored afterwards) with every submodule's ``forward`` wrapped for the
call, so each row is one module call in execution order (containers before their
children) with the shape of what it returned. Without one, the rows are the modules in
registration order and output shapes are None.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import shrew_core as sc
import shrew_nn as nn
from shrew_core import Tensor

from .memory import format_bytes


@dataclass(frozen=True, slots=True)
class LayerSummary:
    """One row: ``name`` (dotted, ``""`` for the model itself), the module's class
    ``type``, ``output_shape`` (a tuple, a tuple of them for several outputs, or None),
    ``num_params`` (its own parameters, not its children's: the column sums to the total)
    and its nesting ``depth``."""

    name: str
    type: str
    output_shape: Any
    num_params: int
    depth: int


@dataclass
class ModelSummary:
    """Layers and parameter totals of a model.

    Attributes:
        layers: the rows (see ``LayerSummary``).
        total_params, trainable_params: element counts.
        num_tensors: how many parameter tensors.
        param_details: ``(name, shape, numel)`` per parameter.
        estimated_bytes: parameter bytes in their real dtypes.

    Examples:
        >>> import shrew_nn as nn
        >>> s = ModelSummary.from_module(nn.Sequential(nn.Linear(8, 4), nn.ReLU()), (2, 8))
        >>> [(r.name, r.output_shape, r.num_params) for r in s.layers]
        [('', (2, 4), 0), ('0', (2, 4), 36), ('1', (2, 4), 0)]
    """

    layers: list[LayerSummary]
    total_params: int
    trainable_params: int
    num_tensors: int
    param_details: list[tuple[str, tuple[int, ...], int]] = field(default_factory=list)
    estimated_bytes: int = 0

    @classmethod
    def from_module(cls, model: nn.Module, input_shape=None, *, dtype=None,
                    device=None) -> ModelSummary:  # fmt: skip
        """Summarise ``model``; ``input_shape`` is ``(batch, ...)`` or a list of such shapes
        for several inputs. ``dtype``/``device`` of the input default to the first
        parameter's (else f32 on cpu)."""
        if not isinstance(model, nn.Module):
            raise TypeError(f"ModelSummary: expected a Module, got {type(model).__name__}")
        params = list(model.named_parameters())
        details = [(n, tuple(p.shape), p.numel) for n, p in params]
        layers = (_traced_layers(model, input_shape, dtype, device) if input_shape is not None
                  else _static_layers(model))  # fmt: skip
        return cls(
            layers=layers,
            total_params=sum(p.numel for _, p in params),
            trainable_params=sum(p.numel for _, p in params if p.requires_grad),
            num_tensors=len(params),
            param_details=details,
            estimated_bytes=sum(p.numel * p.dtype.itemsize for _, p in params),
        )

    def __str__(self) -> str:
        head = ("Layer (type)", "Output Shape", "Param #")
        body = [("  " * r.depth + (f"{r.name} ({r.type})" if r.name else r.type),
                 "--" if r.output_shape is None else _fmt_shape(r.output_shape),
                 f"{r.num_params:,}" if r.num_params else "--") for r in self.layers]  # fmt: skip
        widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
        rule = "=" * (sum(widths) + 4)

        def fmt(cells) -> str:
            a, b, c = widths
            return f"{cells[0]:<{a}}  {cells[1]:<{b}}  {cells[2]:>{c}}"

        return "\n".join([
            rule, fmt(head), rule, *(fmt(b) for b in body), rule,
            f"Total params: {self.total_params:,} ({_count(self.total_params)})",
            f"Trainable params: {self.trainable_params:,}",
            f"Non-trainable params: {self.total_params - self.trainable_params:,}",
            f"Params size: {format_bytes(self.estimated_bytes)}", rule,
        ])  # fmt: skip


def _count(n: int) -> str:
    for div, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= div:
            return f"{n / div:.2f}{unit}"
    return str(n)


def _fmt_shape(shape) -> str:
    if isinstance(shape, tuple) and all(isinstance(d, int) for d in shape):
        return "[" + ", ".join(str(d) for d in shape) + "]"
    return "(" + ", ".join(_fmt_shape(s) for s in shape) + ")"


def _own_params(mod: nn.Module) -> int:
    return sum(p.numel for p in mod.parameters(recurse=False))


def _static_layers(model: nn.Module) -> list[LayerSummary]:
    return [LayerSummary(name, type(mod).__name__, None, _own_params(mod),
                         name.count(".") + 1 if name else 0)
            for name, mod in model.named_modules()]  # fmt: skip


def _shape_of(out) -> Any:
    if isinstance(out, Tensor):
        return tuple(out.shape)
    if isinstance(out, (tuple, list)):
        return tuple(_shape_of(o) for o in out)
    return None


def _traced_layers(model, input_shape, dtype, device) -> list[LayerSummary]:
    first = next(iter(model.parameters()), None)
    dtype = dtype or (first.dtype if first is not None else sc.f32)
    device = device or (first.device if first is not None else "cpu")
    shapes = input_shape if isinstance(input_shape, list) else [input_shape]
    rows: list[list] = []
    depth = [0]

    def wrap(name: str, mod: nn.Module):
        forward = mod.forward

        def traced(*args, **kwargs):
            row = [name, type(mod).__name__, None, _own_params(mod), depth[0]]
            rows.append(row)
            depth[0] += 1
            try:
                out = forward(*args, **kwargs)
            finally:
                depth[0] -= 1
            row[2] = _shape_of(out)
            return out

        return traced

    modules = list(model.named_modules())
    saved = [(m.training, m.__dict__.get("forward")) for _, m in modules]
    rng = sc.get_rng_state()
    inputs = [sc.randn(*tuple(s), dtype=dtype, device=device) for s in shapes]
    sc.set_rng_state(rng)  # the summary leaves the global RNG as it found it
    try:
        for name, mod in modules:
            mod.__dict__["forward"] = wrap(name, mod)  # shadows the class's forward
        model.eval()
        with sc.no_grad():
            model(*inputs)
    finally:
        for (_, mod), (mode, forward) in zip(modules, saved):
            if forward is None:
                mod.__dict__.pop("forward", None)
            else:
                mod.__dict__["forward"] = forward
            object.__setattr__(mod, "training", mode)
    return [LayerSummary(*r) for r in rows]
