"""Dead-code elimination: remove computed nodes that no output depends on.

Graph inputs and params are never removed (they are the graph's interface
and its checkpoint layout); node ids are stable, so nothing is renumbered
(the original's renumbering bug that dropped params cannot happen).
"""

from __future__ import annotations

from ..ir import Graph
from .base import PassResult


def dead_code_elimination(graph: Graph) -> PassResult:
    result = PassResult("dce")
    live: set[int] = set()
    stack = [o.node for o in graph.outputs]
    nodes = graph.nodes
    while stack:
        nid = stack.pop()
        if nid in live or nid not in nodes:
            continue
        live.add(nid)
        stack.extend(nodes[nid].inputs)
    keep = graph.interface_ids
    dead = [nid for nid in nodes if nid not in live and nid not in keep]
    for nid in dead:
        result.record(f"removed {nodes[nid].name} ({nodes[nid].op})")
    graph.remove_nodes(dead)
    return result
