"""Source positions, diagnostics and the IRError hierarchy.

Owns: `Source` (a file's text), `Span` (1-based line/column, columns counted in
characters), `Diagnostic` (severity, message, span, hint), the rustc-style
renderer that prints the source line with a caret, and every exception type the
package raises. All exceptions derive from `IRError`, which carries
`.filename`, `.line`, `.column` (1-based, or None when no position applies).
"""

from __future__ import annotations

from dataclasses import dataclass, field


class Source:
    """The text of one input file (or string), shared by all of its spans."""

    __slots__ = ("filename", "text", "_lines")

    def __init__(self, text: str, filename: str = "<string>") -> None:
        self.filename = filename
        self.text = text
        self._lines: list[str] | None = None

    def line_text(self, line: int) -> str:
        if self._lines is None:
            self._lines = self.text.split("\n")
        if 1 <= line <= len(self._lines):
            return self._lines[line - 1].rstrip("\r")
        return ""

    def __repr__(self) -> str:
        return f"Source({self.filename!r})"


@dataclass(frozen=True, slots=True)
class Span:
    """A position in a source: 1-based line and column, `length` characters wide."""

    source: Source | None
    line: int
    column: int
    length: int = 1

    @property
    def filename(self) -> str:
        return self.source.filename if self.source is not None else "<unknown>"

    def __str__(self) -> str:
        return f"{self.filename}:{self.line}:{self.column}"


UNKNOWN_SPAN = Span(None, 0, 0, 0)

ERROR = "error"
WARNING = "warning"
NOTE = "note"


@dataclass(slots=True)
class Diagnostic:
    """One reported problem: severity ("error"/"warning"), message, span, optional hint."""

    severity: str
    message: str
    span: Span | None = None
    hint: str | None = None
    code: str = ""
    notes: list[tuple[str, Span | None]] = field(default_factory=list)

    @property
    def line(self) -> int | None:
        return self.span.line if self.span is not None and self.span.line else None

    @property
    def column(self) -> int | None:
        return self.span.column if self.span is not None and self.span.line else None

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR

    def render(self) -> str:
        return render_diagnostic(self)

    def __str__(self) -> str:
        where = f"{self.span}: " if self.span is not None and self.span.line else ""
        return f"{where}{self.severity}: {self.message}"


def _excerpt(span: Span, label: str = "") -> list[str]:
    if span.source is None or span.line <= 0:
        return []
    text = span.source.line_text(span.line)
    gutter = " " * len(str(span.line))
    expanded = text.replace("\t", " ")
    caret_pad = " " * max(span.column - 1, 0)
    width = max(1, min(span.length, max(1, len(expanded) - span.column + 1)))
    lines = [
        f"{gutter} |",
        f"{span.line} | {expanded}",
        f"{gutter} | {caret_pad}{'^' * width}{(' ' + label) if label else ''}",
    ]
    return lines


def render_diagnostic(diag: Diagnostic) -> str:
    """Render like rustc/clang::

        error: expected ';', got '}'
         --> model.sw:1:20
          |
        1 | @model { name: "x" }
          |                    ^
          = hint: end the entry with ';'
    """
    out = [f"{diag.severity}: {diag.message}"]
    span = diag.span
    if span is not None and span.line:
        gutter = " " * len(str(span.line))
        out.append(f"{gutter}--> {span}")
        out.extend(_excerpt(span))
        if diag.hint:
            out.append(f"{gutter} = hint: {diag.hint}")
    elif diag.hint:
        out.append(f"  = hint: {diag.hint}")
    for note, nspan in diag.notes:
        if nspan is not None and nspan.line:
            out.append(f"note: {note}")
            gutter = " " * len(str(nspan.line))
            out.append(f"{gutter}--> {nspan}")
            out.extend(_excerpt(nspan))
        else:
            out.append(f"note: {note}")
    return "\n".join(out)


class IRError(Exception):
    """Base of every error raised by shrew_ir.

    `.diagnostics` holds every problem found (the first is the headline one);
    `.filename`, `.line`, `.column` locate the first. `str(err)` is the full
    rendered report with source excerpts and carets.
    """

    default_kind = "error"

    def __init__(
        self,
        message: str,
        span: Span | None = None,
        hint: str | None = None,
        diagnostics: list[Diagnostic] | None = None,
    ) -> None:
        if diagnostics is None:
            diagnostics = [Diagnostic(ERROR, message, span, hint)]
        self.diagnostics = diagnostics
        first = diagnostics[0]
        self.message = first.message
        self.span = first.span
        self.hint = first.hint
        super().__init__(self._render())

    def _render(self) -> str:
        parts = [render_diagnostic(d) for d in self.diagnostics]
        errors = sum(1 for d in self.diagnostics if d.is_error)
        if errors > 1:
            parts.append(f"{errors} errors")
        return "\n\n".join(parts)

    @property
    def filename(self) -> str | None:
        return self.span.filename if self.span is not None and self.span.line else None

    @property
    def line(self) -> int | None:
        return self.span.line if self.span is not None and self.span.line else None

    @property
    def column(self) -> int | None:
        return self.span.column if self.span is not None and self.span.line else None

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_error]


class LexError(IRError):
    """A character sequence that starts no token (bad character, unterminated string...)."""


class ParseError(IRError):
    """A syntax error (may hold several diagnostics thanks to error recovery)."""


class IRImportError(IRError):
    """An `@import` that cannot be resolved: missing file, cycle, or a bad file."""


class LoweringError(IRError):
    """AST that cannot be lowered: config evaluation failures, bad repeat counts..."""


class ValidationError(IRError):
    """Raised by `check()` when validation reports errors (validate() itself returns a list)."""


class ShapeError(IRError):
    """Raised by `infer_shapes(..., strict=True)` when shapes do not agree."""


class PassError(IRError):
    """The verifier found a broken graph after an optimisation pass (an internal bug)."""


class OptionsError(IRError, ValueError):
    """Bad arguments to a public function (for example an unknown optimisation level)."""


def raise_if_errors(diags: list[Diagnostic], exc_type: type[IRError]) -> None:
    """Raise `exc_type` carrying every diagnostic when at least one is an error."""
    errors = [d for d in diags if d.is_error]
    if errors:
        rest = [d for d in diags if not d.is_error]
        raise exc_type(
            errors[0].message, errors[0].span, errors[0].hint, diagnostics=errors + rest
        )
