"""The .sw lexer: text -> list of Token, with line/column spans.

Owns tokenisation only. It never stops at the first problem: a bad character,
an unterminated string or comment, or a malformed number is recorded as a
LexError diagnostic and scanning resumes, so the parser can report more
errors in one pass. Columns count characters (a tab is one column).
"""

from __future__ import annotations

import re

from .errors import ERROR, Diagnostic, LexError, Source, Span, raise_if_errors
from .tokens import DIRECTIVES, MULTI_CHAR_OPS, SINGLE_CHAR_OPS, Token, classify_word

I64_MAX = 2**63 - 1

_OPS = "|".join(re.escape(op) for op in MULTI_CHAR_OPS) + "|[" + re.escape(SINGLE_CHAR_OPS) + "]"
_MASTER = re.compile(
    r"(?P<ws>[ \t\r\n\f\v]+)"
    r"|(?P<line_comment>//[^\n]*)"
    r"|(?P<block_comment>/\*)"
    r"|(?P<number>[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]*)?)"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<directive>@[A-Za-z0-9_]+)"
    r'|(?P<string>")'
    r"|(?P<op>" + _OPS + ")"
)
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\", '"': '"', "'": "'"}


class Lexer:
    def __init__(self, source: Source) -> None:
        self.source = source
        self.text = source.text
        self.diagnostics: list[Diagnostic] = []
        self.line = 1
        self.line_start = 0

    def _span(self, pos: int, length: int = 1) -> Span:
        return Span(self.source, self.line, pos - self.line_start + 1, max(length, 1))

    def _advance_lines(self, start: int, end: int) -> None:
        text = self.text
        count = text.count("\n", start, end)
        if count:
            self.line += count
            self.line_start = text.rindex("\n", start, end) + 1

    def _error(self, message: str, span: Span, hint: str | None = None) -> None:
        self.diagnostics.append(Diagnostic(ERROR, message, span, hint, code="lex"))

    def tokenize(self) -> list[Token]:
        text = self.text
        n = len(text)
        pos = 0
        tokens: list[Token] = []
        append = tokens.append
        match = _MASTER.match
        while pos < n:
            m = match(text, pos)
            if m is None:
                ch = text[pos]
                self._error(
                    f"unexpected character {ch!r}",
                    self._span(pos),
                    "remove it; only ASCII operators are allowed outside strings",
                )
                pos += 1
                continue
            group = m.lastgroup
            end = m.end()
            if group == "ws":
                self._advance_lines(pos, end)
            elif group == "line_comment":
                pass
            elif group == "block_comment":
                close = text.find("*/", end)
                if close < 0:
                    self._error(
                        "unterminated block comment", self._span(pos, 2), "close it with '*/'"
                    )
                    end = n
                else:
                    end = close + 2
                self._advance_lines(pos, end)
            elif group == "number":
                append(self._number(m.group(), pos))
            elif group == "word":
                word = m.group()
                append(Token(classify_word(word), word, word, self._span(pos, len(word))))
            elif group == "directive":
                raw = m.group()
                span = self._span(pos, len(raw))
                if raw[1:] not in DIRECTIVES:
                    self._error(
                        f"unknown directive '{raw}'",
                        span,
                        "known directives: @" + ", @".join(sorted(DIRECTIVES)),
                    )
                    append(Token("DIRECTIVE", raw, "?" + raw[1:], span))
                else:
                    append(Token("DIRECTIVE", raw, raw[1:], span))
            elif group == "string":
                end = self._string(pos, tokens)
            else:
                op = m.group()
                append(Token(op, op, op, self._span(pos, len(op))))
            pos = end
        append(Token("EOF", "", None, self._span(n, 1)))
        return tokens

    def _number(self, raw: str, pos: int) -> Token:
        span = self._span(pos, len(raw))
        lower = raw.lower()
        if "e" in lower:
            exp = lower.split("e", 1)[1].lstrip("+-")
            if not exp:
                self._error(f"invalid number '{raw}'", span, "an exponent needs digits, e.g. 1e-5")
                return Token("FLOAT", raw, 0.0, span)
            return Token("FLOAT", raw, float(raw), span)
        if "." in raw:
            return Token("FLOAT", raw, float(raw), span)
        value = int(raw)
        if value > I64_MAX:
            self._error(f"invalid number '{raw}'", span, "integers must fit in 64 bits")
            value = 0
        return Token("INT", raw, value, span)

    def _string(self, start: int, tokens: list[Token]) -> int:
        text = self.text
        n = len(text)
        start_line, start_col = self.line, start - self.line_start + 1
        pos = start + 1
        chunks: list[str] = []
        while True:
            # Fast path: copy everything up to the next quote or backslash.
            q = text.find('"', pos)
            b = text.find("\\", pos, q if q >= 0 else n)
            if q < 0:
                self._error(
                    "unterminated string literal",
                    Span(self.source, start_line, start_col, 1),
                    'close the string with "',
                )
                self._advance_lines(start, n)
                return n
            if b < 0:
                chunks.append(text[pos:q])
                pos = q + 1
                break
            chunks.append(text[pos:b])
            if b + 1 >= n:
                pos = b + 1
                continue
            esc = text[b + 1]
            if esc in _SIMPLE_ESCAPES:
                chunks.append(_SIMPLE_ESCAPES[esc])
                pos = b + 2
            elif esc == "u" and text.startswith("{", b + 2):
                close = text.find("}", b + 3, b + 12)
                digits = text[b + 3 : close] if close > 0 else ""
                try:
                    chunks.append(chr(int(digits, 16)))
                    pos = close + 1
                except (ValueError, OverflowError):
                    self._error(
                        "invalid unicode escape",
                        self._span_at(b),
                        r"write \u{XXXX} with 1-6 hex digits",
                    )
                    pos = b + 2
            else:
                chunks.append("\\" + esc)  # unknown escapes are kept verbatim
                pos = b + 2
        raw = text[start:pos]
        span = Span(self.source, start_line, start_col, len(raw) if "\n" not in raw else 1)
        self._advance_lines(start, pos)
        tokens.append(Token("STRING", raw, "".join(chunks), span))
        return pos

    def _span_at(self, pos: int) -> Span:
        line = self.text.count("\n", 0, pos) + 1
        line_start = self.text.rfind("\n", 0, pos) + 1
        return Span(self.source, line, pos - line_start + 1, 2)


def tokenize_with_diagnostics(
    text: str, filename: str = "<string>"
) -> tuple[list[Token], list[Diagnostic]]:
    """Tokenise, returning the tokens (always ending with EOF) and any lexical errors."""
    lexer = Lexer(text if isinstance(text, Source) else Source(text, filename))
    tokens = lexer.tokenize()
    return tokens, lexer.diagnostics


def tokenize(text: str, filename: str = "<string>") -> list[Token]:
    """Tokenise `text`; raise LexError (with every lexical error) if any is found."""
    tokens, diags = tokenize_with_diagnostics(text, filename)
    raise_if_errors(diags, LexError)
    return tokens
