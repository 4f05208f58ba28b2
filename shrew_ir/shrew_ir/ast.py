"""The typed AST of a .sw program (dataclasses).

Owns the syntax tree only: expressions, type expressions, graph statements and
top-level items. Every node has a `span` that is excluded from equality, so two
trees parsed from differently formatted but equivalent sources compare equal
(this is what the printer round-trip tests rely on).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import UNKNOWN_SPAN, Span


def _span() -> Span:
    return field(default=UNKNOWN_SPAN, compare=False, repr=False)


# --------------------------------------------------------------------------- expressions


@dataclass(slots=True)
class Expr:
    pass


@dataclass(slots=True)
class IntLit(Expr):
    value: int
    span: Span = _span()


@dataclass(slots=True)
class FloatLit(Expr):
    value: float
    span: Span = _span()


@dataclass(slots=True)
class StrLit(Expr):
    value: str
    span: Span = _span()


@dataclass(slots=True)
class BoolLit(Expr):
    value: bool
    span: Span = _span()


@dataclass(slots=True)
class NullLit(Expr):
    span: Span = _span()


@dataclass(slots=True)
class Name(Expr):
    """A name; `a::b::c` has parts ("a", "b", "c")."""

    parts: tuple[str, ...]
    span: Span = _span()

    @property
    def text(self) -> str:
        return "::".join(self.parts)


@dataclass(slots=True)
class Paren(Expr):
    inner: Expr
    span: Span = _span()


@dataclass(slots=True)
class Unary(Expr):
    op: str  # "-", "!", "~"
    operand: Expr
    span: Span = _span()


@dataclass(slots=True)
class Binary(Expr):
    op: str  # the operator text: "+", "**", "??", "@", "&&", ...
    left: Expr
    right: Expr
    span: Span = _span()


@dataclass(slots=True)
class RangeExpr(Expr):
    """`start..end` (half-open)."""

    start: Expr
    end: Expr
    span: Span = _span()


@dataclass(slots=True)
class Arg:
    name: str | None
    value: Expr
    span: Span = _span()


@dataclass(slots=True)
class Call(Expr):
    """`f(args)`, `a::f(args)`, `x.f(args)` (callee is a Member) or `call f(args)`."""

    callee: Expr
    args: list[Arg]
    explicit: bool = False  # written with the `call` keyword
    span: Span = _span()

    @property
    def func_name(self) -> str | None:
        return self.callee.text if isinstance(self.callee, Name) else None


@dataclass(slots=True)
class Member(Expr):
    obj: Expr
    name: str
    span: Span = _span()


@dataclass(slots=True)
class Index(Expr):
    obj: Expr
    index: Expr
    span: Span = _span()


@dataclass(slots=True)
class Slice(Expr):
    obj: Expr
    start: Expr | None
    stop: Expr | None
    span: Span = _span()


@dataclass(slots=True)
class ListExpr(Expr):
    items: list[Expr]
    span: Span = _span()


@dataclass(slots=True)
class DictExpr(Expr):
    entries: list[tuple[str, Expr]]
    span: Span = _span()


@dataclass(slots=True)
class IfExpr(Expr):
    cond: Expr
    then: Expr
    otherwise: Expr | None
    span: Span = _span()


@dataclass(slots=True)
class RepeatExpr(Expr):
    count: Expr
    body: Expr
    span: Span = _span()


@dataclass(slots=True)
class Closure(Expr):
    params: list[str]
    body: Expr
    span: Span = _span()


# --------------------------------------------------------------------------- types


@dataclass(slots=True)
class Dim:
    pass


@dataclass(slots=True)
class DimInt(Dim):
    value: int
    span: Span = _span()


@dataclass(slots=True)
class DimName(Dim):
    name: str
    span: Span = _span()


@dataclass(slots=True)
class DimDynamic(Dim):
    text: str = "?"  # "?" or "_"
    span: Span = _span()


@dataclass(slots=True)
class DimBinary(Dim):
    op: str  # + - * / %
    left: Dim
    right: Dim
    span: Span = _span()


@dataclass(slots=True)
class DimParen(Dim):
    inner: Dim
    span: Span = _span()


@dataclass(slots=True)
class TypeExpr:
    pass


@dataclass(slots=True)
class TensorTypeExpr(TypeExpr):
    dims: list[Dim]
    dtype: str
    span: Span = _span()


@dataclass(slots=True)
class ScalarTypeExpr(TypeExpr):
    dtype: str
    span: Span = _span()


@dataclass(slots=True)
class IntDimTypeExpr(TypeExpr):
    """An integer used as a type: shorthand for Tensor<[n], f32>."""

    value: int
    span: Span = _span()


@dataclass(slots=True)
class DynamicTypeExpr(TypeExpr):
    span: Span = _span()


@dataclass(slots=True)
class NamedTypeExpr(TypeExpr):
    name: str
    span: Span = _span()


@dataclass(slots=True)
class TupleTypeExpr(TypeExpr):
    items: list[TypeExpr]
    span: Span = _span()


@dataclass(slots=True)
class ListTypeExpr(TypeExpr):
    item: TypeExpr
    span: Span = _span()


@dataclass(slots=True)
class DictTypeExpr(TypeExpr):
    entries: list[tuple[str, TypeExpr]]
    span: Span = _span()


# --------------------------------------------------------------------------- shared pieces


@dataclass(slots=True)
class Field:
    """`key: value;` — value is an expression, or a SubBlock for `key: { ... }`."""

    key: str
    value: Expr | SubBlock
    span: Span = _span()


@dataclass(slots=True)
class SubBlock:
    fields: list[Field]
    span: Span = _span()


@dataclass(slots=True)
class ParamDef:
    """A signature parameter `name: Type[?]`."""

    name: str
    type: TypeExpr
    optional: bool = False
    span: Span = _span()


# --------------------------------------------------------------------------- graph statements


@dataclass(slots=True)
class Stmt:
    pass


@dataclass(slots=True)
class InputDecl(Stmt):
    name: str
    type: TypeExpr
    optional: bool = False
    span: Span = _span()


@dataclass(slots=True)
class OutputDecl(Stmt):
    name: str | None
    expr: Expr
    span: Span = _span()


@dataclass(slots=True)
class ParamDecl(Stmt):
    name: str
    type: TypeExpr
    fields: list[Field] | None = None
    span: Span = _span()


@dataclass(slots=True)
class HintStmt(Stmt):
    name: str
    span: Span = _span()


@dataclass(slots=True)
class OpStmt(Stmt):
    expr: Expr
    span: Span = _span()


@dataclass(slots=True)
class NodeInputStmt(Stmt):
    expr: Expr
    span: Span = _span()


@dataclass(slots=True)
class NodeOutputStmt(Stmt):
    type: TypeExpr
    span: Span = _span()


@dataclass(slots=True)
class NodeDecl(Stmt):
    """`node name [: [Type]] [{ body }];` — body holds OpStmt/HintStmt/Field/... items."""

    name: str
    type: TypeExpr | None = None
    body: list[Stmt | Field] | None = None
    colon: bool = False
    span: Span = _span()


@dataclass(slots=True)
class AssertStmt(Stmt):
    expr: Expr
    message: str | None = None
    span: Span = _span()


@dataclass(slots=True)
class CheckBlock(Stmt):
    name: str
    asserts: list[AssertStmt]
    span: Span = _span()


# --------------------------------------------------------------------------- top-level items


@dataclass(slots=True)
class Item:
    pass


@dataclass(slots=True)
class Import(Item):
    path: str
    alias: str | None = None
    span: Span = _span()


@dataclass(slots=True)
class ModelBlock(Item):
    fields: list[Field]
    span: Span = _span()


@dataclass(slots=True)
class ConfigBlock(Item):
    fields: list[Field]
    span: Span = _span()


@dataclass(slots=True)
class TypeDef:
    name: str
    type: TypeExpr
    span: Span = _span()


@dataclass(slots=True)
class TypesBlock(Item):
    defs: list[TypeDef]
    span: Span = _span()


@dataclass(slots=True)
class GraphBlock(Item):
    name: str
    params: list[ParamDef] | None
    returns: TypeExpr | None
    body: list[Stmt]
    span: Span = _span()


@dataclass(slots=True)
class Signature(Stmt):
    params: list[ParamDef]
    returns: TypeExpr
    span: Span = _span()


@dataclass(slots=True)
class ImplBlock(Stmt):
    target: str
    fields: list[Field]
    span: Span = _span()


@dataclass(slots=True)
class GradientBlock(Stmt):
    name: str
    body: list[Stmt | Field]
    span: Span = _span()


@dataclass(slots=True)
class CustomOpBlock(Item):
    name: str
    body: list[Stmt | Field]
    span: Span = _span()


@dataclass(slots=True)
class TrainingBlock(Item):
    fields: list[Field]
    span: Span = _span()


@dataclass(slots=True)
class InferenceBlock(Item):
    fields: list[Field]
    span: Span = _span()


@dataclass(slots=True)
class Track:
    name: str
    fields: list[Field]
    span: Span = _span()


@dataclass(slots=True)
class MetricsBlock(Item):
    name: str
    tracks: list[Track]
    span: Span = _span()


@dataclass(slots=True)
class LoggingBlock(Item):
    fields: list[Field]
    span: Span = _span()


@dataclass(slots=True)
class Plot:
    name: str
    fields: list[Field]
    span: Span = _span()


@dataclass(slots=True)
class VisualizationsBlock(Item):
    plots: list[Plot]
    span: Span = _span()


@dataclass(slots=True)
class Program:
    """A parsed file. `imports` maps alias -> resolved Program (filled by resolve_imports)."""

    items: list[Item]
    filename: str = field(default="<string>", compare=False)
    span: Span = _span()
    imports: dict[str, Program] = field(default_factory=dict, compare=False, repr=False)
    imports_resolved: bool = field(default=False, compare=False, repr=False)

    def of_type(self, kind: type) -> list:
        return [item for item in self.items if isinstance(item, kind)]

    @property
    def graphs(self) -> list[GraphBlock]:
        return self.of_type(GraphBlock)
