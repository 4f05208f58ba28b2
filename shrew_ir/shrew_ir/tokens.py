"""Token kinds and the reserved-word tables of the .sw language.

Owns: `Token`, the reserved word groups (keywords, hint words, device words,
dtypes), the directive names and the operator spellings. Token kinds are short
strings: "IDENT", "KEYWORD" (keyword, hint word or device word — usable as a
name), "DTYPE", "TENSOR", "TRUE", "FALSE", "NULL", "INT", "FLOAT", "STRING",
"DIRECTIVE", "EOF", or the operator/punctuation text itself ("{", "->", "**").
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import Span

KEYWORDS = frozenset(
    """input output param node op call if else repeat scan for in type init gradient impl
    signature as track plot range model loss optimizer lr_schedule grad_clip precision
    accumulation_steps optimizations quantization generation backend checkpoints frozen
    device source compute aggregate log_every""".split()
)
HINT_WORDS = frozenset(["recompute_in_backward", "must_preserve", "in_place", "no_grad"])
DEVICE_WORDS = frozenset(["cpu", "gpu", "tpu"])
DTYPE_WORDS = frozenset(
    "f16 f32 f64 bf16 i8 i16 i32 i64 u8 u16 u32 u64 bool complex64 complex128".split()
)
DIRECTIVES = frozenset(
    """model config types graph custom_op training inference metrics logging visualizations
    import assert check hint""".split()
)

# Longest first so that the lexer's alternation takes the longest match.
MULTI_CHAR_OPS = ("->", "::", "**", "==", "!=", "<=", ">=", "<<", ">>", "&&", "||", "??", "..")
SINGLE_CHAR_OPS = "{}()[];,.:+-*/%^&|!~=<>?@"

NAME_KINDS = frozenset(["IDENT", "KEYWORD"])

# How a token kind is named in "expected X" messages.
KIND_NAMES = {
    "IDENT": "an identifier",
    "KEYWORD": "a keyword",
    "DTYPE": "a dtype",
    "TENSOR": "'Tensor'",
    "INT": "an integer",
    "FLOAT": "a float",
    "STRING": "a string literal",
    "DIRECTIVE": "a directive",
    "EOF": "end of input",
}


@dataclass(slots=True)
class Token:
    kind: str
    text: str
    value: object
    span: Span

    def describe(self) -> str:
        """How the token is shown in `got ...` messages."""
        if self.kind == "EOF":
            return "end of input"
        if self.kind == "STRING":
            return f"string {self.text}" if len(self.text) <= 30 else "a string literal"
        if self.kind in ("INT", "FLOAT"):
            return f"number {self.text}"
        if self.kind == "DIRECTIVE":
            return f"directive '{self.text}'"
        if self.kind in ("KEYWORD", "DTYPE", "TENSOR", "TRUE", "FALSE", "NULL"):
            return f"keyword '{self.text}'"
        if self.kind == "IDENT":
            return f"identifier '{self.text}'"
        return f"'{self.text}'"

    def is_name(self) -> bool:
        return self.kind in NAME_KINDS


def classify_word(word: str) -> str:
    if word in KEYWORDS or word in HINT_WORDS or word in DEVICE_WORDS:
        return "KEYWORD"
    if word in DTYPE_WORDS:
        return "DTYPE"
    if word == "Tensor":
        return "TENSOR"
    if word == "true":
        return "TRUE"
    if word == "false":
        return "FALSE"
    if word == "null":
        return "NULL"
    return "IDENT"
