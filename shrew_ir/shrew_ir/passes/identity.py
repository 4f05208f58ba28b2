"""Identity elimination: drop nodes that return their input unchanged.

Rules (each only when the result's type equals the input's type, so no
broadcast or dtype promotion is lost): identity(x); x + 0, 0 + x, x - 0,
x * 1, 1 * x, x / 1, x ** 1; reshape/expand to the same fully known shape;
transpose(transpose(x)) over the same dims; permute(permute(x)) composing to
the identity; neg(neg(x)); dropout(x, p: 0); cast(x) to x's own dtype.
"""

from __future__ import annotations

from ..ir import Fixed, Graph, TensorType
from ..shape_rules import normalize_dim
from .base import Alias, PassResult, RewriteContext, Rule, apply_rules


def _same_type(ctx: RewriteContext, node, src: int) -> bool:
    other = ctx.node(src)
    return (
        other is not None
        and isinstance(node.type, TensorType)
        and node.type == other.type
    )


def _identity(ctx, node):
    if len(node.inputs) == 1:
        return Alias(node.inputs[0])
    return None


def _is_const(ctx, nid, value) -> bool:
    ok, v = ctx.constant(nid)
    return ok and isinstance(v, (int, float)) and not isinstance(v, bool) and v == value


def _neutral(ctx, node):
    a, b = node.inputs
    op = node.op
    unit = 0 if op in ("add", "sub") else 1
    if _is_const(ctx, b, unit) and _same_type(ctx, node, a):
        return Alias(a)
    if op in ("add", "mul") and _is_const(ctx, a, unit) and _same_type(ctx, node, b):
        return Alias(b)
    return None


def _same_shape(ctx, node):
    src = node.inputs[0]
    other = ctx.node(src)
    if other is None or not isinstance(other.type, TensorType):
        return None
    if all(isinstance(d, Fixed) for d in other.type.dims) and _same_type(ctx, node, src):
        return Alias(src)
    return None


def _pair(node, rank):
    a = normalize_dim(node.attrs.get("dim0", -2), rank)
    b = normalize_dim(node.attrs.get("dim1", -1), rank)
    return frozenset((a, b))


def _double_transpose(ctx, node):
    inner = ctx.node(node.inputs[0])
    if inner is None or inner.op != "transpose":
        return None
    src = ctx.node(inner.inputs[0])
    if src is None or not isinstance(src.type, TensorType):
        return None
    rank = src.type.rank
    if rank >= 2 and _pair(node, rank) == _pair(inner, rank) and node.type == src.type:
        return Alias(src.id)
    return None


def _double_permute(ctx, node):
    inner = ctx.node(node.inputs[0])
    if inner is None or inner.op != "permute":
        return None
    src = ctx.node(inner.inputs[0])
    if src is None or not isinstance(src.type, TensorType):
        return None
    rank = src.type.rank
    p = [normalize_dim(d, rank) for d in inner.attrs.get("dims", [])]
    q = [normalize_dim(d, rank) for d in node.attrs.get("dims", [])]
    if len(p) == len(q) == rank and None not in p and None not in q:
        if [p[i] for i in q] == list(range(rank)):
            return Alias(src.id)
    return None


def _double_neg(ctx, node):
    inner = ctx.node(node.inputs[0])
    if inner is not None and inner.op == "neg" and len(inner.inputs) == 1:
        return Alias(inner.inputs[0])
    return None


def _dropout_zero(ctx, node):
    p = node.attrs.get("p", 0.5)
    if p == 0 and not isinstance(p, bool):
        return Alias(node.inputs[0])
    return None


def _noop_cast(ctx, node):
    src = ctx.node(node.inputs[0])
    dtype = getattr(src.type, "dtype", None) if src is not None else None
    if dtype is not None and dtype == node.attrs.get("dtype") and _same_type(ctx, node, src.id):
        return Alias(src.id)
    return None


RULES = [
    Rule("identity", ("identity",), _identity),
    Rule("neutral_element", ("add", "sub", "mul", "div", "pow"), _neutral),
    Rule("same_shape", ("reshape", "expand"), _same_shape),
    Rule("double_transpose", ("transpose",), _double_transpose),
    Rule("double_permute", ("permute",), _double_permute),
    Rule("double_neg", ("neg",), _double_neg),
    Rule("dropout_p0", ("dropout",), _dropout_zero),
    Rule("noop_cast", ("cast",), _noop_cast),
]


def identity_elimination(graph: Graph) -> PassResult:
    result = PassResult("identity")
    apply_rules(graph, RULES, result)
    return result
