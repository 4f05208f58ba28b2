"""Pass infrastructure: results, the pattern -> rewrite engine and the verifier.

Owns `PassResult` (what a pass changed), `Rule` (a named pattern on one op
kind whose rewrite either aliases the node to another value or rewrites it in
place), `apply_rules` (one topological sweep applying rules with live use
counts) and `verify` (the structural invariants every pass must keep; a
violation raises PassError naming the pass).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .. import ops as O
from ..errors import PassError
from ..ir import Graph, Node


@dataclass(slots=True)
class PassResult:
    name: str
    changed: int = 0
    changes: list[str] = field(default_factory=list)

    def record(self, message: str) -> None:
        self.changed += 1
        self.changes.append(message)


class Alias:
    """Rewrite outcome: every use of the node now uses `target` instead."""

    __slots__ = ("target",)

    def __init__(self, target: int) -> None:
        self.target = target


class Replace:
    """Rewrite outcome: the node becomes `op(inputs, attrs)` (same id and name)."""

    __slots__ = ("op", "inputs", "attrs")

    def __init__(self, op: str, inputs: list[int], attrs: dict) -> None:
        self.op = op
        self.inputs = inputs
        self.attrs = attrs


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    ops: tuple[str, ...]
    rewrite: Callable  # (RewriteContext, Node) -> Alias | Replace | None


class RewriteContext:
    """What a rule can see: the graph, live use counts and protected node ids."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.uses: dict[int, int] = {nid: 0 for nid in graph.nodes}
        for node in graph.nodes.values():
            for src in node.inputs:
                if src in self.uses:
                    self.uses[src] += 1
        self.outputs = graph.output_ids
        self.interface = graph.interface_ids

    def node(self, nid: int) -> Node | None:
        return self.graph.nodes.get(nid)

    def single_use(self, nid: int) -> bool:
        """Used by exactly one node input and not a graph output or interface node."""
        return self.uses.get(nid) == 1 and nid not in self.outputs and nid not in self.interface

    def only_used_by(self, nid: int, consumer: Node) -> bool:
        """Every use of nid is an input of `consumer` (it may use it more than once)."""
        return (
            nid not in self.outputs
            and nid not in self.interface
            and self.uses.get(nid) == consumer.inputs.count(nid)
        )

    def constant(self, nid: int):
        node = self.graph.nodes.get(nid)
        if node is not None and node.op == "constant":
            return True, node.attrs.get("value")
        return False, None

    def set_inputs(self, node: Node, inputs: list[int]) -> None:
        for src in node.inputs:
            if src in self.uses:
                self.uses[src] -= 1
        node.inputs = list(inputs)
        for src in node.inputs:
            if src in self.uses:
                self.uses[src] += 1

    def alias(self, old: int, new: int) -> None:
        g = self.graph
        for node in g.nodes.values():
            if old in node.inputs:
                self.set_inputs(node, [new if i == old else i for i in node.inputs])
        for out in g.outputs:
            if out.node == old:
                out.node = new
        self.outputs = g.output_ids


def apply_rules(graph: Graph, rules: list[Rule], result: PassResult) -> None:
    """One sweep in topological order; each node gets the first rule that fires."""
    by_op: dict[str, list[Rule]] = {}
    for rule in rules:
        for op in rule.ops:
            by_op.setdefault(op, []).append(rule)
    ctx = RewriteContext(graph)
    # Alias rewrites touch every consumer; batch them by collecting a forwarding map.
    forward: dict[int, int] = {}
    for nid in graph.topo_order():
        node = graph.nodes.get(nid)
        if node is None:
            continue
        if forward and any(i in forward for i in node.inputs):
            ctx.set_inputs(node, [_follow(forward, i) for i in node.inputs])
        candidates = by_op.get(node.op)
        if not candidates or nid in ctx.interface:
            continue
        for rule in candidates:
            outcome = rule.rewrite(ctx, node)
            if outcome is None:
                continue
            if isinstance(outcome, Alias):
                forward[nid] = outcome.target
                result.record(f"{rule.name}: {node.name} -> {_name(graph, outcome.target)}")
            else:
                result.record(f"{rule.name}: {node.name} ({node.op} -> {outcome.op})")
                node.op = outcome.op
                node.attrs = outcome.attrs
                ctx.set_inputs(node, outcome.inputs)
            break
    if forward:
        for out in graph.outputs:
            out.node = _follow(forward, out.node)


def _follow(forward: dict[int, int], nid: int) -> int:
    seen = 0
    while nid in forward and seen < len(forward) + 1:
        nid = forward[nid]
        seen += 1
    return nid


def _name(graph: Graph, nid: int) -> str:
    node = graph.nodes.get(nid)
    return node.name if node is not None else f"n{nid}"


def verify(graph: Graph, pass_name: str) -> None:
    """Check the invariants every pass must preserve; raise PassError if one breaks."""
    problems: list[str] = []
    nodes = graph.nodes
    for node in nodes.values():
        for src in node.inputs:
            if src not in nodes:
                problems.append(f"node '{node.name}' uses missing n{src}")
        op = O.OPS.get(node.op)
        if op is not None and node.op not in ("input", "param"):
            n = len(node.inputs)
            if n < op.min_inputs or (op.max_inputs >= 0 and n > op.max_inputs):
                problems.append(f"node '{node.name}' ({node.op}) has {n} inputs")
    for nid in graph.inputs:
        if nid not in nodes or nodes[nid].op != "input":
            problems.append(f"graph input n{nid} is missing")
    for param in graph.params:
        if param.node not in nodes or nodes[param.node].op != "param":
            problems.append(f"param '{param.name}' lost its node")
    for out in graph.outputs:
        if out.node not in nodes:
            problems.append(f"output '{out.name}' points at missing n{out.node}")
    if not problems and len(graph.topo_order()) != len(nodes):
        problems.append("the graph has a cycle")
    if problems:
        raise PassError(
            f"pass '{pass_name}' broke graph '{graph.name}': " + "; ".join(problems[:5]),
            None,
            "this is a bug in shrew_ir; please report it with the .sw file",
        )
