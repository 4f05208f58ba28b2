"""The .sw parser: tokens -> ast.Program, with error recovery.

Owns the grammar (recursive descent for items and statements, precedence
climbing for expressions). On a syntax error the parser records a diagnostic,
skips to a synchronisation point (the next `;` or `}` of the current block, or
the next top-level directive) and continues, so one run reports every error.
Nesting is bounded (MAX_DEPTH) so hostile input gives a ParseError, never a
RecursionError.
"""

from __future__ import annotations

from pathlib import Path

from . import ast as A
from .errors import ERROR, Diagnostic, ParseError, Source, Span
from .lexer import Lexer
from .tokens import Token

MAX_DEPTH = 100
MAX_CHAIN = 250  # operators chained in one expression (bounds tree depth downstream)
MAX_ERRORS = 50

TOP_LEVEL = frozenset(
    "import model config types graph custom_op training inference metrics logging "
    "visualizations".split()
)

# Binary operators: text -> (precedence, right_associative).
BINARY_PRECEDENCE = {
    "??": 1,
    "||": 2,
    "&&": 3,
    "|": 4,
    "^": 5,
    "&": 6,
    "==": 7,
    "!=": 7,
    "<": 8,
    ">": 8,
    "<=": 8,
    ">=": 8,
    "<<": 9,
    ">>": 9,
    "+": 10,
    "-": 10,
    "*": 11,
    "/": 11,
    "%": 11,
    "@": 11,
    "**": 12,
}
UNARY_PRECEDENCE = 12  # `-x ** 2` is `-(x ** 2)`; `2 ** -1` is allowed
SUB_BLOCK_KEYS = frozenset(["optimizer", "lr_schedule", "grad_clip", "quantization", "generation"])


class _Fail(Exception):
    """Internal: unwinds to the nearest recovery point (the diagnostic is already recorded)."""


class Parser:
    def __init__(self, tokens: list[Token], source: Source) -> None:
        self.tokens = tokens
        self.source = source
        self.pos = 0
        self.depth = 0
        self.diagnostics: list[Diagnostic] = []
        self._error_positions: set[tuple[int, int]] = set()

    # ------------------------------------------------------------------ token helpers

    @property
    def tok(self) -> Token:
        return self.tokens[self.pos]

    def peek(self, offset: int = 1) -> Token:
        index = min(self.pos + offset, len(self.tokens) - 1)
        return self.tokens[index]

    def advance(self) -> Token:
        tok = self.tokens[self.pos]
        if tok.kind != "EOF":
            self.pos += 1
        return tok

    def at(self, kind: str) -> bool:
        return self.tokens[self.pos].kind == kind

    def at_word(self, word: str) -> bool:
        tok = self.tokens[self.pos]
        return tok.kind in ("IDENT", "KEYWORD") and tok.text == word

    def at_directive(self, name: str | None = None) -> bool:
        tok = self.tokens[self.pos]
        return tok.kind == "DIRECTIVE" and (name is None or tok.value == name)

    def accept(self, kind: str) -> Token | None:
        if self.tokens[self.pos].kind == kind:
            return self.advance()
        return None

    def error(self, message: str, span: Span | None = None, hint: str | None = None) -> _Fail:
        span = span or self.tok.span
        key = (span.line, span.column)
        if key not in self._error_positions:
            self._error_positions.add(key)
            self.diagnostics.append(Diagnostic(ERROR, message, span, hint, code="syntax"))
        if len(self.diagnostics) >= MAX_ERRORS:
            raise _TooMany()
        return _Fail()

    def expected(self, what: str, hint: str | None = None) -> _Fail:
        return self.error(f"expected {what}, got {self.tok.describe()}", self.tok.span, hint)

    def expect(self, kind: str, hint: str | None = None) -> Token:
        if self.tokens[self.pos].kind == kind:
            return self.advance()
        if hint is None and kind == ";":
            hint = "add ';' at the end of the statement"
        raise self.expected(f"'{kind}'", hint)

    def expect_semi_after(self, what: str) -> Token:
        if self.at(";"):
            return self.advance()
        raise self.error(
            f"expected ';' after {what}, got {self.tok.describe()}", self.tok.span, "add ';'"
        )

    def name(self, what: str = "a name") -> Token:
        tok = self.tok
        if tok.kind in ("IDENT", "KEYWORD"):
            return self.advance()
        hint = None
        if tok.kind in ("DTYPE", "TENSOR", "TRUE", "FALSE", "NULL"):
            hint = f"'{tok.text}' is reserved and cannot be used as a name"
        raise self.expected(what, hint)

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(
                "expression nested too deeply", self.tok.span, f"the limit is {MAX_DEPTH} levels"
            )

    def leave(self) -> None:
        self.depth -= 1

    # ------------------------------------------------------------------ recovery

    def sync_statement(self) -> None:
        """Skip to just after the next `;`, or to the `}` closing the current block."""
        depth = 0
        while True:
            tok = self.tok
            kind = tok.kind
            if kind == "EOF":
                return
            if kind == "DIRECTIVE" and tok.value in TOP_LEVEL:
                return
            if kind in ("{", "(", "["):
                depth += 1
            elif kind in ("}", ")", "]"):
                if depth == 0:
                    if kind == "}":
                        return
                else:
                    depth -= 1
                    if depth == 0 and kind == "}":
                        self.advance()
                        if self.at(";"):
                            self.advance()
                        return
            elif kind == ";" and depth == 0:
                self.advance()
                return
            self.advance()

    def sync_top_level(self) -> None:
        while not self.at("EOF"):
            tok = self.tok
            if tok.kind == "DIRECTIVE" and tok.value in TOP_LEVEL:
                return
            self.advance()

    def block(self, entry, what: str) -> list:
        """`{ entry* }` with per-entry recovery."""
        self.expect("{", f"open the {what} with '{{'")
        items: list = []
        while not self.at("}"):
            if self.at("EOF"):
                raise self.error(
                    f"expected '}}' to close the {what}, got end of input",
                    self.tok.span,
                    "add the missing '}'",
                )
            if self.at_directive() and self.tok.value in TOP_LEVEL:
                raise self.error(
                    f"expected '}}' to close the {what}, got {self.tok.describe()}",
                    self.tok.span,
                    "add the missing '}'",
                )
            start = self.pos
            try:
                item = entry()
                if item is not None:
                    items.append(item)
            except _TooMany:
                raise
            except _Fail:
                self.sync_statement()
                if self.pos == start:
                    self.advance()
        self.advance()
        return items

    # ------------------------------------------------------------------ program

    def parse_program(self) -> A.Program:
        items: list[A.Item] = []
        try:
            while not self.at("EOF"):
                start = self.pos
                try:
                    items.append(self.item())
                except _TooMany:
                    raise
                except _Fail:
                    if self.pos == start:
                        self.advance()
                    self.sync_top_level()
        except _TooMany:
            pass
        return A.Program(items, self.source.filename, Span(self.source, 1, 1, 1))

    def item(self) -> A.Item:
        tok = self.tok
        if tok.kind != "DIRECTIVE" or tok.value not in TOP_LEVEL:
            hint = None
            if tok.kind == "DIRECTIVE":
                hint = f"'{tok.text}' is only valid inside a @graph body"
            raise self.expected("a directive (@model, @graph, ...)", hint)
        self.advance()
        kind = tok.value
        handler = getattr(self, f"item_{kind}")
        return handler(tok.span)

    def item_import(self, span: Span) -> A.Import:
        path = self.expect("STRING", 'write the path as a string: @import "file.sw" as name;')
        alias = None
        if self.at_word("as"):
            self.advance()
            alias = self.name("an alias name").text
        self.expect_semi_after("@import")
        return A.Import(path.value, alias, span)

    def item_model(self, span: Span) -> A.ModelBlock:
        return A.ModelBlock(self.block(self.field, "@model block"), span)

    def item_config(self, span: Span) -> A.ConfigBlock:
        return A.ConfigBlock(self.block(self.field, "@config block"), span)

    def item_types(self, span: Span) -> A.TypesBlock:
        return A.TypesBlock(self.block(self.type_def, "@types block"), span)

    def type_def(self) -> A.TypeDef:
        if not self.at_word("type"):
            raise self.expected("'type'", "declare aliases as: type Name = Tensor<[..], f32>;")
        span = self.advance().span
        name = self.name("a type name").text
        self.expect("=")
        ty = self.type_expr()
        self.expect_semi_after("the type alias")
        return A.TypeDef(name, ty, span)

    def item_graph(self, span: Span) -> A.GraphBlock:
        name = self.name("a graph name").text
        params = None
        if self.accept("("):
            params = self.param_defs(")")
        returns = None
        if self.accept("->"):
            returns = self.type_expr()
        body = self.block(self.graph_stmt, f"@graph {name}")
        return A.GraphBlock(name, params, returns, body, span)

    def param_defs(self, close: str) -> list[A.ParamDef]:
        params: list[A.ParamDef] = []
        while not self.at(close):
            tok = self.name("a parameter name")
            self.expect(":")
            ty = self.type_expr()
            optional = self.accept("?") is not None
            params.append(A.ParamDef(tok.text, ty, optional, tok.span))
            if not self.accept(","):
                break
        self.expect(close)
        return params

    # ------------------------------------------------------------------ graph statements

    def graph_stmt(self) -> A.Stmt:
        tok = self.tok
        if tok.kind == "KEYWORD":
            if tok.text == "input":
                return self.input_decl()
            if tok.text == "output":
                return self.output_decl()
            if tok.text == "param":
                return self.param_decl()
            if tok.text == "node":
                return self.node_decl()
        if tok.kind == "DIRECTIVE":
            if tok.value == "assert":
                self.advance()
                return self.assert_body(tok.span)
            if tok.value == "check":
                return self.check_block()
        raise self.expected(
            "a graph statement (input, output, param, node, @assert, @check)",
            "graph bodies contain declarations such as: node h { op: relu(x); };",
        )

    def input_decl(self) -> A.InputDecl:
        span = self.advance().span
        name = self.name("an input name").text
        self.expect(":", "give the input a type: input x: Tensor<[Batch, 4], f32>;")
        ty = self.type_expr()
        optional = self.accept("?") is not None
        self.expect_semi_after("the input declaration")
        return A.InputDecl(name, ty, optional, span)

    def output_decl(self) -> A.OutputDecl:
        span = self.advance().span
        name = None
        if self.tok.kind in ("IDENT", "KEYWORD") and self.peek().kind == ":":
            name = self.advance().text
            self.advance()
        expr = self.expr()
        self.expect_semi_after("the output declaration")
        return A.OutputDecl(name, expr, span)

    def param_decl(self) -> A.ParamDecl:
        span = self.advance().span
        name = self.name("a parameter name").text
        self.expect(":", "give the parameter a type: param w: Tensor<[4, 8], f32>;")
        ty = self.type_expr()
        fields = None
        if self.at("{"):
            fields = self.block(self.field, f"param {name} attributes")
        self.expect_semi_after(f"param {name}")
        return A.ParamDecl(name, ty, fields, span)

    def node_decl(self) -> A.NodeDecl:
        span = self.advance().span
        name = self.name("a node name").text
        ty = None
        colon = False
        if self.accept(":"):
            colon = True
            if not self.at("{"):
                ty = self.type_expr()
        body = None
        if self.at("{"):
            body = self.block(self.node_stmt, f"node {name} body")
        self.expect_semi_after(f"node {name}")
        return A.NodeDecl(name, ty, body, colon, span)

    def node_stmt(self) -> A.Stmt | A.Field:
        tok = self.tok
        if tok.kind == "DIRECTIVE" and tok.value == "hint":
            self.advance()
            hint = self.tok
            if hint.kind not in ("IDENT", "KEYWORD") or hint.text in (
                "input",
                "output",
                "param",
                "node",
                "op",
            ):
                raise self.expected("a hint name", "e.g. @hint recompute_in_backward;")
            self.advance()
            self.expect_semi_after("the hint")
            return A.HintStmt(hint.text, tok.span)
        if tok.kind == "DIRECTIVE" and tok.value == "assert":
            self.advance()
            return self.assert_body(tok.span)
        key = self.name("a node attribute (op, input, output or a key)")
        self.expect(":")
        if key.kind == "KEYWORD" and key.text == "op":
            expr = self.expr()
            self.expect_semi_after("the op")
            return A.OpStmt(expr, key.span)
        if key.kind == "KEYWORD" and key.text == "input":
            expr = self.expr()
            self.expect_semi_after("the node input")
            return A.NodeInputStmt(expr, key.span)
        if key.kind == "KEYWORD" and key.text == "output":
            ty = self.type_expr()
            self.expect_semi_after("the node output type")
            return A.NodeOutputStmt(ty, key.span)
        expr = self.expr()
        self.expect_semi_after(f"attribute '{key.text}'")
        return A.Field(key.text, expr, key.span)

    def assert_body(self, span: Span) -> A.AssertStmt:
        expr = self.expr()
        message = None
        if self.accept(","):
            message = self.expect("STRING", "the assertion message must be a string").value
        self.expect_semi_after("the assertion")
        return A.AssertStmt(expr, message, span)

    def check_block(self) -> A.CheckBlock:
        span = self.advance().span
        name = self.name("a check name").text

        def entry() -> A.AssertStmt:
            if not self.at_word("assert"):
                raise self.expected("'assert'", "each line of @check is: assert <expr>;")
            return self.assert_body(self.advance().span)

        asserts = self.block(entry, f"@check {name}")
        self.accept(";")
        return A.CheckBlock(name, asserts, span)

    # ------------------------------------------------------------------ other items

    def field(self) -> A.Field:
        """`key: expr;` or, for sub-block keys, `key: { fields }`."""
        key = self.tok
        if key.kind not in ("IDENT", "KEYWORD", "STRING"):
            raise self.expected("a key (identifier or keyword)")
        self.advance()
        text = key.value if key.kind == "STRING" else key.text
        self.expect(":", f"write '{text}: value;'")
        if self.at("{") and text in SUB_BLOCK_KEYS:
            start = self.tok.span
            fields = self.block(self.field, f"'{text}' block")
            self.accept(";")
            return A.Field(text, A.SubBlock(fields, start), key.span)
        value = self.expr()
        self.expect_semi_after(f"'{text}'")
        return A.Field(text, value, key.span)

    def fields_block(self, what: str) -> list[A.Field]:
        return self.block(self.field, what)

    def item_custom_op(self, span: Span) -> A.CustomOpBlock:
        name = self.name("a custom op name").text
        return A.CustomOpBlock(name, self.block(self.custom_op_stmt, f"@custom_op {name}"), span)

    def custom_op_stmt(self) -> A.Stmt | A.Field:
        tok = self.tok
        if tok.kind == "KEYWORD" and tok.text == "signature" and self.peek().kind == ":":
            self.advance()
            self.advance()
            self.expect("(", "write signature: (x: Tensor<[B, D], f32>) -> Tensor<[B, D], f32>;")
            params = self.param_defs(")")
            self.expect("->", "the signature needs a return type: -> Type")
            returns = self.type_expr()
            self.expect_semi_after("the signature")
            return A.Signature(params, returns, tok.span)
        if tok.kind == "KEYWORD" and tok.text == "impl":
            self.advance()
            target = self.name("an implementation target (cpu, gpu, ...)").text
            fields = self.block(self.field, f"impl {target}")
            self.accept(";")
            return A.ImplBlock(target, fields, tok.span)
        if tok.kind == "KEYWORD" and tok.text == "gradient":
            self.advance()
            name = self.name("a gradient name").text
            body = self.block(self.custom_op_stmt, f"gradient {name}")
            self.accept(";")
            return A.GradientBlock(name, body, tok.span)
        if tok.kind in ("IDENT", "KEYWORD") and self.peek().kind == ":":
            return self.field()
        raise self.expected("signature, impl, gradient or a 'key: value;' field")

    def item_training(self, span: Span) -> A.TrainingBlock:
        return A.TrainingBlock(self.block(self.field, "@training block"), span)

    def item_inference(self, span: Span) -> A.InferenceBlock:
        return A.InferenceBlock(self.block(self.field, "@inference block"), span)

    def item_metrics(self, span: Span) -> A.MetricsBlock:
        name = self.name("a metrics group name").text

        def entry() -> A.Track:
            if not self.at_word("track"):
                raise self.expected("'track'", "write: track name { source: loss; }")
            tspan = self.advance().span
            tname = self.name("a metric name").text
            fields = self.block(self.field, f"track {tname}")
            self.accept(";")
            return A.Track(tname, fields, tspan)

        return A.MetricsBlock(name, self.block(entry, f"@metrics {name}"), span)

    def item_logging(self, span: Span) -> A.LoggingBlock:
        return A.LoggingBlock(self.block(self.field, "@logging block"), span)

    def item_visualizations(self, span: Span) -> A.VisualizationsBlock:
        def entry() -> A.Plot:
            if not self.at_word("plot"):
                raise self.expected("'plot'", "write: plot name { x: \"step\"; }")
            pspan = self.advance().span
            pname = self.name("a plot name").text
            fields = self.block(self.field, f"plot {pname}")
            self.accept(";")
            return A.Plot(pname, fields, pspan)

        return A.VisualizationsBlock(self.block(entry, "@visualizations block"), span)

    # ------------------------------------------------------------------ types

    def type_expr(self) -> A.TypeExpr:
        self.enter()
        try:
            return self._type_expr()
        finally:
            self.leave()

    def _type_expr(self) -> A.TypeExpr:
        tok = self.tok
        kind = tok.kind
        if kind == "TENSOR":
            self.advance()
            self.expect("<", "write Tensor<[dims], dtype>")
            self.expect("[", "write Tensor<[dims], dtype>")
            dims: list[A.Dim] = []
            while not self.at("]"):
                dims.append(self.dim())
                if not self.accept(","):
                    break
            self.expect("]")
            self.expect(",", "a tensor type needs a dtype: Tensor<[2, 3], f32>")
            dtype = self.tok
            if dtype.kind != "DTYPE":
                raise self.expected("a dtype (f32, f64, i64, ...)")
            self.advance()
            self.expect(">")
            return A.TensorTypeExpr(dims, dtype.text, tok.span)
        if kind == "(":
            self.advance()
            items: list[A.TypeExpr] = []
            while not self.at(")"):
                items.append(self.type_expr())
                if not self.accept(","):
                    break
            self.expect(")")
            return A.TupleTypeExpr(items, tok.span)
        if kind == "[":
            self.advance()
            item = self.type_expr()
            self.expect("]")
            return A.ListTypeExpr(item, tok.span)
        if kind == "{":
            self.advance()
            entries: list[tuple[str, A.TypeExpr]] = []
            while not self.at("}"):
                key = self.name("a key").text
                self.expect(":")
                entries.append((key, self.type_expr()))
                if not self.accept(","):
                    break
            self.expect("}")
            return A.DictTypeExpr(entries, tok.span)
        if kind == "?":
            self.advance()
            return A.DynamicTypeExpr(tok.span)
        if kind == "DTYPE":
            self.advance()
            return A.ScalarTypeExpr(tok.text, tok.span)
        if kind == "INT":
            self.advance()
            return A.IntDimTypeExpr(tok.value, tok.span)
        if kind in ("IDENT", "KEYWORD"):
            self.advance()
            return A.NamedTypeExpr(tok.text, tok.span)
        raise self.expected("a type (Tensor<[..], dtype>, a dtype or a type alias)")

    def dim(self) -> A.Dim:
        self.enter()
        try:
            left = self.dim_term()
            while self.tok.kind in ("+", "-"):
                op = self.advance()
                left = A.DimBinary(op.text, left, self.dim_term(), op.span)
            return left
        finally:
            self.leave()

    def dim_term(self) -> A.Dim:
        left = self.dim_atom()
        while self.tok.kind in ("*", "/", "%"):
            op = self.advance()
            left = A.DimBinary(op.text, left, self.dim_atom(), op.span)
        return left

    def dim_atom(self) -> A.Dim:
        tok = self.tok
        if tok.kind == "IDENT" and tok.text == "_":
            self.advance()
            return A.DimDynamic("_", tok.span)
        if tok.kind == "INT":
            self.advance()
            return A.DimInt(tok.value, tok.span)
        if tok.kind in ("IDENT", "KEYWORD"):
            self.advance()
            name = tok.text
            while self.accept("::"):
                name += "::" + self.name("a name after '::'").text
            return A.DimName(name, tok.span)
        if tok.kind == "?":
            self.advance()
            return A.DimDynamic("?", tok.span)
        if tok.kind == "(":
            self.advance()
            inner = self.dim()
            self.expect(")")
            return A.DimParen(inner, tok.span)
        raise self.expected("a dimension (name, integer, ?, _ or an arithmetic expression)")

    # ------------------------------------------------------------------ expressions

    def expr(self) -> A.Expr:
        self.enter()
        try:
            left = self.binary(1)
            if self.at(".."):
                op = self.advance()
                right = self.binary(1)
                return A.RangeExpr(left, right, op.span)
            return left
        finally:
            self.leave()

    def binary(self, min_prec: int) -> A.Expr:
        left = self.unary()
        chained = 0
        while True:
            tok = self.tok
            prec = BINARY_PRECEDENCE.get(tok.kind)
            if prec is None or prec < min_prec:
                return left
            chained += 1
            if chained + self.depth > MAX_CHAIN:
                raise self.error(
                    "expression too long", tok.span, f"split it: at most {MAX_CHAIN} operators"
                )
            self.advance()
            if tok.kind == "**":
                self.enter()
                try:
                    right = self.binary(prec)  # right-associative
                finally:
                    self.leave()
            else:
                right = self.binary(prec + 1)
            left = A.Binary(tok.kind, left, right, tok.span)

    def unary(self) -> A.Expr:
        tok = self.tok
        if tok.kind in ("-", "!", "~"):
            self.advance()
            self.enter()
            try:
                operand = self.binary(UNARY_PRECEDENCE)
            finally:
                self.leave()
            return A.Unary(tok.kind, operand, tok.span)
        return self.postfix(self.primary())

    def postfix(self, expr: A.Expr) -> A.Expr:
        chained = 0
        while True:
            tok = self.tok
            chained += 1
            if chained + self.depth > MAX_CHAIN:
                raise self.error("expression too long", tok.span, "split it into several nodes")
            if tok.kind == ".":
                self.advance()
                name = self.name("a member name after '.'")
                expr = A.Member(expr, name.text, name.span)
            elif tok.kind == "(":
                expr = A.Call(expr, self.call_args(), False, tok.span)
            elif tok.kind == "[":
                self.advance()
                start = None if self.at(":") else self.expr()
                if self.accept(":"):
                    stop = None if self.at("]") else self.expr()
                    self.expect("]")
                    expr = A.Slice(expr, start, stop, tok.span)
                else:
                    self.expect("]")
                    expr = A.Index(expr, start, tok.span)
            else:
                return expr

    def call_args(self) -> list[A.Arg]:
        self.expect("(")
        args: list[A.Arg] = []
        while not self.at(")"):
            tok = self.tok
            if tok.kind in ("IDENT", "KEYWORD") and self.peek().kind == ":":
                self.advance()
                self.advance()
                args.append(A.Arg(tok.text, self.expr(), tok.span))
            else:
                value = self.expr()
                args.append(A.Arg(None, value, tok.span))
            if not self.accept(","):
                break
        self.expect(")", "close the argument list with ')'")
        return args

    def primary(self) -> A.Expr:
        tok = self.tok
        kind = tok.kind
        if kind == "INT":
            self.advance()
            return A.IntLit(tok.value, tok.span)
        if kind == "FLOAT":
            self.advance()
            return A.FloatLit(tok.value, tok.span)
        if kind == "STRING":
            self.advance()
            return A.StrLit(tok.value, tok.span)
        if kind == "TRUE" or kind == "FALSE":
            self.advance()
            return A.BoolLit(kind == "TRUE", tok.span)
        if kind == "NULL":
            self.advance()
            return A.NullLit(tok.span)
        if kind == "(":
            self.advance()
            inner = self.expr()
            self.expect(")", "close the parenthesis")
            return A.Paren(inner, tok.span)
        if kind == "[":
            self.advance()
            items: list[A.Expr] = []
            while not self.at("]"):
                items.append(self.expr())
                if not self.accept(","):
                    break
            self.expect("]", "close the list with ']'")
            return A.ListExpr(items, tok.span)
        if kind == "{":
            return self.dict_expr()
        if kind == "|" or kind == "||":
            return self.closure()
        if kind == "KEYWORD":
            word = tok.text
            if word == "if":
                return self.if_expr()
            if word == "repeat":
                return self.repeat_expr()
            if word == "for":
                raise self.error(
                    "for-comprehensions are not supported",
                    tok.span,
                    "use repeat(n) { ... } or range(...)",
                )
            if word == "call" and self.peek().kind in ("IDENT", "KEYWORD"):
                self.advance()
                callee = self.qualified_name()
                if not self.at("("):
                    raise self.expected("'(' after the called graph's name")
                return A.Call(callee, self.call_args(), True, tok.span)
        if kind in ("IDENT", "KEYWORD"):
            return self.qualified_name()
        hint = None
        if kind == "DTYPE":
            hint = f"'{tok.text}' is a dtype and cannot be used as a value"
        raise self.expected("an expression", hint)

    def qualified_name(self) -> A.Name:
        first = self.advance()
        parts = [first.text]
        while self.at("::"):
            self.advance()
            parts.append(self.name("a name after '::'").text)
        return A.Name(tuple(parts), first.span)

    def dict_expr(self) -> A.DictExpr:
        start = self.advance()
        entries: list[tuple[str, A.Expr]] = []
        while not self.at("}"):
            key = self.tok
            if key.kind not in ("IDENT", "KEYWORD", "STRING"):
                raise self.expected("a key (identifier, keyword or string)")
            self.advance()
            self.expect(":")
            entries.append((key.value if key.kind == "STRING" else key.text, self.expr()))
            if not self.accept(","):
                break
        self.expect("}", "close the dict with '}' (entries are separated by ',')")
        return A.DictExpr(entries, start.span)

    def braced_expr(self) -> A.Expr:
        self.expect("{")
        value = self.expr()
        self.accept(";")
        self.expect("}", "a block holds exactly one expression")
        return value

    def if_expr(self) -> A.IfExpr:
        start = self.advance()
        cond = self.expr()
        then = self.braced_expr()
        otherwise = None
        if self.at("KEYWORD") and self.tok.text == "else":
            self.advance()
            if self.at("KEYWORD") and self.tok.text == "if":
                self.enter()
                try:
                    otherwise = self.if_expr()
                finally:
                    self.leave()
            else:
                otherwise = self.braced_expr()
        return A.IfExpr(cond, then, otherwise, start.span)

    def repeat_expr(self) -> A.RepeatExpr:
        start = self.advance()
        self.expect("(", "write repeat(n) { expr }")
        count = self.expr()
        self.expect(")")
        body = self.braced_expr()
        return A.RepeatExpr(count, body, start.span)

    def closure(self) -> A.Closure:
        start = self.advance()
        params: list[str] = []
        if start.kind == "|":
            while not self.at("|"):
                params.append(self.name("a closure parameter").text)
                if not self.accept(","):
                    break
            self.expect("|")
        body = self.braced_expr()
        return A.Closure(params, body, start.span)


class _TooMany(_Fail):
    pass


def parse_with_diagnostics(
    source: str | Source, filename: str = "<string>"
) -> tuple[A.Program, list[Diagnostic]]:
    """Parse, returning the (possibly partial) program and every lexical/syntax error."""
    src = source if isinstance(source, Source) else Source(source, filename)
    lexer = Lexer(src)
    tokens = lexer.tokenize()
    parser = Parser(tokens, src)
    for diag in lexer.diagnostics:
        parser._error_positions.add((diag.span.line, diag.span.column))
    program = parser.parse_program()
    diags = lexer.diagnostics + parser.diagnostics
    diags.sort(key=lambda d: (d.span.line, d.span.column) if d.span else (0, 0))
    return program, diags


def parse(source: str, filename: str = "<string>") -> A.Program:
    """Parse .sw source text into an AST Program.

    Raises ParseError (a subclass of IRError) carrying every lexical and syntax
    error found. Does not read imported files: use `parse_file` for that.
    """
    program, diags = parse_with_diagnostics(source, filename)
    if diags:
        first = diags[0]
        raise ParseError(first.message, first.span, first.hint, diagnostics=diags)
    return program


def parse_file(path: str | Path, resolve_imports: bool = True) -> A.Program:
    """Read and parse a .sw file; resolve its @import items relative to the file."""
    from .imports import read_source
    from .imports import resolve_imports as _resolve

    path = Path(path)
    text = read_source(path)
    program = parse(text, str(path))
    if resolve_imports:
        _resolve(program, path)
    return program
