"""Parser: grammar coverage, precedence/associativity, error positions and recovery."""

import pytest

from shrew_ir import ParseError, parse
from shrew_ir import ast as A
from shrew_ir.printer import format_expr


def expr_of(text):
    program = parse(f"@config {{ v: {text}; }}")
    return program.items[0].fields[0].value


def shape(text):
    """Fully parenthesised form of an expression, to check the tree."""
    return _paren(expr_of(text))


def _paren(e):
    if isinstance(e, A.Binary):
        return f"({_paren(e.left)} {e.op} {_paren(e.right)})"
    if isinstance(e, A.Unary):
        return f"({e.op}{_paren(e.operand)})"
    if isinstance(e, A.Paren):
        return _paren(e.inner)
    return format_expr(e)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("a + b * c", "(a + (b * c))"),
        ("a - b - c", "((a - b) - c)"),
        ("a / b * c", "((a / b) * c)"),
        ("a ** b ** c", "(a ** (b ** c))"),
        ("-x ** 2", "(-(x ** 2))"),
        ("2 ** -1", "(2 ** (-1))"),
        ("a < b < c", "((a < b) < c)"),
        ("a == b != c", "((a == b) != c)"),
        ("a || b && c", "(a || (b && c))"),
        ("a ?? b || c", "(a ?? (b || c))"),
        ("a | b ^ c & d", "(a | (b ^ (c & d)))"),
        ("a << 1 + 2", "(a << (1 + 2))"),
        ("a & b == c", "(a & (b == c))"),
        ("a + b.c", "(a + b.c)"),
        ("!a && ~b", "((!a) && (~b))"),
        ("a @ b + c", "((a @ b) + c)"),
        ("(a + b) * c", "((a + b) * c)"),
        ("x[0] * y[1:2]", "(x[0] * y[1:2])"),
    ],
)
def test_precedence_and_associativity(text, expected):
    assert shape(text) == expected


def test_primary_forms():
    assert isinstance(expr_of("[1, 2, 3,]"), A.ListExpr)
    d = expr_of("{a: 1, b: [2], }")
    assert isinstance(d, A.DictExpr) and [k for k, _ in d.entries] == ["a", "b"]
    assert isinstance(expr_of("if a > 1 { 2 } else { 3 }"), A.IfExpr)
    assert isinstance(expr_of("if a { 1 } else if b { 2 } else { 3 }").otherwise, A.IfExpr)
    r = expr_of("repeat(4) { f(x); }")
    assert isinstance(r, A.RepeatExpr) and isinstance(r.body, A.Call)
    assert expr_of("|a, b| { a + b }").params == ["a", "b"]
    assert expr_of("|| { 1 }").params == []
    assert isinstance(expr_of("0..n"), A.RangeExpr)
    assert expr_of("a::b::c").parts == ("a", "b", "c")
    call = expr_of("call G(x, y)")
    assert call.explicit and call.func_name == "G"
    m = expr_of("(x + 1).sum(dim: 0)")
    assert isinstance(m.callee, A.Member) and isinstance(m.callee.obj, A.Paren)
    args = expr_of("f(x, dim: -1, 2,)").args
    assert [a.name for a in args] == [None, "dim", None]
    assert expr_of("null") == A.NullLit() and expr_of("true") == A.BoolLit(True)


def test_every_directive_parses():
    src = """
    @import "x.sw" as lib;
    @model { name: "m"; tags: ["a", "b"]; }
    @config { d: 4; h: d * 2; }
    @types { type T = Tensor<[Batch, d, ?, _, d / 2, (d + 1) * 2], f32>; type P = (f32, [i64]); }
    @graph G(x: T?, n: i64) -> Tensor<[Batch, 4], f32> {
        input y: Tensor<[2], f64>?;
        param w: Tensor<[d, 4], f32> { init: "xavier_uniform"; frozen: true; device: cpu; };
        node h: Tensor<[Batch, 4], f32> { op: x @ w; input: x; output: T; dim: 1; @hint no_grad; };
        node k: { op: h; };
        node z;
        @assert d > 0, "positive";
        @check sizes { assert d == 4; assert h == 8, "h"; }
        output out: relu(h);
        output h;
    }
    @custom_op swiglu {
        signature: (x: Tensor<[B, D], f32>, k: i32) -> Tensor<[B, D], f32>;
        impl cpu { kernel: "k"; }
        gradient back { impl gpu { kernel: "g"; } body: call G(x); }
    }
    @training { model: G; loss: mse; optimizer: { type: AdamW; lr: 1e-3; }; epochs: 2; }
    @inference { model: G; optimizations: [fuse, "dce"]; quantization: { mode: "int8"; } }
    @metrics M { track loss { source: loss; log_every: 10; } }
    @logging { backend: "tb"; }
    @visualizations { plot p { x: "step"; } }
    """
    program = parse(src)
    kinds = [type(i).__name__ for i in program.items]
    assert kinds == [
        "Import", "ModelBlock", "ConfigBlock", "TypesBlock", "GraphBlock", "CustomOpBlock",
        "TrainingBlock", "InferenceBlock", "MetricsBlock", "LoggingBlock", "VisualizationsBlock",
    ]
    graph = program.items[4]
    assert graph.params[0].optional and graph.returns is not None
    stmts = [type(s).__name__ for s in graph.body]
    assert stmts == [
        "InputDecl", "ParamDecl", "NodeDecl", "NodeDecl", "NodeDecl", "AssertStmt",
        "CheckBlock", "OutputDecl", "OutputDecl",
    ]
    dims = program.items[3].defs[0].type.dims
    assert [type(d).__name__ for d in dims] == [
        "DimName", "DimName", "DimDynamic", "DimDynamic", "DimBinary", "DimBinary",
    ]


@pytest.mark.parametrize(
    "src, message, line, column",
    [
        ('@model { name: "x" }', "expected ';' after 'name', got '}'", 1, 20),
        ("@model { x: ; }", "expected an expression, got ';'", 1, 13),
        (
            "@graph G { node y { op: x; } output y; }",
            "expected ';' after node y, got keyword 'output'",
            1,
            30,
        ),
        (
            "@graph G {\n  input f32: Tensor<[1], f32>;\n}",
            "expected an input name, got keyword 'f32'",
            2,
            9,
        ),
        (
            "@graph G { input x: Tensor<[1], q32>; }",
            "expected a dtype (f32, f64, i64, ...), got identifier 'q32'",
            1,
            33,
        ),
        (
            "@assert x;",
            "expected a directive (@model, @graph, ...), got directive '@assert'",
            1,
            1,
        ),
        (
            "@graph G { foo; }",
            "expected a graph statement (input, output, param, node, @assert, @check),"
            " got identifier 'foo'",
            1,
            12,
        ),
        ("@graph G { output f(x; }", "expected ')', got ';'", 1, 22),
        ("@config { a: for; }", "for-comprehensions are not supported", 1, 14),
        (
            "@graph G { node n { @hint input; }; }",
            "expected a hint name, got keyword 'input'",
            1,
            27,
        ),
        ("@graph G { @check c { x > 1; } }", "expected 'assert', got identifier 'x'", 1, 23),
        ("@model {", "expected '}' to close the @model block, got end of input", 1, 9),
    ],
)
def test_syntax_errors_have_exact_positions(src, message, line, column):
    with pytest.raises(ParseError) as info:
        parse(src, "bad.sw")
    err = info.value
    assert (err.message, err.line, err.column, err.filename) == (message, line, column, "bad.sw")


def test_error_rendering_has_source_line_caret_and_hint():
    with pytest.raises(ParseError) as info:
        parse('@model {\n    name: "x"\n}\n', "m.sw")
    text = str(info.value)
    assert text.splitlines() == [
        "error: expected ';' after 'name', got '}'",
        " --> m.sw:3:1",
        "  |",
        "3 | }",
        "  | ^",
        "  = hint: add ';'",
    ]


def test_recovery_reports_several_errors_in_one_pass():
    src = """@graph G {
    node a { op: relu(x) };
    node b { op: ; };
    input c Tensor<[1], f32>;
    output a;
}
@config { k: 1 }
@model { name: "ok"; }
"""
    with pytest.raises(ParseError) as info:
        parse(src)
    positions = [(d.line, d.column) for d in info.value.diagnostics]
    assert positions == [(2, 26), (3, 18), (4, 13), (7, 16)]


def test_nesting_limit_is_a_parse_error_not_a_crash():
    with pytest.raises(ParseError) as info:
        parse("@config { a: " + "(" * 5000 + "1" + ")" * 5000 + "; }")
    assert "nested too deeply" in info.value.message
    with pytest.raises(ParseError):
        parse("@config { a: " + "-" * 5000 + "1; }")
    with pytest.raises(ParseError):
        parse("@config { a: 1" + " ** 1" * 5000 + "; }")


def test_long_flat_chains_parse():
    program = parse("@config { a: " + " + ".join(["1"] * 90) + "; }")
    assert isinstance(program.items[0].fields[0].value, A.Binary)
