"""Pretty-printer: ast.Program -> canonical .sw source.

Owns formatting only. `parse(format_program(p)) == p` holds for every parsed
program (spans excluded); parentheses are added where precedence requires
them, so hand-built ASTs print correctly too.
"""

from __future__ import annotations

from . import ast as A
from .parser import BINARY_PRECEDENCE, UNARY_PRECEDENCE

INDENT = "    "


def _float(value: float) -> str:
    if value != value:
        return "nan"
    text = repr(float(value))
    if "inf" in text:
        return "1e999"
    if "." not in text and "e" not in text:
        text += ".0"
    if "e" in text and "." not in text.split("e")[0]:
        mantissa, exp = text.split("e")
        text = f"{mantissa}.0e{exp}"
    return text


def _string(value: str) -> str:
    out = ['"']
    for ch in value:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\0":
            out.append("\\0")
        elif ord(ch) < 32:
            out.append(f"\\u{{{ord(ch):x}}}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _prec(expr: A.Expr) -> int:
    if isinstance(expr, A.RangeExpr):
        return 0
    if isinstance(expr, A.Binary):
        return BINARY_PRECEDENCE[expr.op]
    if isinstance(expr, A.Unary):
        return UNARY_PRECEDENCE
    return 100


def format_expr(expr: A.Expr) -> str:
    """Format one expression (iteratively safe for the depths the parser accepts)."""
    if isinstance(expr, A.IntLit):
        return str(expr.value)
    if isinstance(expr, A.FloatLit):
        return _float(expr.value)
    if isinstance(expr, A.StrLit):
        return _string(expr.value)
    if isinstance(expr, A.BoolLit):
        return "true" if expr.value else "false"
    if isinstance(expr, A.NullLit):
        return "null"
    if isinstance(expr, A.Name):
        return expr.text
    if isinstance(expr, A.Paren):
        return f"({format_expr(expr.inner)})"
    if isinstance(expr, A.Unary):
        inner = format_expr(expr.operand)
        if _prec(expr.operand) < UNARY_PRECEDENCE:
            inner = f"({inner})"
        return f"{expr.op}{inner}"
    if isinstance(expr, A.Binary):
        prec = BINARY_PRECEDENCE[expr.op]
        left, right = format_expr(expr.left), format_expr(expr.right)
        right_assoc = expr.op == "**"
        lp, rp = _prec(expr.left), _prec(expr.right)
        if lp < prec or (right_assoc and lp == prec) or (
            right_assoc and isinstance(expr.left, A.Unary)
        ):
            left = f"({left})"
        if rp < prec or (not right_assoc and rp == prec):
            if not (right_assoc and isinstance(expr.right, A.Unary)):
                right = f"({right})"
        return f"{left} {expr.op} {right}"
    if isinstance(expr, A.RangeExpr):
        start, end = format_expr(expr.start), format_expr(expr.end)
        if _prec(expr.start) == 0:
            start = f"({start})"
        if _prec(expr.end) == 0:
            end = f"({end})"
        return f"{start}..{end}"
    if isinstance(expr, A.Call):
        callee = _postfix_target(expr.callee)
        prefix = "call " if expr.explicit else ""
        return f"{prefix}{callee}({_args(expr.args)})"
    if isinstance(expr, A.Member):
        return f"{_postfix_target(expr.obj)}.{expr.name}"
    if isinstance(expr, A.Index):
        return f"{_postfix_target(expr.obj)}[{format_expr(expr.index)}]"
    if isinstance(expr, A.Slice):
        start = format_expr(expr.start) if expr.start is not None else ""
        stop = format_expr(expr.stop) if expr.stop is not None else ""
        return f"{_postfix_target(expr.obj)}[{start}:{stop}]"
    if isinstance(expr, A.ListExpr):
        return "[" + ", ".join(format_expr(e) for e in expr.items) + "]"
    if isinstance(expr, A.DictExpr):
        if not expr.entries:
            return "{}"
        body = ", ".join(f"{_key(k)}: {format_expr(v)}" for k, v in expr.entries)
        return "{ " + body + " }"
    if isinstance(expr, A.IfExpr):
        text = f"if {format_expr(expr.cond)} {{ {format_expr(expr.then)} }}"
        if expr.otherwise is not None:
            if isinstance(expr.otherwise, A.IfExpr):
                text += f" else {format_expr(expr.otherwise)}"
            else:
                text += f" else {{ {format_expr(expr.otherwise)} }}"
        return text
    if isinstance(expr, A.RepeatExpr):
        return f"repeat({format_expr(expr.count)}) {{ {format_expr(expr.body)} }}"
    if isinstance(expr, A.Closure):
        if not expr.params:
            return f"|| {{ {format_expr(expr.body)} }}"
        return f"|{', '.join(expr.params)}| {{ {format_expr(expr.body)} }}"
    raise TypeError(f"cannot format {type(expr).__name__}")


def _postfix_target(expr: A.Expr) -> str:
    text = format_expr(expr)
    if _prec(expr) < 100:
        return f"({text})"
    return text


def _args(args: list[A.Arg]) -> str:
    parts = []
    for arg in args:
        value = format_expr(arg.value)
        parts.append(f"{arg.name}: {value}" if arg.name else value)
    return ", ".join(parts)


def _key(key: str) -> str:
    from .tokens import classify_word

    if key and classify_word(key) in ("IDENT", "KEYWORD") and key.isidentifier():
        return key
    return _string(key)


def format_dim(dim: A.Dim) -> str:
    if isinstance(dim, A.DimInt):
        return str(dim.value)
    if isinstance(dim, A.DimName):
        return dim.name
    if isinstance(dim, A.DimDynamic):
        return dim.text
    if isinstance(dim, A.DimParen):
        return f"({format_dim(dim.inner)})"
    if isinstance(dim, A.DimBinary):
        left, right = format_dim(dim.left), format_dim(dim.right)
        mul = dim.op in "*/%"
        if mul and isinstance(dim.left, A.DimBinary) and dim.left.op in "+-":
            left = f"({left})"
        if isinstance(dim.right, A.DimBinary) and (mul or dim.right.op in "+-"):
            right = f"({right})"
        return f"{left} {dim.op} {right}"
    raise TypeError(f"cannot format {type(dim).__name__}")


def format_type(ty: A.TypeExpr) -> str:
    if isinstance(ty, A.TensorTypeExpr):
        return f"Tensor<[{', '.join(format_dim(d) for d in ty.dims)}], {ty.dtype}>"
    if isinstance(ty, A.ScalarTypeExpr):
        return ty.dtype
    if isinstance(ty, A.IntDimTypeExpr):
        return str(ty.value)
    if isinstance(ty, A.DynamicTypeExpr):
        return "?"
    if isinstance(ty, A.NamedTypeExpr):
        return ty.name
    if isinstance(ty, A.TupleTypeExpr):
        return "(" + ", ".join(format_type(t) for t in ty.items) + ")"
    if isinstance(ty, A.ListTypeExpr):
        return f"[{format_type(ty.item)}]"
    if isinstance(ty, A.DictTypeExpr):
        return "{" + ", ".join(f"{k}: {format_type(t)}" for k, t in ty.entries) + "}"
    raise TypeError(f"cannot format {type(ty).__name__}")


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.level = 0

    def line(self, text: str = "") -> None:
        self.lines.append(INDENT * self.level + text if text else "")

    def fields(self, fields: list[A.Field]) -> None:
        for f in fields:
            if isinstance(f.value, A.SubBlock):
                self.line(f"{_key(f.key)}: {{")
                self.level += 1
                self.fields(f.value.fields)
                self.level -= 1
                self.line("}")
            else:
                self.line(f"{_key(f.key)}: {format_expr(f.value)};")

    def block(self, header: str, body) -> None:
        self.line(header + " {")
        self.level += 1
        body()
        self.level -= 1
        self.line("}")


def _params(params: list[A.ParamDef]) -> str:
    return ", ".join(
        f"{p.name}: {format_type(p.type)}{'?' if p.optional else ''}" for p in params
    )


def _graph_stmt(w: _Writer, stmt: A.Stmt) -> None:
    if isinstance(stmt, A.InputDecl):
        w.line(f"input {stmt.name}: {format_type(stmt.type)}{'?' if stmt.optional else ''};")
    elif isinstance(stmt, A.OutputDecl):
        name = f"{stmt.name}: " if stmt.name else ""
        w.line(f"output {name}{format_expr(stmt.expr)};")
    elif isinstance(stmt, A.ParamDecl):
        head = f"param {stmt.name}: {format_type(stmt.type)}"
        if stmt.fields is None:
            w.line(head + ";")
        else:
            w.line(head + " {")
            w.level += 1
            w.fields(stmt.fields)
            w.level -= 1
            w.line("};")
    elif isinstance(stmt, A.NodeDecl):
        head = f"node {stmt.name}"
        if stmt.type is not None:
            head += f": {format_type(stmt.type)}"
        elif stmt.colon:
            head += ":"
        if stmt.body is None:
            w.line(head + ";")
        else:
            w.line(head + " {")
            w.level += 1
            for s in stmt.body:
                _node_stmt(w, s)
            w.level -= 1
            w.line("};")
    elif isinstance(stmt, A.AssertStmt):
        w.line(_assert("@assert", stmt))
    elif isinstance(stmt, A.CheckBlock):
        w.line(f"@check {stmt.name} {{")
        w.level += 1
        for a in stmt.asserts:
            w.line(_assert("assert", a))
        w.level -= 1
        w.line("}")
    else:
        raise TypeError(f"cannot format {type(stmt).__name__}")


def _assert(keyword: str, stmt: A.AssertStmt) -> str:
    msg = f", {_string(stmt.message)}" if stmt.message is not None else ""
    return f"{keyword} {format_expr(stmt.expr)}{msg};"


def _node_stmt(w: _Writer, stmt) -> None:
    if isinstance(stmt, A.OpStmt):
        w.line(f"op: {format_expr(stmt.expr)};")
    elif isinstance(stmt, A.HintStmt):
        w.line(f"@hint {stmt.name};")
    elif isinstance(stmt, A.NodeInputStmt):
        w.line(f"input: {format_expr(stmt.expr)};")
    elif isinstance(stmt, A.NodeOutputStmt):
        w.line(f"output: {format_type(stmt.type)};")
    elif isinstance(stmt, A.AssertStmt):
        w.line(_assert("@assert", stmt))
    elif isinstance(stmt, A.Field):
        w.fields([stmt])
    else:
        raise TypeError(f"cannot format {type(stmt).__name__}")


def _custom_stmt(w: _Writer, stmt) -> None:
    if isinstance(stmt, A.Signature):
        w.line(f"signature: ({_params(stmt.params)}) -> {format_type(stmt.returns)};")
    elif isinstance(stmt, A.ImplBlock):
        w.block(f"impl {stmt.target}", lambda: w.fields(stmt.fields))
    elif isinstance(stmt, A.GradientBlock):
        w.block(f"gradient {stmt.name}", lambda: [_custom_stmt(w, s) for s in stmt.body])
    elif isinstance(stmt, A.Field):
        w.fields([stmt])
    else:
        raise TypeError(f"cannot format {type(stmt).__name__}")


def format_program(program: A.Program) -> str:
    """Return canonical source text for `program`."""
    w = _Writer()
    for index, item in enumerate(program.items):
        if index:
            w.line()
        if isinstance(item, A.Import):
            alias = f" as {item.alias}" if item.alias else ""
            w.line(f"@import {_string(item.path)}{alias};")
        elif isinstance(item, A.ModelBlock):
            w.block("@model", lambda item=item: w.fields(item.fields))
        elif isinstance(item, A.ConfigBlock):
            w.block("@config", lambda item=item: w.fields(item.fields))
        elif isinstance(item, A.TypesBlock):
            w.block(
                "@types",
                lambda item=item: [
                    w.line(f"type {d.name} = {format_type(d.type)};") for d in item.defs
                ],
            )
        elif isinstance(item, A.GraphBlock):
            head = f"@graph {item.name}"
            if item.params is not None:
                head += f"({_params(item.params)})"
            if item.returns is not None:
                head += f" -> {format_type(item.returns)}"
            w.block(head, lambda item=item: [_graph_stmt(w, s) for s in item.body])
        elif isinstance(item, A.CustomOpBlock):
            w.block(
                f"@custom_op {item.name}", lambda item=item: [_custom_stmt(w, s) for s in item.body]
            )
        elif isinstance(item, A.TrainingBlock):
            w.block("@training", lambda item=item: w.fields(item.fields))
        elif isinstance(item, A.InferenceBlock):
            w.block("@inference", lambda item=item: w.fields(item.fields))
        elif isinstance(item, A.MetricsBlock):
            w.block(
                f"@metrics {item.name}",
                lambda item=item: [
                    w.block(f"track {t.name}", lambda t=t: w.fields(t.fields)) for t in item.tracks
                ],
            )
        elif isinstance(item, A.LoggingBlock):
            w.block("@logging", lambda item=item: w.fields(item.fields))
        elif isinstance(item, A.VisualizationsBlock):
            w.block(
                "@visualizations",
                lambda item=item: [
                    w.block(f"plot {p.name}", lambda p=p: w.fields(p.fields)) for p in item.plots
                ],
            )
        else:
            raise TypeError(f"cannot format {type(item).__name__}")
    return "\n".join(w.lines) + "\n"
