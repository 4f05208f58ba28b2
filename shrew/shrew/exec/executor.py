"""The Executor: runs the graphs of a lowered .sw program eagerly on shrew tensors.

Params are created from their declarations (shape, dtype, initialiser) when the
executor is built; ops that own weights (``transformer_block``,
``multi_head_attention``) get a shrew_nn module each, named after their node, whose
parameters join the graph's. ``run`` binds inputs by name, checks them against the
declared types (binding symbolic dims such as ``Batch``), evaluates the nodes in
topological order and returns the outputs. Gradients flow through every op, so the
Trainer (and users) can differentiate the outputs with respect to ``parameters()``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

import shrew_core as sc
import shrew_ir
import shrew_nn as nn
from shrew_core import ShapeEnv, ShapeGuard, ShrewError

from .config import RuntimeConfig
from .errors import ExecutionError, where
from .ops import IMPLS
from .params import init_param, resolve_dim, resolve_shape, runtime_dtype


class Executor:
    """Runs graphs of an ``IRModule``. Build one with ``load_program(source_or_path, config)``."""

    def __init__(
        self,
        module: shrew_ir.IRModule,
        config: RuntimeConfig | None = None,
        custom_ops: Mapping[str, Callable] | None = None,
    ):
        self.module = module
        self.config = (config or RuntimeConfig()).resolved(module.config)
        self.device = self.config.device
        self.training = self.config.training
        self._custom = dict(custom_ops or {})
        self._params: dict[str, dict[str, sc.Tensor]] = {}
        self._modules: dict[tuple[str, int], nn.Module] = {}
        if self.config.seed is not None:
            sc.manual_seed(self.config.seed)
        for name, graph in module.graphs.items():
            self._params[name] = self._create_params(name, graph)

    # ------------------------------------------------------------------ params
    def _float_dtype(self, dtype: sc.DType) -> sc.DType:
        if self.config.dtype is not None and dtype.is_float:
            return sc.as_dtype(self.config.dtype)
        return dtype

    def _create_params(self, gname: str, graph) -> dict[str, sc.Tensor]:
        env = ShapeEnv(self.config.dims)
        out: dict[str, sc.Tensor] = {}
        for p in graph.params:
            loc = where(gname, graph.nodes[p.node])
            shape = resolve_shape(p.type, env, self.module.config, loc)
            dtype = self._float_dtype(runtime_dtype(getattr(p.type, "dtype", "f32"), loc))
            t = init_param(p, shape, dtype, self.device, loc)
            out[p.name] = t.requires_grad_() if dtype.is_float and not p.frozen else t
        for nid in graph.topo_order():
            node = graph.nodes[nid]
            if node.op in ("transformer_block", "multi_head_attention"):
                module = self._build_module(gname, graph, node, env)
                self._modules[(gname, nid)] = module
                for pname, t in module.named_parameters():
                    out[f"{node.name}.{pname}"] = t
        return out

    def _build_module(self, gname: str, graph, node, env) -> nn.Module:
        loc = where(gname, node)
        x_type = graph.nodes[node.inputs[0]].type
        if not isinstance(x_type, shrew_ir.TensorType) or not x_type.dims:
            raise ExecutionError(f"{loc}: cannot size {node.op}: input type {x_type} is unknown")
        d_model = resolve_dim(x_type.dims[-1], env, self.module.config, loc)
        dtype = self._float_dtype(runtime_dtype(x_type.dtype, loc))
        at = node.attrs
        heads = at.get("n_heads", 1)
        if d_model % heads:
            raise ExecutionError(f"{loc}: d_model {d_model} is not divisible by n_heads {heads}")
        if node.op == "transformer_block":
            return nn.TransformerBlock(
                d_model,
                heads,
                at.get("d_ff") or 4 * d_model,
                causal=at.get("causal", True),
                dropout=at.get("dropout", 0.0),
                eps=at.get("eps", 1e-5),
                dtype=dtype,
                device=self.device,
            )
        return nn.MultiHeadAttention(
            d_model,
            heads,
            dropout=at.get("dropout", 0.0),
            bias=at.get("bias", True),
            dtype=dtype,
            device=self.device,
        )

    def graph_names(self) -> list[str]:
        return list(self.module.graphs)

    def _graph(self, name: str | None):
        name = name or next(iter(self.module.graphs), None)
        graph = self.module.graphs.get(name)
        if graph is None:
            raise ExecutionError(
                f"graph {name!r} not found; the program has "
                f"{', '.join(self.module.graphs) or 'no graphs'}"
            )
        return name, graph

    def input_names(self, graph: str | None = None) -> list[str]:
        _, g = self._graph(graph)
        return [g.nodes[i].name for i in g.inputs]

    def output_names(self, graph: str | None = None) -> list[str]:
        _, g = self._graph(graph)
        return [o.name for o in g.outputs]

    def parameters(self, graph: str | None = None) -> list[sc.Tensor]:
        """The trainable parameters of a graph (declared params and owned module weights)."""
        name, _ = self._graph(graph)
        return [t for t in self._params[name].values() if t.requires_grad]

    def named_params(self) -> dict[str, sc.Tensor]:
        """Every parameter of every graph, keyed ``graph/param`` and sorted."""
        return {
            f"{g}/{n}": t for g in sorted(self._params) for n, t in sorted(self._params[g].items())
        }

    def param_count(self, graph: str | None = None) -> int:
        name, _ = self._graph(graph)
        return sum(t.numel for t in self._params[name].values())

    def set_param(self, key: str, value) -> None:
        """Replace the values of ``graph/param`` (shape and dtype must match)."""
        gname, _, pname = key.partition("/")
        target = self._params.get(gname, {}).get(pname)
        if target is None:
            raise KeyError(f"no parameter {key!r}; known: {', '.join(self.named_params())}")
        value = value if isinstance(value, sc.Tensor) else sc.tensor(np.asarray(value))
        if value.shape != target.shape:
            raise sc.ShapeError(f"set_param({key!r}): shape {value.shape} != {target.shape}")
        with sc.no_grad():
            target.copy_(value.to(target.device))

    def state_dict(self) -> dict[str, np.ndarray]:
        return {k: np.array(t.detach().numpy()) for k, t in self.named_params().items()}

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        missing = set(self.named_params()) - set(state)
        unexpected = set(state) - set(self.named_params())
        if missing or unexpected:
            raise KeyError(
                f"load_state_dict: missing {sorted(missing)}, unexpected {sorted(unexpected)}"
            )
        for key, value in state.items():
            self.set_param(key, value)

    def train(self, mode: bool = True) -> Executor:
        self.training = mode
        for m in self._modules.values():
            m.train(mode)
        return self

    def eval(self) -> Executor:
        return self.train(False)

    def generate(self, prompt_tokens, max_tokens: int | None = None, **settings) -> sc.Tensor:
        """Autoregressive generation from ``prompt_tokens`` [batch, seq] (or [seq]); settings
        (``temperature``, ``top_k``, ``top_p``, ``seed``, ``strategy``, ``eos_token``,
        ``graph``, ``max_context``) default to the program's ``@inference generation``.
        Returns the prompt plus the new tokens as an i64 tensor. See ``shrew.exec.generate``."""
        from .generate import generate

        return generate(self, prompt_tokens, max_tokens, **settings)

    # ------------------------------------------------------------------ running
    def run(self, graph: str | None = None, inputs: Mapping | None = None, **kw) -> dict:
        """Evaluate ``graph`` on ``inputs`` (name -> Tensor or array); returns its outputs
        by name."""
        name, g = self._graph(graph)
        given = dict(inputs or {}, **kw)
        ctx = _RunContext(self, name)
        values = self._evaluate(name, g, ctx, ctx.bind_inputs(g, given))
        return {o.name: values[o.node] for o in g.outputs}

    __call__ = run

    def _evaluate(self, name: str, g, ctx: _RunContext, values: dict) -> dict:
        """Every node's value, in topological order, from the bound inputs (node id -> value)."""
        for p in g.params:
            values[p.node] = self._params[name][p.name]
        for nid in g.topo_order():
            if nid in values:
                continue
            node = g.nodes[nid]
            if node.op in ("input", "param"):
                values[nid] = None  # an absent optional input
                continue
            args = [values[i] for i in node.inputs]
            values[nid] = ctx.evaluate(node, args)
        return values


class _RunContext:
    """What op implementations see while one graph runs."""

    def __init__(self, executor: Executor, graph: str):
        self.ex = executor
        self.graph = graph
        self.device = executor.device
        self.training = executor.training
        self.env = ShapeEnv(executor.config.dims)

    def bind_inputs(self, g, given: dict) -> dict:
        values: dict[int, object] = {}
        known = {g.nodes[i].name for i in g.inputs}
        unknown = set(given) - known
        if unknown:
            raise ExecutionError(
                f"graph {self.graph!r} has no input named "
                f"{', '.join(sorted(unknown))}; inputs: {', '.join(sorted(known))}"
            )
        for nid in g.inputs:
            node = g.nodes[nid]
            if node.name not in given:
                if nid in g.optional_inputs:
                    values[nid] = None
                    continue
                raise ExecutionError(
                    f"{where(self.graph, node)}: missing input {node.name!r} of type {node.type}"
                )
            values[nid] = self._check_input(node, given[node.name])
        return values

    def _check_input(self, node, value) -> sc.Tensor:
        loc = where(self.graph, node)
        ttype = node.type
        if not isinstance(ttype, shrew_ir.TensorType):
            return value
        dtype = self.ex._float_dtype(runtime_dtype(ttype.dtype, loc))
        if not isinstance(value, sc.Tensor):
            value = sc.tensor(np.asarray(value), dtype=dtype, device=self.device)
        elif value.dtype != dtype:
            if value.dtype.is_float != dtype.is_float:
                raise ExecutionError(
                    f"{loc}: input {node.name!r} is {value.dtype}, declared {ttype}"
                )
            value = value.to(dtype)
        pattern = [
            d.value
            if isinstance(d, shrew_ir.Fixed)
            else d.name
            if isinstance(d, shrew_ir.Symbolic)
            else None
            for d in ttype.dims
        ]
        try:
            ShapeGuard(pattern, f"input {node.name!r}").check(value.shape, self.env)
        except sc.ShapeError as e:
            raise ExecutionError(f"{loc}: {e}") from None
        return value

    def evaluate(self, node, args):
        fn = IMPLS.get(node.op)
        if fn is None:
            raise ExecutionError(f"{where(self.graph, node)}: op {node.op!r} cannot be executed")
        try:
            return fn(self, node, args)
        except (ExecutionError, NotImplementedError):
            raise
        except (ShrewError, ValueError, TypeError, IndexError) as e:
            raise ExecutionError(f"{where(self.graph, node)}: {node.op}: {e}") from e

    def dim(self, name: str, node) -> int:
        value = self.env.get(name)
        if value is None and isinstance(self.ex.module.config.get(name), int):
            value = self.ex.module.config[name]
        if value is None:
            raise ExecutionError(f"{where(self.graph, node)}: symbolic dim {name!r} is unbound")
        return value

    def module_for(self, node) -> nn.Module:
        return self.ex._modules[(self.graph, node.id)]

    def call(self, graph: str, args: list, node):
        target = self.ex.module.graphs.get(graph)
        if target is None:
            raise ExecutionError(f"{where(self.graph, node)}: call of unknown graph {graph!r}")
        names = [target.nodes[i].name for i in target.inputs]
        outputs = self.ex.run(graph, dict(zip(names, args)))
        return next(iter(outputs.values()))

    def custom(self, name: str, args: list, attrs: dict, node):
        fn = self.ex._custom.get(name)
        if fn is None:
            raise NotImplementedError(
                f"{where(self.graph, node)}: custom op {name!r} has no implementation; pass "
                f"custom_ops={{{name!r}: fn}} to load_program"
            )
        return fn(*args, **attrs)


def load_program(
    source,
    config: RuntimeConfig | None = None,
    *,
    custom_ops: Mapping[str, Callable] | None = None,
    filename: str | None = None,
) -> Executor:
    """Parse, lower, validate and optimise a .sw program (a path or source text) and build an
    Executor. Validation errors raise ``shrew_ir.ValidationError`` with every problem."""
    config = config or RuntimeConfig()
    module = _load_module(source, config, filename)
    return Executor(module, config, custom_ops)


def _load_module(source, config: RuntimeConfig, filename: str | None) -> shrew_ir.IRModule:
    from pathlib import Path

    text = str(source)
    if "\n" not in text and "{" not in text and Path(text).exists():
        program = shrew_ir.parse_file(text)
    else:
        program = shrew_ir.parse(text, filename or "<string>")
    module = shrew_ir.lower(program)
    shrew_ir.check(module, dims=config.dims or None)  # raises ValidationError with every error
    if config.optimize_level:
        shrew_ir.optimize(module, config.optimize_level)
    return module
