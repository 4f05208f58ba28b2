"""The pass manager: `optimize(module, level)` and the per-pass entry points.

Owns the pipeline. Level 0 does nothing; level 1 runs DCE, identity
elimination, constant folding and CSE; level 2 (the default) adds operator
fusion. Passes repeat in that order until a full round changes nothing (at
most MAX_ROUNDS). Shape inference runs first (the identity and fusion rules
need types) and after every round, and `verify` runs after every pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import OptionsError
from ..ir import Graph, IRModule
from ..shapes import infer_shapes
from .base import PassResult, verify
from .const_fold import constant_folding
from .cse import common_subexpression_elimination
from .dce import dead_code_elimination
from .fusion import operator_fusion
from .identity import identity_elimination

MAX_ROUNDS = 10
PASSES = {
    "dce": dead_code_elimination,
    "identity": identity_elimination,
    "const_fold": constant_folding,
    "cse": common_subexpression_elimination,
    "fusion": operator_fusion,
}
LEVELS = {
    0: (),
    1: ("dce", "identity", "const_fold", "cse"),
    2: ("dce", "identity", "const_fold", "cse", "fusion"),
}


@dataclass
class OptimizeReport:
    """What optimize() changed: counts per pass, and every change per graph."""

    level: int
    counts: dict[str, int] = field(default_factory=dict)
    changes: dict[str, list[str]] = field(default_factory=dict)  # graph -> messages
    rounds: dict[str, int] = field(default_factory=dict)
    nodes_before: dict[str, int] = field(default_factory=dict)
    nodes_after: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def add(self, graph: str, result: PassResult) -> None:
        self.counts[result.name] = self.counts.get(result.name, 0) + result.changed
        self.changes.setdefault(graph, []).extend(
            f"[{result.name}] {msg}" for msg in result.changes
        )

    def __str__(self) -> str:
        parts = ", ".join(f"{name}: {count}" for name, count in self.counts.items())
        lines = [f"optimize(level={self.level}): {self.total} changes ({parts})"]
        for graph, before in self.nodes_before.items():
            lines.append(f"  {graph}: {before} -> {self.nodes_after.get(graph)} nodes")
        return "\n".join(lines)


def run_pass(module_or_graph, name: str) -> PassResult:
    """Run one pass by name on a module (every graph) or a single graph, then verify."""
    if name not in PASSES:
        raise OptionsError(f"unknown pass '{name}'", None, f"passes: {', '.join(PASSES)}")
    graphs = _graphs(module_or_graph)
    total = PassResult(name)
    if isinstance(module_or_graph, IRModule):
        infer_shapes(module_or_graph)
    for graph in graphs:
        result = PASSES[name](graph)
        verify(graph, name)
        total.changed += result.changed
        total.changes.extend(result.changes)
    return total


def _graphs(module_or_graph) -> list[Graph]:
    if isinstance(module_or_graph, Graph):
        return [module_or_graph]
    if isinstance(module_or_graph, IRModule):
        return list(module_or_graph.graphs.values())
    raise OptionsError(
        f"expected an IRModule or a Graph, got {type(module_or_graph).__name__}", None
    )


def optimize(module: IRModule, level: int = 2, passes: list[str] | None = None) -> OptimizeReport:
    """Optimise every graph of `module` in place and report what changed."""
    if passes is None:
        if level not in LEVELS:
            raise OptionsError(
                f"unknown optimisation level {level!r}", None, "levels are 0, 1 and 2"
            )
        passes = list(LEVELS[level])
    for name in passes:
        if name not in PASSES:
            raise OptionsError(f"unknown pass '{name}'", None, f"passes: {', '.join(PASSES)}")
    report = OptimizeReport(level, {name: 0 for name in passes})
    graphs = _graphs(module)
    for graph in graphs:
        report.nodes_before[graph.name] = len(graph.nodes)
    if not passes:
        report.nodes_after = dict(report.nodes_before)
        return report
    infer_shapes(module)
    for graph in graphs:
        rounds = 0
        while rounds < MAX_ROUNDS:
            rounds += 1
            changed = 0
            for name in passes:
                result = PASSES[name](graph)
                verify(graph, name)
                report.add(graph.name, result)
                changed += result.changed
            if not changed:
                break
            infer_shapes(module)
        report.rounds[graph.name] = rounds
        report.nodes_after[graph.name] = len(graph.nodes)
    return report
