"""Printer round trip, and fuzzing: arbitrary input gives an IRError, never a crash or hang."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ir_testkit import EXAMPLE_FILES, EXAMPLES, SHARED_EXAMPLES, SHARED_FILES

import shrew_ir
from shrew_ir import IRError, format_program, parse

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))


def _roundtrip(text):
    program = parse(text)
    printed = format_program(program)
    again = parse(printed)
    assert again == program
    assert format_program(again) == printed


def test_examples_round_trip():
    files = [EXAMPLES / f for f in EXAMPLE_FILES] + [EXAMPLES / "layers" / "transformer.sw"]
    if SHARED_EXAMPLES.is_dir():
        files += [SHARED_EXAMPLES / f for f in SHARED_FILES]
    for path in files:
        _roundtrip(path.read_text())


def test_round_trip_keeps_precedence_strings_and_floats():
    _roundtrip(
        '@config { a: -(x ** 2); b: (-x) ** 2; c: 2 ** -1; d: (a + b) * c; '
        'e: "q\\"\\n\\t\\\\é"; f: 1e-05; g: 3.0; h: a - (b - c); i: [[1, 2], [3]]; '
        "j: if a { 1 } else if b { 2 } else { 3 }; k: |x| { x + 1 }; l: (a ?? b).c[0]; "
        "m: 0..n; n: call G(x); o: x.f(y: 1); p: {k: 1, \"odd key\": 2}; }\n"
        "@types { type T = Tensor<[a - (b - c), (a + b) * c, ?, _], f32>; }"
    )


NAMES = st.sampled_from(["a", "b", "x", "input", "relu", "n_heads"])
LEAVES = st.one_of(
    NAMES,
    st.integers(0, 10**6).map(str),
    st.floats(0, 1e6, allow_nan=False).map(repr),
    st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=5).map(
        lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
    ),
)
BINOPS = st.sampled_from(
    ["+", "-", "*", "/", "%", "**", "==", "!=", "<", ">=", "&&", "||", "??", "&", "|", "^",
     "<<", ">>", "@"]
)


def _exprs():
    return st.recursive(
        LEAVES,
        lambda inner: st.one_of(
            st.tuples(inner, BINOPS, inner).map(lambda t: f"{t[0]} {t[1]} {t[2]}"),
            inner.map(lambda e: f"({e})"),
            inner.map(lambda e: f"-{e}"),
            inner.map(lambda e: f"!{e}"),
            st.lists(inner, max_size=3).map(lambda xs: f"f({', '.join(xs)})"),
            st.lists(inner, max_size=3).map(lambda xs: f"[{', '.join(xs)}]"),
            st.tuples(NAMES, inner).map(lambda t: f"g({t[0]}: {t[1]})"),
            inner.map(lambda e: f"{e}.m"),
            inner.map(lambda e: f"repeat(2) {{ {e} }}"),
        ),
        max_leaves=12,
    )


@FUZZ
@given(_exprs())
def test_generated_expressions_round_trip(expr):
    _roundtrip(f"@config {{ v: {expr}; }}\n@graph G {{ output o: {expr}; }}")


TOKENS = st.sampled_from(
    "@model @config @graph @types @training @inference @import @assert @check @hint "
    "@custom_op @metrics input output param node op repeat if else call for type "
    "Tensor f32 i64 true null x y 1 2.5 1e-3 \"s\" { } ( ) [ ] < > ; , : :: -> ** ?? "
    ".. . + - * / @ ? _ | || && ! ~ = == // /* */".split()
)


@FUZZ
@given(st.lists(TOKENS, max_size=60))
def test_token_soup_never_crashes(tokens):
    _check_pipeline(" ".join(tokens))


@FUZZ
@given(st.text(max_size=200))
def test_arbitrary_text_never_crashes(text):
    _check_pipeline(text)


@FUZZ
@given(st.text(alphabet="{}()[];:,.@\"/*\n\\ abcgraphnodeop0123+-", max_size=300))
def test_punctuation_heavy_text_never_crashes(text):
    _check_pipeline(text)


def _check_pipeline(text):
    try:
        module = shrew_ir.lower(parse(text))
        shrew_ir.validate(module)
        shrew_ir.optimize(module)
        shrew_ir.dump(module)
    except IRError as err:
        assert err.diagnostics
        assert err.line is None or err.line >= 1
        str(err)
