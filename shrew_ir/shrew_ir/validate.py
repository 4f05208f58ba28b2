"""Validation: every static check of a lowered module, as a list of Diagnostics.

Owns the structural and semantic checks: graphs without outputs, duplicate
names, undefined names, dangling inputs, unknown ops (with "did you mean"),
arity, attribute names and types, @custom_op and graph-call arity, cycles,
param types and init strings, @training/@inference references, unused values
(warnings) and — by running shape inference — dtype and shape mismatches and
failed @assert conditions. `validate` never raises for problems in the model;
`check` raises ValidationError when there is at least one error.
"""

from __future__ import annotations

import difflib

from . import ops as O
from .errors import ERROR, WARNING, Diagnostic, ValidationError, raise_if_errors
from .ir import Graph, IRModule, TensorType
from .shapes import infer_shapes

_STRUCTURAL_OPS = ("input", "param", "undefined")


def _suggest(name: str, candidates) -> str | None:
    close = difflib.get_close_matches(name, list(candidates), n=3, cutoff=0.6)
    if close:
        return "did you mean " + " or ".join(f"'{c}'" for c in close) + "?"
    return None


def is_user_name(name: str) -> bool:
    return "." not in name and not name.startswith("__")


class _Validator:
    def __init__(self, module: IRModule) -> None:
        self.module = module
        self.diags: list[Diagnostic] = []

    def error(self, message, span, hint=None, notes=None) -> None:
        self.diags.append(Diagnostic(ERROR, message, span, hint, "validate", notes or []))

    def warning(self, message, span, hint=None) -> None:
        self.diags.append(Diagnostic(WARNING, message, span, hint, "validate"))

    def run(self) -> bool:
        """Check every graph; returns whether the graphs are sound enough for shape inference."""
        sound = True
        for graph in self.module.graphs.values():
            sound &= self.graph(graph)
        self.program_checks()
        return sound

    # ------------------------------------------------------------------ graph checks

    def graph(self, g: Graph) -> bool:
        if not g.outputs:
            self.error(
                f"graph '{g.name}' has no outputs",
                g.span,
                "declare at least one: output name;",
            )
        self.duplicates(g)
        scope_names = [n.name for n in g.nodes.values() if is_user_name(n.name)]
        names = scope_names + list(self.module.config)
        dangling = False
        for node in g.nodes.values():
            if node.op == "undefined":
                self.undefined(g, node, names)
                continue
            for src in node.inputs:
                if src not in g.nodes:
                    dangling = True
                    self.error(f"node '{node.name}' references missing node n{src}", node.span)
            self.node_op(g, node)
        for out in g.outputs:
            if out.node not in g.nodes:
                dangling = True
                self.error(f"output '{out.name}' references missing node n{out.node}", out.span)
        for param in g.params:
            if not isinstance(param.type, TensorType):
                self.error(
                    f"param '{param.name}' must have a Tensor type, got {param.type}",
                    param.span,
                    "e.g. param w: Tensor<[4, 8], f32>;",
                )
            if param.init.kind == "custom":
                self.warning(
                    f"param '{param.name}' has an unrecognised init '{param.init.text}'",
                    param.attrs.get("init_span", param.span),
                    "known: zeros, ones, normal(mean, std), uniform(low, high), xavier_uniform,"
                    " xavier_normal, kaiming_uniform, kaiming_normal",
                )
        if dangling:
            return False
        acyclic = self.cycles(g)
        if acyclic:
            self.unused(g)
        return acyclic

    def duplicates(self, g: Graph) -> None:
        first: dict[str, object] = {}
        for node in g.nodes.values():
            if not is_user_name(node.name):
                continue
            if node.name in first:
                prev = first[node.name]
                self.error(
                    f"duplicate name '{node.name}'",
                    node.span,
                    "rename one of the declarations",
                    [(f"'{node.name}' was first declared here", prev.span)],
                )
            else:
                first[node.name] = node

    def undefined(self, g: Graph, node, names) -> None:
        name = node.attrs.get("name", node.name)
        self.error(
            f"undefined name '{name}'",
            node.span,
            _suggest(name, names) or "declare it as an input, param or node of this graph",
        )

    def node_op(self, g: Graph, node) -> None:
        op_name = node.op
        if op_name == "custom":
            self.custom_call(node)
            return
        if op_name == "call":
            self.graph_call(g, node)
            return
        op = O.OPS.get(op_name)
        if op is None:
            candidates = list(O.OPS) + list(O.ALIASES) + list(self.module.custom_ops)
            self.error(
                f"unknown op '{op_name}'",
                node.span,
                _suggest(op_name, candidates)
                or "see the op table in the shrew_ir README, or declare a @custom_op",
            )
            return
        n = len(node.inputs)
        if n < op.min_inputs or (op.max_inputs >= 0 and n > op.max_inputs):
            if op.max_inputs < 0:
                expect = f"at least {op.min_inputs}"
            elif op.min_inputs == op.max_inputs:
                expect = str(op.min_inputs)
            else:
                expect = f"{op.min_inputs} to {op.max_inputs}"
            plural = "" if expect == "1" else "s"
            self.error(
                f"{op_name} expects {expect} input{plural}, got {n}",
                node.span,
                f"inputs are ({', '.join(op.inputs)})" if op.inputs else None,
            )
        for key, value in node.attrs.items():
            spec = op.attrs.get(key)
            if spec is None:
                known = ", ".join(op.attrs) or "none"
                self.error(
                    f"{op_name} has no attribute '{key}'",
                    node.span,
                    _suggest(key, op.attrs) or f"its attributes are: {known}",
                )
            elif not O.check_attr(spec, value):
                self.error(
                    f"{op_name}: attribute '{key}' must be {O.describe_attr_type(spec.type)},"
                    f" got {value!r}",
                    node.span,
                )
        for key, spec in op.attrs.items():
            if spec.required and key not in node.attrs:
                self.error(
                    f"{op_name} requires the attribute '{key}'",
                    node.span,
                    f"e.g. {op_name}(x, {key}: ...)",
                )

    def custom_call(self, node) -> None:
        name = node.attrs.get("name", "")
        module = self.module
        if "::" in name:
            alias, _, name = name.partition("::")
            module = self.module.imports.get(alias)
        custom = module.custom_ops.get(name) if module is not None else None
        if custom is None or not custom.has_signature:
            return
        tensors = [p for p in custom.params if p[2]]
        if len(node.inputs) != len(tensors):
            self.error(
                f"custom op '{name}' takes {len(tensors)} tensor argument(s), got"
                f" {len(node.inputs)}",
                node.span,
            )

    def graph_call(self, g: Graph, node) -> None:
        target = node.attrs.get("graph", "")
        module, name = self.module, target
        if "::" in target:
            alias, _, name = target.partition("::")
            module = self.module.imports.get(alias)
        callee = module.graphs.get(name) if module is not None else None
        if callee is None:
            self.error(
                f"call to unknown graph '{target}'",
                node.span,
                _suggest(target, self.module.graphs),
            )
            return
        if callee is g:
            self.error(f"graph '{g.name}' calls itself", node.span, "recursion is not supported")
            return
        if len(node.inputs) != len(callee.inputs):
            self.error(
                f"graph '{target}' takes {len(callee.inputs)} input(s), got {len(node.inputs)}",
                node.span,
            )

    def cycles(self, g: Graph) -> bool:
        order = g.topo_order()
        if len(order) == len(g.nodes):
            return True
        done = set(order)
        remaining = [nid for nid in g.nodes if nid not in done]
        cycle = self.find_cycle(g, set(remaining))
        names = " -> ".join(g.nodes[n].name for n in cycle)
        first = g.nodes[cycle[0]]
        self.error(
            f"cycle detected: {names}",
            first.span,
            "a value cannot depend on itself; break the loop",
        )
        return False

    @staticmethod
    def find_cycle(g: Graph, candidates: set[int]) -> list[int]:
        """Walk input edges among the candidates until a node repeats (iterative)."""
        start = min(candidates)
        seen: dict[int, int] = {}
        path: list[int] = []
        current = start
        while current not in seen:
            seen[current] = len(path)
            path.append(current)
            nxt = [i for i in g.nodes[current].inputs if i in candidates]
            if not nxt:
                break
            current = nxt[0]
        cycle = path[seen.get(current, 0) :]
        cycle.reverse()  # show producer -> consumer order
        first = cycle.index(min(cycle))  # start at the earliest declaration
        cycle = cycle[first:] + cycle[:first]
        return cycle + [cycle[0]]

    def unused(self, g: Graph) -> None:
        live: set[int] = set()
        stack = [o.node for o in g.outputs]
        while stack:
            nid = stack.pop()
            if nid in live or nid not in g.nodes:
                continue
            live.add(nid)
            stack.extend(g.nodes[nid].inputs)
        params = g.param_ids
        for node in g.nodes.values():
            if node.id in live or not is_user_name(node.name):
                continue
            kind = "input" if node.op == "input" else "param" if node.id in params else "value"
            self.warning(
                f"unused {kind} '{node.name}'",
                node.span,
                "it does not contribute to any output",
            )

    # ------------------------------------------------------------------ program checks

    def program_checks(self) -> None:
        mod = self.module
        for label, cfg in (("@training", mod.training), ("@inference", mod.inference)):
            if cfg is None:
                continue
            if cfg.model not in mod.graphs:
                self.error(
                    f"{label} references unknown graph '{cfg.model}'",
                    cfg.model_span or cfg.span,
                    _suggest(cfg.model, mod.graphs)
                    or f"graphs: {', '.join(mod.graphs) or 'none'}",
                )
        training = mod.training
        if training is not None and training.loss:
            canonical = O.canonical_name(training.loss)
            if canonical not in O.LOSS_OPS:
                self.error(
                    f"unknown loss '{training.loss}'",
                    training.loss_span or training.span,
                    _suggest(training.loss, O.LOSS_OPS)
                    or f"losses: {', '.join(sorted(O.LOSS_OPS))}",
                )
        for name, custom in mod.custom_ops.items():
            if name in O.OPS or name in O.ALIASES:
                self.warning(
                    f"@custom_op '{name}' has the name of a built-in op; calls use the built-in",
                    custom.span,
                    "rename the custom op to call it",
                )


def _position(d: Diagnostic):
    if d.span is None or not d.span.line:
        return ("~", 0, 0)
    return (d.span.filename, d.span.line, d.span.column)


def validate(module: IRModule, dims: dict[str, int] | None = None) -> list[Diagnostic]:
    """Return every error and warning for `module` (sorted by position).

    Also runs shape inference (so node types are filled in), with `dims`
    binding symbolic dims such as Batch to concrete sizes.
    """
    validator = _Validator(module)
    sound = validator.run()
    diags = list(module.diagnostics) + validator.diags
    if sound:
        diags.extend(infer_shapes(module, dims))
    diags.sort(key=_position)
    return diags


def check(module: IRModule, dims: dict[str, int] | None = None) -> list[Diagnostic]:
    """Validate and raise ValidationError if there is any error; return the warnings."""
    diags = validate(module, dims)
    raise_if_errors(diags, ValidationError)
    return diags

