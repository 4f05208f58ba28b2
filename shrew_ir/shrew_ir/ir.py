"""The Graph IR: types, dims, nodes, graphs and the module.

Owns the data model produced by lowering and consumed by validation, shape
inference, the passes and the runtime:

* dims: `Fixed(n)`, `Symbolic("Batch")`, `Dynamic()` (`?`) and `DimExpr`
  (arithmetic over dims, e.g. `d_model / 2`, simplified when possible);
* types: `TensorType(dims, dtype)`, `ScalarType(dtype, weak)`, `StrType`,
  `NullType`, `TupleType`, `ListType`, `UNKNOWN`;
* `Node` (id, name, op, inputs, attrs, type, span, hints), `Graph`, `Param`,
  `Output`, `IRModule` with `.graphs`, `.config`, `.metadata`, `.training`,
  `.inference`.

Node ids are stable integers: passes delete and add nodes but never renumber,
so params/inputs/outputs can never drift out of sync.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any

from .errors import Diagnostic, Span

# --------------------------------------------------------------------------- dtypes

DTYPES = (
    "f16",
    "f32",
    "f64",
    "bf16",
    "i8",
    "i16",
    "i32",
    "i64",
    "u8",
    "u16",
    "u32",
    "u64",
    "bool",
    "complex64",
    "complex128",
)
FLOAT_DTYPES = frozenset(["f16", "f32", "f64", "bf16"])
INT_DTYPES = frozenset(["i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64"])
COMPLEX_DTYPES = frozenset(["complex64", "complex128"])


def is_float(dtype: str) -> bool:
    return dtype in FLOAT_DTYPES


def is_int(dtype: str) -> bool:
    return dtype in INT_DTYPES


# --------------------------------------------------------------------------- dims


@dataclass(frozen=True, slots=True)
class Fixed:
    value: int

    def __str__(self) -> str:
        return str(self.value)


@dataclass(frozen=True, slots=True)
class Symbolic:
    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class Dynamic:
    def __str__(self) -> str:
        return "?"


@dataclass(frozen=True, slots=True)
class DimExpr:
    op: str  # + - * / %
    left: Dim
    right: Dim

    def __str__(self) -> str:
        return f"({self.left} {self.op} {self.right})"


Dim = Fixed | Symbolic | Dynamic | DimExpr
DYNAMIC = Dynamic()


def dim_binop(op: str, a: Dim, b: Dim) -> Dim:
    """Arithmetic on dims, folding what is known (`/` is exact division when it divides)."""
    if isinstance(a, Dynamic) or isinstance(b, Dynamic):
        return DYNAMIC
    if isinstance(a, Fixed) and isinstance(b, Fixed):
        x, y = a.value, b.value
        if op == "+":
            return Fixed(x + y)
        if op == "-":
            return Fixed(x - y)
        if op == "*":
            return Fixed(x * y)
        if op in ("/", "%") and y == 0:
            return DYNAMIC
        if op == "/":
            return Fixed(int(x / y)) if x % y else Fixed(x // y)
        if op == "%":
            return Fixed(x % y)
    if op == "*" and (a == Fixed(1) or b == Fixed(1)):
        return b if a == Fixed(1) else a
    if op in ("+", "-") and b == Fixed(0):
        return a
    if op == "+" and a == Fixed(0):
        return b
    if op == "/" and b == Fixed(1):
        return a
    return DimExpr(op, a, b)


def dim_value(dim: Dim) -> int | None:
    return dim.value if isinstance(dim, Fixed) else None


def substitute_dim(dim: Dim, bindings: dict[str, int]) -> Dim:
    if isinstance(dim, Symbolic) and dim.name in bindings:
        return Fixed(bindings[dim.name])
    if isinstance(dim, DimExpr):
        return dim_binop(
            dim.op, substitute_dim(dim.left, bindings), substitute_dim(dim.right, bindings)
        )
    return dim


# --------------------------------------------------------------------------- types


class Type:
    """Base of IR types."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class TensorType(Type):
    dims: tuple[Dim, ...]
    dtype: str

    @property
    def rank(self) -> int:
        return len(self.dims)

    def __str__(self) -> str:
        return f"Tensor<[{', '.join(str(d) for d in self.dims)}], {self.dtype}>"


@dataclass(frozen=True, slots=True)
class ScalarType(Type):
    """A scalar. `weak` scalars (from literals) take the dtype of the tensor they meet."""

    dtype: str
    weak: bool = False

    def __str__(self) -> str:
        return self.dtype


@dataclass(frozen=True, slots=True)
class StrType(Type):
    def __str__(self) -> str:
        return "str"


@dataclass(frozen=True, slots=True)
class NullType(Type):
    def __str__(self) -> str:
        return "null"


@dataclass(frozen=True, slots=True)
class TupleType(Type):
    items: tuple[Type, ...]

    def __str__(self) -> str:
        return "(" + ", ".join(str(t) for t in self.items) + ")"


@dataclass(frozen=True, slots=True)
class ListType(Type):
    item: Type

    def __str__(self) -> str:
        return f"[{self.item}]"


@dataclass(frozen=True, slots=True)
class UnknownType(Type):
    def __str__(self) -> str:
        return "?"


UNKNOWN = UnknownType()


def dtype_of(ty: Type) -> str | None:
    if isinstance(ty, (TensorType, ScalarType)):
        return ty.dtype
    return None


# --------------------------------------------------------------------------- graph pieces


@dataclass(slots=True, eq=False)
class Node:
    """One value of a graph. `inputs` are node ids; `attrs` hold int/float/str/bool/list/None."""

    id: int
    name: str
    op: str
    inputs: list[int]
    attrs: dict[str, Any] = field(default_factory=dict)
    type: Type = UNKNOWN
    span: Span | None = None
    hints: list[str] = field(default_factory=list)
    declared_type: Type | None = None  # the type written in the source, if any
    meta: dict[str, Any] = field(default_factory=dict)  # provenance, not semantics

    def __repr__(self) -> str:
        return f"Node(n{self.id} {self.name}={self.op}{self.inputs})"


@dataclass(slots=True)
class InitSpec:
    """How a param is initialised: kind is zeros/ones/normal/uniform/xavier_*/kaiming_*/custom."""

    kind: str
    args: dict[str, float] = field(default_factory=dict)
    text: str = ""

    def __str__(self) -> str:
        if self.args:
            inner = ", ".join(f"{k}={v:g}" for k, v in self.args.items())
            return f"{self.kind}({inner})"
        return self.kind if self.kind != "custom" else f"custom({self.text!r})"


@dataclass(slots=True)
class Param:
    name: str
    node: int
    type: Type
    init: InitSpec = field(default_factory=lambda: InitSpec("zeros"))
    frozen: bool = False
    attrs: dict[str, Any] = field(default_factory=dict)
    span: Span | None = None


@dataclass(slots=True)
class Output:
    name: str
    node: int
    span: Span | None = None


@dataclass(slots=True)
class Assertion:
    expr: Any  # an ast.Expr
    text: str
    message: str | None
    span: Span | None
    check: str | None = None  # the @check block name, if any


class Graph:
    """A named dataflow graph. Nodes are kept in a dict keyed by id (insertion order)."""

    def __init__(self, name: str, span: Span | None = None) -> None:
        self.name = name
        self.span = span
        self.nodes: dict[int, Node] = {}
        self.inputs: list[int] = []
        self.params: list[Param] = []
        self.outputs: list[Output] = []
        self.asserts: list[Assertion] = []
        self.optional_inputs: set[int] = set()
        self.declared_return: Type | None = None
        self.return_span: Span | None = None
        self.next_id = 0

    # ------------------------------------------------------------------ construction

    def add_node(
        self,
        name: str,
        op: str,
        inputs: list[int] | None = None,
        attrs: dict[str, Any] | None = None,
        span: Span | None = None,
        type: Type = UNKNOWN,
    ) -> Node:
        node = Node(self.next_id, name, op, list(inputs or []), dict(attrs or {}), type, span)
        self.nodes[node.id] = node
        self.next_id += 1
        return node

    # ------------------------------------------------------------------ queries

    def node(self, node_id: int) -> Node:
        return self.nodes[node_id]

    def by_name(self, name: str) -> Node | None:
        for node in self.nodes.values():
            if node.name == name:
                return node
        return None

    @property
    def param_ids(self) -> set[int]:
        return {p.node for p in self.params}

    @property
    def interface_ids(self) -> set[int]:
        """Graph inputs and params: nodes that passes must never remove or rewrite."""
        return set(self.inputs) | self.param_ids

    @property
    def output_ids(self) -> set[int]:
        return {o.node for o in self.outputs}

    def consumers(self) -> dict[int, list[int]]:
        """node id -> ids of the nodes using it (one entry per use)."""
        users: dict[int, list[int]] = {nid: [] for nid in self.nodes}
        for node in self.nodes.values():
            for src in node.inputs:
                if src in users:
                    users[src].append(node.id)
        return users

    def topo_order(self) -> list[int]:
        """Kahn's algorithm, smallest id first among ready nodes (stable, iterative).

        On a cyclic graph, the nodes on or behind a cycle are missing from the result.
        """
        indegree = {nid: 0 for nid in self.nodes}
        users: dict[int, list[int]] = {nid: [] for nid in self.nodes}
        for node in self.nodes.values():
            for src in node.inputs:
                if src in users:
                    indegree[node.id] += 1
                    users[src].append(node.id)
        ready = [nid for nid, deg in indegree.items() if deg == 0]
        heapq.heapify(ready)
        order: list[int] = []
        while ready:
            nid = heapq.heappop(ready)
            order.append(nid)
            for user in users[nid]:
                indegree[user] -= 1
                if indegree[user] == 0:
                    heapq.heappush(ready, user)
        return order

    def edges(self):
        """Yield typed edges (src_id, dst_id, input_index, src_type)."""
        for node in self.nodes.values():
            for index, src in enumerate(node.inputs):
                producer = self.nodes.get(src)
                yield src, node.id, index, producer.type if producer else UNKNOWN

    # ------------------------------------------------------------------ rewriting

    def replace_uses(self, old: int, new: int) -> int:
        """Point every use of `old` (node inputs and graph outputs) at `new`."""
        count = 0
        for node in self.nodes.values():
            if old in node.inputs:
                node.inputs = [new if i == old else i for i in node.inputs]
                count += 1
        for out in self.outputs:
            if out.node == old:
                out.node = new
                count += 1
        return count

    def remove_nodes(self, ids) -> None:
        for nid in ids:
            self.nodes.pop(nid, None)

    def __repr__(self) -> str:
        return f"Graph({self.name!r}, {len(self.nodes)} nodes)"


# --------------------------------------------------------------------------- module


@dataclass(slots=True)
class OptimizerConfig:
    type: str = "SGD"
    lr: float = 0.01
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class TrainingConfig:
    model: str = ""
    loss: str = ""
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    lr_schedule: dict[str, Any] | None = None
    grad_clip: dict[str, Any] | None = None
    precision: str = "fp32"
    epochs: int = 1
    batch_size: int = 1
    accumulation_steps: int = 1
    extra: dict[str, Any] = field(default_factory=dict)
    span: Span | None = None
    model_span: Span | None = None
    loss_span: Span | None = None


@dataclass(slots=True)
class InferenceConfig:
    model: str = ""
    optimizations: list[Any] = field(default_factory=list)
    quantization: dict[str, Any] = field(default_factory=dict)
    generation: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    span: Span | None = None
    model_span: Span | None = None


@dataclass(slots=True)
class CustomOp:
    """A `@custom_op` declaration: its signature gives arity and types to calls."""

    name: str
    params: list[tuple[str, Type, bool]] = field(default_factory=list)  # (name, type, is_tensor)
    returns: Type = UNKNOWN
    impls: dict[str, dict[str, Any]] = field(default_factory=dict)
    gradients: dict[str, dict[str, Any]] = field(default_factory=dict)
    has_signature: bool = False
    span: Span | None = None


@dataclass(slots=True)
class IRModule:
    graphs: dict[str, Graph] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    type_aliases: dict[str, Type] = field(default_factory=dict)
    training: TrainingConfig | None = None
    inference: InferenceConfig | None = None
    custom_ops: dict[str, CustomOp] = field(default_factory=dict)
    imports: dict[str, IRModule] = field(default_factory=dict)
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    logging: dict[str, Any] = field(default_factory=dict)
    visualizations: dict[str, dict[str, Any]] = field(default_factory=dict)
    filename: str = "<string>"
    diagnostics: list[Diagnostic] = field(default_factory=list)  # found while lowering

    @property
    def graph(self) -> Graph:
        """The first graph (the model, unless @training names another)."""
        return next(iter(self.graphs.values()))
