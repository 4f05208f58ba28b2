"""Shape and dtype inference over a module (the driver; per-op rules live in shape_rules).

Owns `infer_shapes`: visits every graph in topological order, sets each
node's `.type` from the op table's rule, checks declared node types and graph
return types against what was inferred, substitutes known values for symbolic
dims (`dims={"Batch": 32}`), and evaluates `@assert` conditions whose names
are all known. Returns diagnostics; with `strict=True` raises ShapeError when
there is an error.
"""

from __future__ import annotations

from . import ops as O
from .consteval import UNBOUND, EvalError, Evaluator
from .errors import ERROR, WARNING, Diagnostic, ShapeError, raise_if_errors
from .ir import (
    UNKNOWN,
    DimExpr,
    Fixed,
    Graph,
    IRModule,
    ScalarType,
    Symbolic,
    TensorType,
    Type,
    is_float,
    is_int,
    substitute_dim,
)
from .shape_rules import RuleContext


def _substitute(ty: Type, dims: dict[str, int]) -> Type:
    if dims and isinstance(ty, TensorType):
        return TensorType(tuple(substitute_dim(d, dims) for d in ty.dims), ty.dtype)
    return ty


def types_conflict(a: Type, b: Type) -> bool:
    """True when two known types certainly disagree (rank, dtype or a fixed dim)."""
    if not isinstance(a, TensorType) or not isinstance(b, TensorType):
        if isinstance(a, ScalarType) and isinstance(b, ScalarType):
            return a.dtype != b.dtype and not (a.weak or b.weak)
        return False
    if a.rank != b.rank or a.dtype != b.dtype:
        return True
    return any(
        isinstance(x, Fixed) and isinstance(y, Fixed) and x != y for x, y in zip(a.dims, b.dims)
    )


def _refine(inferred: Type, declared: Type) -> Type:
    if not isinstance(inferred, TensorType) or not isinstance(declared, TensorType):
        return declared if inferred is UNKNOWN else inferred
    dims = tuple(
        x if isinstance(x, Fixed) or not isinstance(y, (Fixed, Symbolic)) else y
        for x, y in zip(inferred.dims, declared.dims)
    )
    return TensorType(dims, inferred.dtype)


class _GraphInference:
    def __init__(self, module: IRModule, graph: Graph, dims: dict[str, int], diags, done):
        self.module = module
        self.graph = graph
        self.dims = dims
        self.diags = diags
        self.done = done

    def report(self, severity: str, message: str, span, hint=None) -> None:
        self.diags.append(Diagnostic(severity, message, span, hint, code="shape"))

    def run(self) -> None:
        g = self.graph
        for nid in g.topo_order():
            node = g.nodes[nid]
            if node.op in ("input", "param"):
                node.type = _substitute(node.declared_type or node.type, self.dims)
                continue
            inferred = self.infer_node(node)
            declared = node.declared_type
            if declared is not None:
                declared = _substitute(declared, self.dims)
                if types_conflict(inferred, declared):
                    self.report(
                        ERROR,
                        f"node '{node.name}' is declared as {declared} but computes {inferred}",
                        node.span,
                        "fix the declared type or the op",
                    )
                inferred = _refine(inferred, declared)
            node.type = inferred
        if g.declared_return is not None and g.outputs:
            out = g.nodes.get(g.outputs[0].node)
            declared = _substitute(g.declared_return, self.dims)
            if out is not None and types_conflict(out.type, declared):
                self.report(
                    WARNING,
                    f"graph '{g.name}' declares return type {declared} but its output"
                    f" '{g.outputs[0].name}' is {out.type}",
                    g.return_span,
                    "fix the '-> Type' of the graph signature",
                )
        self.check_asserts()

    def const_value(self, nid: int):
        node = self.graph.nodes.get(nid)
        if node is None:
            return None
        if node.op == "constant":
            return node.attrs.get("value")
        if node.op == "dim":
            name = node.attrs.get("name")
            return Fixed(self.dims[name]) if name in self.dims else Symbolic(name)
        if node.op in ("add", "sub", "mul", "div") and len(node.inputs) == 2:
            a, b = self.const_value(node.inputs[0]), self.const_value(node.inputs[1])
            if a is None or b is None:
                return None
            from .ir import dim_binop

            to_dim = lambda v: Fixed(v) if isinstance(v, int) else v  # noqa: E731
            if all(isinstance(v, (int, Fixed, Symbolic, DimExpr)) for v in (a, b)):
                op = {"add": "+", "sub": "-", "mul": "*", "div": "/"}[node.op]
                return dim_binop(op, to_dim(a), to_dim(b))
        return None

    def infer_node(self, node) -> Type:
        g = self.graph
        in_types = [g.nodes[i].type if i in g.nodes else UNKNOWN for i in node.inputs]
        if node.op == "call":
            return self.call_type(node)
        if node.op == "custom":
            return self.custom_type(node)
        op = O.lookup(node.op)
        if op is None:
            return UNKNOWN
        n = len(in_types)
        if n < op.min_inputs or (op.max_inputs >= 0 and n > op.max_inputs):
            return UNKNOWN
        attrs = O.with_defaults(op, node.attrs)
        for key, spec in op.attrs.items():
            if key not in attrs or not O.check_attr(spec, attrs[key]):
                return UNKNOWN
        if op.name == "embedding" and n == 2:
            a, b = in_types
            if (
                isinstance(a, TensorType)
                and isinstance(b, TensorType)
                and is_float(a.dtype)
                and is_int(b.dtype)
            ):
                node.inputs.reverse()
                in_types.reverse()
                self.report(
                    WARNING,
                    "embedding arguments are (table, indices); reordered to (indices, table)",
                    node.span,
                    "write embedding(indices, table)",
                )
        if any(t is UNKNOWN for t in in_types) and op.name not in ("coalesce", "range"):
            return UNKNOWN
        ctx = RuleContext(
            op.name,
            [self.const_value(i) for i in node.inputs],
            lambda msg, hint: self.report(ERROR, msg, node.span, hint),
        )
        try:
            return op.infer(ctx, in_types, attrs)
        except (TypeError, ValueError, IndexError, ZeroDivisionError):
            return UNKNOWN

    def call_type(self, node) -> Type:
        target = node.attrs.get("graph", "")
        module, name = self.module, target
        if "::" in target:
            alias, _, name = target.partition("::")
            module = self.module.imports.get(alias)
        callee = module.graphs.get(name) if module is not None else None
        if callee is None or not callee.outputs or callee is self.graph:
            return UNKNOWN
        if id(callee) not in self.done:
            self.done.add(id(callee))
            _GraphInference(module, callee, self.dims, [], self.done).run()
        out = callee.nodes.get(callee.outputs[0].node)
        return out.type if out is not None else UNKNOWN

    def custom_type(self, node) -> Type:
        name = node.attrs.get("name", "")
        module = self.module
        if "::" in name:
            alias, _, name = name.partition("::")
            module = self.module.imports.get(alias)
        custom = module.custom_ops.get(name) if module is not None else None
        return custom.returns if custom is not None else UNKNOWN

    def check_asserts(self) -> None:
        g, module = self.graph, self.module

        class _Unknown(Exception):
            pass

        def resolve(name, span):
            if name in self.dims:
                return self.dims[name]
            if name in module.config:
                return module.config[name]
            raise _Unknown()

        evaluator = Evaluator(resolve, bare_words=False)
        for assertion in g.asserts:
            try:
                value = evaluator.eval(assertion.expr)
            except _Unknown:
                continue  # mentions a dim that is not bound yet
            except EvalError as exc:
                self.report(ERROR, f"cannot evaluate assertion: {exc.message}", exc.span)
                continue
            if value is UNBOUND:
                continue
            if not isinstance(value, bool):
                self.report(
                    ERROR,
                    f"assertion '{assertion.text}' is not a condition (got {value!r})",
                    assertion.span,
                )
            elif not value:
                message = f"assertion failed: {assertion.text}"
                if assertion.message:
                    message += f" ({assertion.message})"
                self.report(ERROR, message, assertion.span, "check the bound dims and config")


def infer_shapes(
    module: IRModule, dims: dict[str, int] | None = None, strict: bool = False
) -> list[Diagnostic]:
    """Infer every node's type in place; return shape diagnostics (raise if strict)."""
    diags: list[Diagnostic] = []
    done: set[int] = set()
    for graph in module.graphs.values():
        if id(graph) in done:
            continue
        done.add(id(graph))
        _GraphInference(module, graph, dict(dims or {}), diags, done).run()
    if strict:
        raise_if_errors(diags, ShapeError)
    return diags
