"""Constant folding: evaluate ops whose inputs are all scalar constants.

Folds elementwise arithmetic, comparisons, logic and the unary math functions
over int/float/bool scalars with tensor semantics (`div` is true division,
`mod` takes the sign of the divisor, results keep Python's int/float kind).
Division by zero and results that are not finite are left unfolded.
"""

from __future__ import annotations

import math

from ..ir import Graph
from .base import PassResult, Replace, RewriteContext, Rule, apply_rules

_UNARY = {
    "neg": lambda x: -x,
    "abs": abs,
    "relu": lambda x: x if x > 0 else type(x)(0),
    "sigmoid": lambda x: 1.0 / (1.0 + math.exp(-x)),
    "tanh": math.tanh,
    "exp": math.exp,
    "log": math.log,
    "sqrt": math.sqrt,
    "rsqrt": lambda x: 1.0 / math.sqrt(x),
    "sin": math.sin,
    "cos": math.cos,
    "reciprocal": lambda x: 1.0 / x,
    "square": lambda x: x * x,
    "floor": math.floor,
    "ceil": math.ceil,
    "not": lambda x: not x,
}
_BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "mod": lambda a, b: a % b,
    "pow": lambda a, b: a**b,
    "maximum": max,
    "minimum": min,
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "lt": lambda a, b: a < b,
    "gt": lambda a, b: a > b,
    "le": lambda a, b: a <= b,
    "ge": lambda a, b: a >= b,
    "and": lambda a, b: bool(a and b),
    "or": lambda a, b: bool(a or b),
}
_BOOL_ONLY = {"not", "and", "or"}


def _scalar(value) -> bool:
    return isinstance(value, (int, float, bool))


def _fold(ctx: RewriteContext, node):
    values = []
    for src in node.inputs:
        ok, value = ctx.constant(src)
        if not ok or not _scalar(value):
            return None
        values.append(value)
    fn = _UNARY.get(node.op) if len(values) == 1 else _BINARY.get(node.op)
    if fn is None or not values:
        return None
    is_bool = [isinstance(v, bool) for v in values]
    if node.op in _BOOL_ONLY:
        if not all(is_bool):
            return None
    elif any(is_bool):
        return None
    try:
        result = fn(*values)
    except (ZeroDivisionError, ValueError, OverflowError, TypeError):
        return None
    if isinstance(result, complex) or (isinstance(result, float) and not math.isfinite(result)):
        return None
    if node.op == "pow" and isinstance(result, float) and all(isinstance(v, int) for v in values):
        return None  # int ** negative int: leave to the runtime's integer semantics
    return Replace("constant", [], {"value": result})


RULES = [Rule("fold", tuple(_UNARY) + tuple(_BINARY), _fold)]


def constant_folding(graph: Graph) -> PassResult:
    result = PassResult("const_fold")
    apply_rules(graph, RULES, result)
    return result
