"""Lowering: ast.Program -> ir.IRModule.

Owns the translation of every top-level item: @model/@config/@types into
module maps (config folded with full expression support, forward references
allowed, cycles rejected), @graph into a Graph (names resolved over the whole
graph body so declaration order does not matter; infix operators to ops;
named arguments to attributes; `repeat(n)` unrolled; `if` on constants chosen,
otherwise `where`; config names folded to constants; symbolic dims such as
SeqLen to `dim` nodes), and @training/@inference/@metrics/@logging/
@visualizations/@custom_op into typed records.

Unresolved names become `undefined` placeholder nodes (validation reports them
with their line and column). Problems that prevent building the IR (a config
value that cannot be evaluated, an unknown type alias, a non-constant
attribute, a bad repeat count...) are collected and raised together as one
LoweringError.
"""

from __future__ import annotations

from . import ast as A
from . import ops as O
from .consteval import UNBOUND, EvalError, Evaluator
from .errors import ERROR, WARNING, Diagnostic, LoweringError, Span
from .ir import (
    DYNAMIC,
    UNKNOWN,
    Assertion,
    CustomOp,
    Fixed,
    Graph,
    InferenceConfig,
    InitSpec,
    IRModule,
    ListType,
    OptimizerConfig,
    Output,
    Param,
    ScalarType,
    Symbolic,
    TensorType,
    TrainingConfig,
    TupleType,
    Type,
    dim_binop,
)
from .printer import format_expr

INFIX_OPS = {
    "+": "add",
    "-": "sub",
    "*": "mul",
    "/": "div",
    "%": "mod",
    "**": "pow",
    "@": "matmul",
    "==": "eq",
    "!=": "ne",
    "<": "lt",
    ">": "gt",
    "<=": "le",
    ">=": "ge",
    "&&": "and",
    "||": "or",
    "&": "bitand",
    "|": "bitor",
    "^": "bitxor",
    "<<": "shl",
    ">>": "shr",
    "??": "coalesce",
}
PREFIX_OPS = {"-": "neg", "!": "not", "~": "bitnot"}
INIT_KINDS = (
    "zeros",
    "ones",
    "xavier_uniform",
    "xavier_normal",
    "kaiming_uniform",
    "kaiming_normal",
)


class _Abort(Exception):
    """Internal: stop lowering the current statement (the error is already recorded)."""


def parse_init(text: str) -> tuple[InitSpec, str | None]:
    """Parse an init string; returns the spec and an error message (or None)."""
    t = text.strip()
    if t in INIT_KINDS:
        return InitSpec(t, {}, text), None
    for kind, names in (("normal", ("mean", "std")), ("uniform", ("low", "high"))):
        if t.startswith(kind + "(") and t.endswith(")"):
            parts = [p.strip() for p in t[len(kind) + 1 : -1].split(",")]
            if len(parts) != 2:
                return InitSpec("custom", {}, text), f"{kind}(...) takes 2 numbers"
            try:
                values = [float(p) for p in parts]
            except ValueError:
                return InitSpec("custom", {}, text), f"{kind}(...) arguments must be numbers"
            return InitSpec(kind, dict(zip(names, values)), text), None
    return InitSpec("custom", {}, text), None


class ModuleLowerer:
    def __init__(self, program: A.Program, cache: dict | None = None) -> None:
        self.program = program
        self.module = IRModule(filename=program.filename)
        self.diags: list[Diagnostic] = []
        self.cache = cache if cache is not None else {}
        self.config_exprs: dict[str, A.Field] = {}
        self.config_state: dict[str, str] = {}  # key -> "busy" | "done"
        self.alias_exprs: dict[str, A.TypeDef] = {}
        self.alias_state: dict[str, str] = {}
        self.config_eval = Evaluator(self._resolve_config)

    # ------------------------------------------------------------------ diagnostics

    def error(self, message: str, span: Span | None, hint: str | None = None) -> None:
        self.diags.append(Diagnostic(ERROR, message, span, hint, code="lower"))

    def warning(self, message: str, span: Span | None, hint: str | None = None) -> None:
        self.diags.append(Diagnostic(WARNING, message, span, hint, code="lower"))

    def eval_or_report(self, expr: A.Expr, evaluator: Evaluator | None = None):
        try:
            return (evaluator or self.config_eval).eval(expr)
        except EvalError as exc:
            self.error(exc.message, exc.span, exc.hint)
            raise _Abort() from None

    # ------------------------------------------------------------------ config

    def _resolve_config(self, name: str, span: Span):
        mod = self.module
        if name in mod.config and self.config_state.get(name) == "done":
            return mod.config[name]
        if name in self.config_exprs:
            state = self.config_state.get(name)
            if state == "busy":
                raise EvalError(
                    f"config value '{name}' depends on itself", span, "break the cycle"
                )
            self.config_state[name] = "busy"
            try:
                value = self.config_eval.eval(self.config_exprs[name].value)
            finally:
                self.config_state[name] = "error"
            mod.config[name] = value
            self.config_state[name] = "done"
            return value
        if "::" in name:
            alias, _, key = name.partition("::")
            imported = mod.imports.get(alias)
            if imported is not None and key in imported.config:
                return imported.config[key]
        return UNBOUND

    def config_int(self, name: str) -> int | None:
        if name not in self.config_exprs and "::" not in name:
            return None
        try:
            value = self._resolve_config(name, None)
        except EvalError:
            return None
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    # ------------------------------------------------------------------ types

    def lower_dim(self, dim: A.Dim):
        if isinstance(dim, A.DimInt):
            return Fixed(dim.value)
        if isinstance(dim, A.DimDynamic):
            return DYNAMIC
        if isinstance(dim, A.DimName):
            value = self.config_int(dim.name)
            return Fixed(value) if value is not None else Symbolic(dim.name)
        if isinstance(dim, A.DimParen):
            return self.lower_dim(dim.inner)
        return dim_binop(dim.op, self.lower_dim(dim.left), self.lower_dim(dim.right))

    def lower_type(self, ty: A.TypeExpr | None) -> Type:
        if ty is None:
            return UNKNOWN
        if isinstance(ty, A.TensorTypeExpr):
            return TensorType(tuple(self.lower_dim(d) for d in ty.dims), ty.dtype)
        if isinstance(ty, A.ScalarTypeExpr):
            return ScalarType(ty.dtype)
        if isinstance(ty, A.IntDimTypeExpr):
            return TensorType((Fixed(ty.value),), "f32")
        if isinstance(ty, A.NamedTypeExpr):
            return self.lookup_alias(ty.name, ty.span)
        if isinstance(ty, A.TupleTypeExpr):
            return TupleType(tuple(self.lower_type(t) for t in ty.items))
        if isinstance(ty, A.ListTypeExpr):
            return ListType(self.lower_type(ty.item))
        return UNKNOWN

    def lookup_alias(self, name: str, span: Span) -> Type:
        mod = self.module
        if self.alias_state.get(name) == "done":
            return mod.type_aliases[name]
        if name in self.alias_exprs:
            if self.alias_state.get(name) == "busy":
                self.error(f"type alias '{name}' refers to itself", span)
                return UNKNOWN
            self.alias_state[name] = "busy"
            ty = self.lower_type(self.alias_exprs[name].type)
            mod.type_aliases[name] = ty
            self.alias_state[name] = "done"
            return ty
        if "::" in name:
            alias, _, key = name.partition("::")
            imported = mod.imports.get(alias)
            if imported is not None and key in imported.type_aliases:
                return imported.type_aliases[key]
        known = sorted(self.alias_exprs)
        self.error(
            f"unknown type '{name}'",
            span,
            f"declare it in @types (known aliases: {', '.join(known)})"
            if known
            else "declare it in a @types block: type Name = Tensor<[..], f32>;",
        )
        return UNKNOWN

    # ------------------------------------------------------------------ program

    def lower(self) -> IRModule:
        program, mod = self.program, self.module
        self._lower_imports()
        for item in program.items:
            if isinstance(item, A.ConfigBlock):
                for f in item.fields:
                    self.config_exprs[f.key] = f  # later keys override earlier ones
                    self.config_state.pop(f.key, None)
            elif isinstance(item, A.TypesBlock):
                for d in item.defs:
                    self.alias_exprs[d.name] = d
        for key, f in self.config_exprs.items():
            try:
                self._resolve_config(key, f.span)
            except EvalError as exc:
                self.error(exc.message, exc.span, exc.hint)
        mod.config = {k: mod.config[k] for k in self.config_exprs if k in mod.config}
        for name, d in self.alias_exprs.items():
            self.lookup_alias(name, d.span)
        for item in program.items:
            try:
                self._lower_item(item)
            except _Abort:
                pass
        if mod.training is not None and not mod.training.model and mod.graphs:
            mod.training.model = next(iter(mod.graphs))
        if mod.inference is not None and not mod.inference.model and mod.graphs:
            mod.inference.model = next(iter(mod.graphs))
        mod.diagnostics = [d for d in self.diags if not d.is_error]
        return mod

    def _lower_imports(self) -> None:
        imports = self.program.of_type(A.Import)
        if imports and not self.program.imports_resolved:
            for item in imports:
                self.warning(
                    f"import '{item.path}' was not resolved",
                    item.span,
                    "use parse_file(path) so imports are read relative to the file",
                )
            return
        for alias, child in self.program.imports.items():
            key = id(child)
            if key not in self.cache:
                sub = ModuleLowerer(child, self.cache)
                self.cache[key] = sub.lower()
                self.diags.extend(sub.diags)
            self.module.imports[alias] = self.cache[key]

    def _lower_item(self, item: A.Item) -> None:
        mod = self.module
        if isinstance(item, A.ModelBlock):
            for f in item.fields:
                try:
                    mod.metadata[f.key] = self.eval_or_report(f.value)
                except _Abort:
                    pass
        elif isinstance(item, A.GraphBlock):
            if item.name in mod.graphs:
                first = mod.graphs[item.name]
                self.error(
                    f"duplicate graph name '{item.name}'",
                    item.span,
                    f"a graph with this name is declared at {first.span}",
                )
                return
            mod.graphs[item.name] = GraphLowerer(self, item).lower()
        elif isinstance(item, A.TrainingBlock):
            mod.training = self._training(item)
        elif isinstance(item, A.InferenceBlock):
            mod.inference = self._inference(item)
        elif isinstance(item, A.CustomOpBlock):
            mod.custom_ops[item.name] = self._custom_op(item)
        elif isinstance(item, A.MetricsBlock):
            mod.metrics[item.name] = {t.name: self._fields(t.fields) for t in item.tracks}
        elif isinstance(item, A.LoggingBlock):
            mod.logging.update(self._fields(item.fields))
        elif isinstance(item, A.VisualizationsBlock):
            for plot in item.plots:
                mod.visualizations[plot.name] = self._fields(plot.fields)

    def _fields(self, fields: list[A.Field]) -> dict:
        out = {}
        for f in fields:
            try:
                if isinstance(f.value, A.SubBlock):
                    out[f.key] = self._fields(f.value.fields)
                else:
                    out[f.key] = self.eval_or_report(f.value)
            except _Abort:
                pass
        return out

    def _training(self, item: A.TrainingBlock) -> TrainingConfig:
        cfg = TrainingConfig(span=item.span)
        values = self._fields(item.fields)
        spans = {f.key: f.span for f in item.fields}
        for key, value in values.items():
            span = spans.get(key)
            if key == "model":
                cfg.model, cfg.model_span = str(value), span
            elif key == "loss":
                cfg.loss, cfg.loss_span = str(value), span
            elif key == "optimizer" and isinstance(value, dict):
                opt = dict(value)
                kind = opt.pop("type", "SGD")
                lr = opt.pop("lr", opt.pop("learning_rate", 0.01))
                cfg.optimizer = OptimizerConfig(str(kind), float(lr) if _isnum(lr) else 0.01, opt)
                if not _isnum(lr):
                    self.error("optimizer lr must be a number", span)
            elif key in ("lr_schedule", "grad_clip") and isinstance(value, dict):
                default = "constant" if key == "lr_schedule" else "none"
                setattr(cfg, key, {"type": value.get("type", default), **value})
            elif key == "precision":
                cfg.precision = str(value)
            elif key in ("epochs", "batch_size", "accumulation_steps"):
                if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                    setattr(cfg, key, value)
                else:
                    self.error(f"{key} must be a positive integer, got {value!r}", span)
            else:
                cfg.extra[key] = value
        return cfg

    def _inference(self, item: A.InferenceBlock) -> InferenceConfig:
        cfg = InferenceConfig(span=item.span)
        values = self._fields(item.fields)
        spans = {f.key: f.span for f in item.fields}
        for key, value in values.items():
            if key == "model":
                cfg.model, cfg.model_span = str(value), spans.get(key)
            elif key == "optimizations" and isinstance(value, list):
                cfg.optimizations = value
            elif key in ("quantization", "generation") and isinstance(value, dict):
                setattr(cfg, key, value)
            else:
                cfg.extra[key] = value
        return cfg

    def _custom_op(self, item: A.CustomOpBlock) -> CustomOp:
        op = CustomOp(item.name, span=item.span)
        for stmt in item.body:
            if isinstance(stmt, A.Signature):
                op.has_signature = True
                for p in stmt.params:
                    ty = self.lower_type(p.type)
                    op.params.append((p.name, ty, isinstance(ty, TensorType)))
                op.returns = self.lower_type(stmt.returns)
            elif isinstance(stmt, A.ImplBlock):
                op.impls[stmt.target] = self._fields(stmt.fields)
            elif isinstance(stmt, A.GradientBlock):
                grad: dict = {}
                for s in stmt.body:
                    if isinstance(s, A.ImplBlock):
                        grad.setdefault("impl", {})[s.target] = self._fields(s.fields)
                    elif isinstance(s, A.Field) and not isinstance(s.value, A.SubBlock):
                        grad[s.key] = format_expr(s.value)
                op.gradients[stmt.name] = grad
        return op


def _isnum(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class GraphLowerer:
    def __init__(self, owner: ModuleLowerer, block: A.GraphBlock) -> None:
        self.owner = owner
        self.module = owner.module
        self.block = block
        self.g = Graph(block.name, block.span)
        self.scope: dict[str, int] = {}
        self.symbols: set[str] = set()
        self.anon_counter: dict[str, int] = {}
        self.overrides: dict[str, int] = {}
        self.evaluator = Evaluator(self._resolve_const)

    # ------------------------------------------------------------------ helpers

    def _resolve_const(self, name: str, span: Span):
        if name in self.scope or name in self.overrides:
            raise EvalError(f"'{name}' is a graph value, not a constant", span)
        return self.owner._resolve_config(name, span)

    def _collect_symbols(self, ty: Type) -> None:
        stack: list = [ty]
        while stack:
            t = stack.pop()
            if isinstance(t, TensorType):
                dims = list(t.dims)
                while dims:
                    d = dims.pop()
                    if isinstance(d, Symbolic):
                        self.symbols.add(d.name)
                    elif hasattr(d, "left"):
                        dims.extend([d.left, d.right])
            elif isinstance(t, TupleType):
                stack.extend(t.items)
            elif isinstance(t, ListType):
                stack.append(t.item)

    def declare(self, name: str, node_id: int) -> None:
        if name not in self.scope:
            self.scope[name] = node_id

    def anon_name(self, owner: str) -> str:
        k = self.anon_counter.get(owner, 0) + 1
        self.anon_counter[owner] = k
        return f"{owner}.{k}"

    def new_node(self, owner: str, op: str, inputs, attrs, span) -> int:
        return self.g.add_node(self.anon_name(owner), op, inputs, attrs, span).id

    # ------------------------------------------------------------------ graph

    def lower(self) -> Graph:
        g, block, owner = self.g, self.block, self.owner
        body_inputs = {s.name for s in block.body if isinstance(s, A.InputDecl)}
        for alias_ty in self.module.type_aliases.values():
            self._collect_symbols(alias_ty)
        # Signature parameters that the body does not declare become inputs (the
        # original dropped them, leaving such graphs without inputs).
        for p in block.params or []:
            ty = owner.lower_type(p.type)
            self._collect_symbols(ty)
            if p.name in body_inputs:
                continue
            node = g.add_node(p.name, "input", [], {}, p.span, ty)
            node.declared_type = ty
            g.inputs.append(node.id)
            if p.optional:
                g.optional_inputs.add(node.id)
            self.declare(p.name, node.id)
        if block.returns is not None:
            g.declared_return = owner.lower_type(block.returns)
            g.return_span = block.returns.span
            self._collect_symbols(g.declared_return)
        pending: list[tuple[A.Stmt, int]] = []
        for stmt in block.body:
            if isinstance(stmt, A.InputDecl):
                ty = owner.lower_type(stmt.type)
                self._collect_symbols(ty)
                node = g.add_node(stmt.name, "input", [], {}, stmt.span, ty)
                node.declared_type = ty
                g.inputs.append(node.id)
                if stmt.optional:
                    g.optional_inputs.add(node.id)
                self.declare(stmt.name, node.id)
            elif isinstance(stmt, A.ParamDecl):
                ty = owner.lower_type(stmt.type)
                self._collect_symbols(ty)
                node = g.add_node(stmt.name, "param", [], {}, stmt.span, ty)
                node.declared_type = ty
                g.params.append(self._param(stmt, node.id, ty))
                self.declare(stmt.name, node.id)
            elif isinstance(stmt, A.NodeDecl):
                node = g.add_node(stmt.name, "identity", [], {}, stmt.span)
                self.declare(stmt.name, node.id)
                pending.append((stmt, node.id))
            elif isinstance(stmt, A.OutputDecl):
                pending.append((stmt, -1))
        for stmt, _ in pending:
            if isinstance(stmt, A.NodeDecl):
                for s in stmt.body or []:
                    ty = s.type if isinstance(s, A.NodeOutputStmt) else None
                    if ty is not None:
                        self._collect_symbols(owner.lower_type(ty))
                if stmt.type is not None:
                    self._collect_symbols(owner.lower_type(stmt.type))
        # Explicitly named outputs with a computed expression are declared too.
        for stmt, _ in pending:
            if isinstance(stmt, A.OutputDecl) and stmt.name is not None:
                if not (isinstance(stmt.expr, A.Name) and stmt.expr.text in self.scope):
                    node = g.add_node(stmt.name, "identity", [], {}, stmt.span)
                    self.declare(stmt.name, node.id)
                    stmt_id = node.id
                    pending[pending.index((stmt, -1))] = (stmt, stmt_id)
        for stmt, node_id in pending:
            try:
                if isinstance(stmt, A.NodeDecl):
                    self._node(stmt, g.nodes[node_id])
                else:
                    self._output(stmt, node_id)
            except _Abort:
                pass
        for stmt in block.body:
            if isinstance(stmt, A.AssertStmt):
                g.asserts.append(
                    Assertion(stmt.expr, format_expr(stmt.expr), stmt.message, stmt.span)
                )
            elif isinstance(stmt, A.CheckBlock):
                for a in stmt.asserts:
                    g.asserts.append(
                        Assertion(a.expr, format_expr(a.expr), a.message, a.span, stmt.name)
                    )
        return g

    def _param(self, stmt: A.ParamDecl, node_id: int, ty: Type) -> Param:
        param = Param(stmt.name, node_id, ty, InitSpec("zeros"), False, {}, stmt.span)
        for f in stmt.fields or []:
            if isinstance(f.value, A.SubBlock):
                self.owner.error(f"param attribute '{f.key}' cannot be a block", f.span)
                continue
            try:
                value = self.owner.eval_or_report(f.value, self.evaluator)
            except _Abort:
                continue
            if f.key == "init":
                if not isinstance(value, str):
                    self.owner.error(
                        f"init must be a string, got {value!r}",
                        f.value.span,
                        'e.g. init: "xavier_uniform"; or init: "normal(0, 0.02)";',
                    )
                    continue
                spec, problem = parse_init(value)
                if problem:
                    self.owner.error(f"invalid init '{value}': {problem}", f.value.span)
                param.init = spec
                param.attrs["init_span"] = f.value.span
            elif f.key == "frozen":
                if not isinstance(value, bool):
                    self.owner.error(f"frozen must be true or false, got {value!r}", f.value.span)
                    continue
                param.frozen = value
            else:
                param.attrs[f.key] = value
        return param

    def _node(self, stmt: A.NodeDecl, node) -> None:
        owner = self.owner
        op_stmt = None
        input_stmt = None
        field_attrs: dict = {}
        declared = owner.lower_type(stmt.type) if stmt.type is not None else None
        for s in stmt.body or []:
            if isinstance(s, A.OpStmt):
                if op_stmt is not None:
                    owner.error(f"node '{stmt.name}' has more than one op", s.span,
                                "keep a single 'op:' line")
                    continue
                op_stmt = s
            elif isinstance(s, A.HintStmt):
                node.hints.append(s.name)
            elif isinstance(s, A.NodeInputStmt):
                input_stmt = s
            elif isinstance(s, A.NodeOutputStmt):
                declared = owner.lower_type(s.type)
            elif isinstance(s, A.AssertStmt):
                self.g.asserts.append(Assertion(s.expr, format_expr(s.expr), s.message, s.span))
            elif isinstance(s, A.Field):
                if isinstance(s.value, A.SubBlock):
                    owner.error(f"node attribute '{s.key}' cannot be a block", s.span)
                    continue
                try:
                    field_attrs[s.key] = owner.eval_or_report(s.value, self.evaluator)
                except _Abort:
                    pass
        node.declared_type = declared
        if op_stmt is None and input_stmt is not None:
            op_stmt = A.OpStmt(input_stmt.expr, input_stmt.span)
        if op_stmt is None:
            owner.error(
                f"node '{stmt.name}' has no op",
                stmt.span,
                f"add a line such as: node {stmt.name} {{ op: relu(x); }};",
            )
            node.op = "undefined"
            node.attrs = {"name": stmt.name}
            return
        self.lower_into(node, op_stmt.expr)
        for key, value in field_attrs.items():
            if key in node.attrs:
                owner.error(f"attribute '{key}' of node '{stmt.name}' is given twice", stmt.span)
            node.attrs[key] = value
        if node.hints:
            for nid in node.meta.get("unrolled", []):
                self.g.nodes[nid].hints = list(node.hints)

    def _output(self, stmt: A.OutputDecl, node_id: int) -> None:
        g = self.g
        expr = stmt.expr
        if isinstance(expr, A.Name) and expr.text in self.scope and node_id < 0:
            g.outputs.append(Output(stmt.name or expr.text, self.scope[expr.text], stmt.span))
            return
        if node_id < 0:
            name = stmt.name or f"__output_{len(g.outputs)}"
            node = g.add_node(name, "identity", [], {}, stmt.span)
        else:
            node = g.nodes[node_id]
        self.lower_into(node, expr)
        g.outputs.append(Output(node.name, node.id, stmt.span))

    # ------------------------------------------------------------------ expressions

    def lower_value(self, expr: A.Expr, owner: str) -> int:
        """Lower `expr` to a node id (an existing node for a name in scope)."""
        while isinstance(expr, A.Paren):
            expr = expr.inner
        if isinstance(expr, A.Name):
            found = self._lookup(expr)
            if found is not None:
                return found
        node = self.g.add_node(self.anon_name(owner), "identity", [], {}, _span(expr))
        self.lower_into(node, expr, owner)
        return node.id

    def _lookup(self, expr: A.Name) -> int | None:
        text = expr.text
        if text in self.overrides:
            return self.overrides[text]
        return self.scope.get(text)

    def _is_constant(self, expr: A.Expr, symbols_ok: bool = False) -> bool:
        """Whether expr can be evaluated now (symbolic dim names count as constants
        only when symbols_ok, for attributes such as reshape's shape)."""
        stack = [expr]
        while stack:
            e = stack.pop()
            if isinstance(e, A.Name):
                t = e.text
                if symbols_ok and t in self.symbols and t not in self.scope:
                    continue
                if t in self.scope or t in self.overrides or t in self.symbols:
                    return False
                try:
                    if self.owner._resolve_config(t, e.span) is UNBOUND:
                        return False
                except EvalError:
                    return False
            elif isinstance(e, (A.IntLit, A.FloatLit, A.StrLit, A.BoolLit, A.NullLit)):
                pass
            elif isinstance(e, A.Paren):
                stack.append(e.inner)
            elif isinstance(e, A.Unary):
                stack.append(e.operand)
            elif isinstance(e, A.Binary):
                stack.extend([e.left, e.right])
            elif isinstance(e, A.ListExpr):
                stack.extend(e.items)
            else:
                return False
        return True

    def lower_into(self, node, expr: A.Expr, owner: str | None = None) -> None:
        """Make `node` compute `expr` (sub-expressions become anonymous nodes)."""
        owner = owner or node.name
        while isinstance(expr, A.Paren):
            expr = expr.inner
        node.span = node.span or _span(expr)
        if self._is_constant(expr) and not isinstance(expr, A.Name):
            try:
                value = self.evaluator.eval(expr)
            except EvalError as exc:
                self.owner.error(exc.message, exc.span, exc.hint)
                raise _Abort() from None
            node.op, node.inputs, node.attrs = "constant", [], {"value": value}
            return
        if isinstance(expr, A.Name):
            self._name_into(node, expr)
        elif isinstance(expr, A.Binary):
            a = self.lower_value(expr.left, owner)
            b = self.lower_value(expr.right, owner)
            node.op, node.inputs, node.attrs = INFIX_OPS[expr.op], [a, b], {}
            node.span = expr.span if node.name.startswith(owner + ".") else node.span
        elif isinstance(expr, A.Unary):
            x = self.lower_value(expr.operand, owner)
            node.op, node.inputs, node.attrs = PREFIX_OPS[expr.op], [x], {}
        elif isinstance(expr, A.Call):
            self._call_into(node, expr, owner)
        elif isinstance(expr, A.RepeatExpr):
            self._repeat_into(node, expr, owner)
        elif isinstance(expr, A.IfExpr):
            self._if_into(node, expr, owner)
        elif isinstance(expr, A.Index):
            self._index_into(node, expr, owner)
        elif isinstance(expr, A.Slice):
            attrs = {"dim": 0, "start": 0, "end": None, "step": 1}
            if expr.start is not None:
                attrs["start"] = self._const_attr(expr.start, "start")
            if expr.stop is not None:
                attrs["end"] = self._const_attr(expr.stop, "end")
            node.op, node.inputs, node.attrs = "slice", [self.lower_value(expr.obj, owner)], attrs
        elif isinstance(expr, A.RangeExpr):
            a = self.lower_value(expr.start, owner)
            b = self.lower_value(expr.end, owner)
            node.op, node.inputs, node.attrs = "range", [a, b], {}
        elif isinstance(expr, A.Member) and isinstance(expr.obj, A.Name):
            self._name_into(node, A.Name(expr.obj.parts + (expr.name,), expr.span))
        else:
            what = {
                "ListExpr": "a list of graph values",
                "DictExpr": "a dict",
                "Closure": "a closure",
                "Member": "member access",
            }.get(type(expr).__name__, type(expr).__name__)
            hint = (
                "lists of tensors are only allowed as the argument of concat/stack"
                if isinstance(expr, A.ListExpr)
                else "graph expressions are op calls, operators, names and literals"
            )
            self.owner.error(f"{what} cannot be used as a graph value", _span(expr), hint)
            raise _Abort()

    def _name_into(self, node, expr: A.Name) -> None:
        text = expr.text
        found = self._lookup(expr)
        if found is not None:
            node.op, node.inputs, node.attrs = "identity", [found], {}
            return
        value = self.owner._resolve_config(text, expr.span)
        if value is not UNBOUND:
            node.op, node.inputs, node.attrs = "constant", [], {"value": value}
            node.meta["config"] = text
            return
        if text in self.symbols:
            node.op, node.inputs, node.attrs = "dim", [], {"name": text}
            return
        node.op, node.inputs, node.attrs = "undefined", [], {"name": text}
        node.span = expr.span

    def _const_attr(self, expr: A.Expr, name: str):
        try:
            return self.evaluator.eval(expr)
        except EvalError as exc:
            self.owner.error(
                f"attribute '{name}' must be a compile-time constant: {exc.message}",
                exc.span,
                "use a literal or a @config name",
            )
            raise _Abort() from None

    def _callee(self, expr: A.Call) -> tuple[str | None, list[A.Expr]]:
        callee = expr.callee
        if isinstance(callee, A.Name):
            return callee.text, []
        if isinstance(callee, A.Member):
            if isinstance(callee.obj, A.Name) and callee.obj.text in self.module.imports:
                return f"{callee.obj.text}::{callee.name}", []
            return callee.name, [callee.obj]  # method call: x.f(a) is f(x, a)
        return None, []

    def _call_into(self, node, expr: A.Call, owner: str) -> None:
        name, receiver = self._callee(expr)
        if name is None:
            self.owner.error("only named functions can be called", expr.span)
            raise _Abort()
        positional = receiver + [a.value for a in expr.args if a.name is None]
        named = [a for a in expr.args if a.name is not None]
        graph_target = self._graph_target(name)
        op = None if expr.explicit else O.lookup(name)
        if expr.explicit or (op is None and graph_target is not None):
            inputs = [self.lower_value(e, owner) for e in positional]
            for a in named:
                self.owner.error(
                    "graph calls take positional arguments only", a.span,
                    "arguments bind to the called graph's inputs in order",
                )
            node.op, node.inputs, node.attrs = "call", inputs, {"graph": name}
            return
        if op is None:
            custom = self._custom_target(name)
            attrs = {a.name: self._const_attr(a.value, a.name) for a in named}
            inputs = [self.lower_value(e, owner) for e in positional]
            if custom is not None:
                node.op, node.inputs = "custom", inputs
                node.attrs = {"name": name, "attrs": attrs}
            else:
                node.op, node.inputs, node.attrs = name, inputs, attrs  # reported by validate
            return
        # A built-in op wins over a @custom_op of the same name (validation warns).
        input_names = [n.rstrip("?*") for n in op.inputs]
        variadic = op.max_inputs < 0
        inputs: list[int] = []
        attrs: dict = {}
        attr_order = [k for k in op.attrs]
        extra_attr_index = 0
        for e in positional:
            if variadic and isinstance(e, A.ListExpr) and not self._is_constant(e):
                inputs.extend(self.lower_value(item, owner) for item in e.items)
                continue
            if (
                not variadic
                and len(inputs) >= op.max_inputs
                and self._is_constant(e, symbols_ok=True)
            ):
                while extra_attr_index < len(attr_order) and attr_order[extra_attr_index] in attrs:
                    extra_attr_index += 1
                if extra_attr_index < len(attr_order):
                    key = attr_order[extra_attr_index]
                    attrs[key] = self._const_attr(e, key)
                    continue
            inputs.append(self.lower_value(e, owner))
        for a in named:
            if a.name in input_names and a.name not in op.attrs:
                index = input_names.index(a.name)
                if index != len(inputs):
                    self.owner.error(
                        f"{op.name}: input '{a.name}' given by name out of order",
                        a.span,
                        f"inputs are ({', '.join(op.inputs)}); pass earlier ones first",
                    )
                    raise _Abort()
                inputs.append(self.lower_value(a.value, owner))
            else:
                if a.name in attrs:
                    self.owner.error(f"{op.name}: attribute '{a.name}' given twice", a.span)
                attrs[a.name] = self._const_attr(a.value, a.name)
        node.op, node.inputs, node.attrs = op.name, inputs, attrs

    def _graph_target(self, name: str) -> str | None:
        if name in self.module.graphs or name in {
            b.name for b in self.owner.program.graphs
        }:
            return name
        if "::" in name:
            alias, _, gname = name.partition("::")
            imported = self.module.imports.get(alias)
            if imported is not None and gname in imported.graphs:
                return name
        return None

    def _custom_target(self, name: str):
        mod = self.module
        if name in mod.custom_ops or name in {
            b.name for b in self.owner.program.of_type(A.CustomOpBlock)
        }:
            return name
        if "::" in name:
            alias, _, op = name.partition("::")
            imported = mod.imports.get(alias)
            if imported is not None and op in imported.custom_ops:
                return name
        return None

    def _repeat_into(self, node, expr: A.RepeatExpr, owner: str) -> None:
        count = self._const_attr(expr.count, "repeat count")
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            self.owner.error(
                f"repeat count must be a non-negative integer, got {count!r}",
                _span(expr.count),
                "use an integer literal or an integer @config value",
            )
            raise _Abort()
        carried = self._carried_name(expr.body)
        if carried is None:
            self.owner.error(
                "repeat body must use a graph value to carry between iterations",
                _span(expr.body),
                "e.g. repeat(4) { transformer_block(h, n_heads: 4) } carries h",
            )
            raise _Abort()
        if count == 0:
            self._name_into(node, carried)
            return
        previous = self._lookup(carried)
        unrolled: list[int] = []
        saved = dict(self.overrides)
        try:
            for i in range(count):
                self.overrides[carried.text] = previous
                if i == count - 1:
                    self.lower_into(node, expr.body, owner)
                    previous = node.id
                else:
                    previous = self.lower_value(expr.body, owner)
                    self.g.nodes[previous].meta["repeat_index"] = i
                    unrolled.append(previous)
        finally:
            self.overrides = saved
        node.meta["repeat_index"] = count - 1
        node.meta["unrolled"] = unrolled

    def _carried_name(self, body: A.Expr) -> A.Name | None:
        stack = [body]
        while stack:
            e = stack.pop()
            if isinstance(e, A.Name):
                if self._lookup(e) is not None:
                    return e
                continue
            children: list = []
            if isinstance(e, A.Call):
                children = [a.value for a in e.args if a.name is None]
                if isinstance(e.callee, A.Member):
                    children.insert(0, e.callee.obj)
            elif isinstance(e, A.Binary):
                children = [e.left, e.right]
            elif isinstance(e, (A.Unary,)):
                children = [e.operand]
            elif isinstance(e, A.Paren):
                children = [e.inner]
            stack.extend(reversed(children))
        return None

    def _if_into(self, node, expr: A.IfExpr, owner: str) -> None:
        if self._is_constant(expr.cond):
            cond = self._const_attr(expr.cond, "if condition")
            if not isinstance(cond, bool):
                self.owner.error(f"if condition must be a bool, got {cond!r}", _span(expr.cond))
                raise _Abort()
            branch = expr.then if cond else expr.otherwise
            if branch is None:
                self.owner.error("if without else has no value when the condition is false",
                                 expr.span, "add an else branch")
                raise _Abort()
            self.lower_into(node, branch, owner)
            return
        if expr.otherwise is None:
            self.owner.error("a data-dependent if needs an else branch", expr.span)
            raise _Abort()
        c = self.lower_value(expr.cond, owner)
        a = self.lower_value(expr.then, owner)
        b = self.lower_value(expr.otherwise, owner)
        node.op, node.inputs, node.attrs = "where", [c, a, b], {}

    def _index_into(self, node, expr: A.Index, owner: str) -> None:
        index = self._const_attr(expr.index, "index")
        if not isinstance(index, int) or isinstance(index, bool):
            self.owner.error(f"index must be an integer, got {index!r}", _span(expr.index))
            raise _Abort()
        x = self.lower_value(expr.obj, owner)
        node.op, node.inputs, node.attrs = "index", [x], {"index": index, "dim": 0}


def _span(expr) -> Span | None:
    return getattr(expr, "span", None)


def lower(program: A.Program) -> IRModule:
    """Lower a parsed Program to an IRModule; raise LoweringError listing every problem."""
    lowerer = ModuleLowerer(program)
    module = lowerer.lower()
    errors = [d for d in lowerer.diags if d.is_error]
    if errors:
        first = errors[0]
        raise LoweringError(first.message, first.span, first.hint, diagnostics=errors)
    return module
