"""The .sw model language front end: lexer, parser, AST, graph IR, validation, shapes, passes.

Pure Python, no tensor dependency. Typical use::

    import shrew_ir
    program = shrew_ir.parse_file("model.sw")      # or shrew_ir.parse(text)
    module = shrew_ir.lower(program)                # Graph IR
    problems = shrew_ir.validate(module)            # list[Diagnostic]
    report = shrew_ir.optimize(module, level=2)     # passes, in place
    print(shrew_ir.dump(module))

Every error raised is an `IRError` carrying `.filename`, `.line`, `.column`.
"""

from .ast import Program
from .dump import dump, to_dot
from .errors import (
    Diagnostic,
    IRError,
    IRImportError,
    LexError,
    LoweringError,
    OptionsError,
    ParseError,
    PassError,
    ShapeError,
    Source,
    Span,
    ValidationError,
    render_diagnostic,
)
from .imports import resolve_imports
from .ir import (
    DimExpr,
    Dynamic,
    Fixed,
    Graph,
    IRModule,
    Node,
    Param,
    ScalarType,
    Symbolic,
    TensorType,
)
from .lexer import tokenize
from .lower import lower
from .ops import OPS, OpDef, lookup
from .parser import parse, parse_file
from .passes import optimize, run_pass
from .printer import format_program
from .shapes import infer_shapes
from .validate import check, validate

__version__ = "0.1.0"


def load(path, optimize_level: int | None = None) -> IRModule:
    """parse_file + lower + check (raises on errors); optionally optimise."""
    module = lower(parse_file(path))
    check(module)
    if optimize_level is not None:
        optimize(module, optimize_level)
    return module


__all__ = [
    "OPS",
    "Diagnostic",
    "DimExpr",
    "Dynamic",
    "Fixed",
    "Graph",
    "IRError",
    "IRImportError",
    "IRModule",
    "LexError",
    "LoweringError",
    "Node",
    "OpDef",
    "OptionsError",
    "Param",
    "ParseError",
    "PassError",
    "Program",
    "ScalarType",
    "ShapeError",
    "Source",
    "Span",
    "Symbolic",
    "TensorType",
    "ValidationError",
    "check",
    "dump",
    "format_program",
    "infer_shapes",
    "load",
    "lookup",
    "lower",
    "optimize",
    "parse",
    "parse_file",
    "render_diagnostic",
    "resolve_imports",
    "run_pass",
    "to_dot",
    "tokenize",
    "validate",
]
