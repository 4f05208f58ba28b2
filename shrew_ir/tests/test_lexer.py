"""Lexer: every token kind, spans (characters, 1-based), literals, escapes and errors."""

import pytest

from shrew_ir import LexError, tokenize
from shrew_ir.lexer import tokenize_with_diagnostics


def kinds(src):
    return [t.kind for t in tokenize(src)][:-1]


def test_directives_keywords_and_names():
    toks = tokenize("@model @graph input foo f32 Tensor true false null _x")
    assert [(t.kind, t.value) for t in toks[:-1]] == [
        ("DIRECTIVE", "model"),
        ("DIRECTIVE", "graph"),
        ("KEYWORD", "input"),
        ("IDENT", "foo"),
        ("DTYPE", "f32"),
        ("TENSOR", "Tensor"),
        ("TRUE", "true"),
        ("FALSE", "false"),
        ("NULL", "null"),
        ("IDENT", "_x"),
    ]


def test_every_operator():
    src = "-> :: ** == != <= >= << >> && || ?? .. { } ( ) [ ] ; , . : + - * / % ^ & | ! ~ = < > ? @"
    assert kinds(src) == src.split()


def test_longest_match():
    assert kinds("a**b") == ["IDENT", "**", "IDENT"]
    assert kinds("x->y") == ["IDENT", "->", "IDENT"]
    assert kinds("a??b") == ["IDENT", "??", "IDENT"]
    assert kinds("a::b") == ["IDENT", "::", "IDENT"]


@pytest.mark.parametrize(
    "src, kind, value",
    [
        ("42", "INT", 42),
        ("1.5", "FLOAT", 1.5),
        ("1e3", "FLOAT", 1000.0),
        ("2.5E-2", "FLOAT", 0.025),
        ("3e+2", "FLOAT", 300.0),
        ("9223372036854775807", "INT", 2**63 - 1),
    ],
)
def test_numbers(src, kind, value):
    tok = tokenize(src)[0]
    assert (tok.kind, tok.value) == (kind, value)


def test_dot_after_int_is_not_a_float():
    assert kinds("1.x") == ["INT", ".", "IDENT"]
    assert kinds("1..5") == ["INT", "..", "INT"]


def test_string_escapes_and_unicode():
    tok = tokenize(r'"a\nb\t\"q\"\\ \u{e9} \z é"')[0]
    assert tok.value == 'a\nb\t"q"\\ é \\z é'


def test_multiline_string_and_positions_after_it():
    toks = tokenize('"a\nb" x')
    assert toks[0].value == "a\nb"
    assert (toks[1].span.line, toks[1].span.column) == (2, 4)


def test_comments_are_skipped_and_lines_counted():
    toks = tokenize("// c\n/* a\n b */ x /* y */ z")
    assert [(t.text, t.span.line, t.span.column) for t in toks[:-1]] == [("x", 3, 7), ("z", 3, 17)]


def test_columns_count_characters_not_bytes():
    toks = tokenize('"ééé" x\n\tY')
    assert (toks[1].span.line, toks[1].span.column) == (1, 7)
    assert (toks[2].span.line, toks[2].span.column) == (2, 2)


@pytest.mark.parametrize(
    "src, message, line, column",
    [
        ("a $ b", "unexpected character '$'", 1, 3),
        ("x\n  #", "unexpected character '#'", 2, 3),
        ('a "abc', "unterminated string literal", 1, 3),
        ("a /* b", "unterminated block comment", 1, 3),
        ("x = 1e", "invalid number '1e'", 1, 5),
        ("x = 2e+", "invalid number '2e+'", 1, 5),
        ("99999999999999999999", "invalid number '99999999999999999999'", 1, 1),
        ("@foo", "unknown directive '@foo'", 1, 1),
    ],
)
def test_lex_errors(src, message, line, column):
    with pytest.raises(LexError) as info:
        tokenize(src, "m.sw")
    err = info.value
    assert (err.message, err.filename, err.line, err.column) == (message, "m.sw", line, column)
    assert err.hint


def test_several_lex_errors_in_one_pass():
    toks, diags = tokenize_with_diagnostics("$ a # b `")
    assert [d.column for d in diags] == [1, 5, 9]
    assert [t.text for t in toks[:-1]] == ["a", "b"]


def test_at_followed_by_space_is_the_matmul_operator():
    assert kinds("a @ b") == ["IDENT", "@", "IDENT"]
