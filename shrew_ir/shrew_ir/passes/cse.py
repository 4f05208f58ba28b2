"""Common-subexpression elimination: merge nodes computing the same thing.

Two nodes merge when they have the same op, the same inputs (in order, or as
a multiset for commutative ops) and equal attributes, compared with their
Python types so `1` and `1.0` never merge. Impure ops (dropout, ops that own
implicit weights such as transformer_block, custom ops, graph calls and
interface nodes) are never merged.
"""

from __future__ import annotations

from .. import ops as O
from ..ir import Graph
from .base import PassResult, RewriteContext


def _freeze(value):
    if isinstance(value, list):
        return ("list", tuple(_freeze(v) for v in value))
    if isinstance(value, dict):
        return ("dict", tuple(sorted((k, _freeze(v)) for k, v in value.items())))
    return (type(value).__name__, value)


def common_subexpression_elimination(graph: Graph) -> PassResult:
    result = PassResult("cse")
    ctx = RewriteContext(graph)
    seen: dict[tuple, int] = {}
    forward: dict[int, int] = {}
    for nid in graph.topo_order():
        node = graph.nodes[nid]
        if forward and any(i in forward for i in node.inputs):
            ctx.set_inputs(node, [forward.get(i, i) for i in node.inputs])
        op = O.OPS.get(node.op)
        if op is None or not op.pure or nid in ctx.interface:
            continue
        inputs = tuple(sorted(node.inputs)) if op.commutative else tuple(node.inputs)
        key = (node.op, inputs, _freeze(node.attrs))
        first = seen.get(key)
        if first is None:
            seen[key] = nid
            continue
        forward[nid] = first
        result.record(f"{node.name} merged into {graph.nodes[first].name}")
    if forward:
        for out in graph.outputs:
            out.node = forward.get(out.node, out.node)
        graph.remove_nodes(forward)
    return result
