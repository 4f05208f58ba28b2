"""Stable text dump of the IR (what `shrew dump` prints) and Graphviz DOT export.

Owns presentation only. Nodes are listed in a stable topological order
(smallest id first among ready nodes); each line reads
`name#id = op(arg#id, ..., attr=value) : Type  @line:col  [hints]`.
Attribute and config values print as JSON-like literals, so the dump does
not depend on Python's repr of floats beyond `repr(float)`.
"""

from __future__ import annotations

import json

from .ir import Graph, IRModule


def format_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {format_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def _ref(graph: Graph, nid: int) -> str:
    node = graph.nodes.get(nid)
    return f"{node.name}#{nid}" if node is not None else f"<missing>#{nid}"


def format_node(graph: Graph, node, spans: bool = True) -> str:
    args = [_ref(graph, i) for i in node.inputs]
    args += [f"{k}={format_value(v)}" for k, v in sorted(node.attrs.items())]
    line = f"{node.name}#{node.id} = {node.op}({', '.join(args)}) : {node.type}"
    if spans and node.span is not None and node.span.line:
        line += f"  @{node.span.line}:{node.span.column}"
    if node.hints:
        line += f"  [{', '.join(node.hints)}]"
    return line


def dump_graph(graph: Graph, spans: bool = True) -> str:
    lines = [f"graph {graph.name} ({len(graph.nodes)} nodes)"]
    if graph.declared_return is not None:
        lines.append(f"  returns: {graph.declared_return}")
    inputs = []
    for nid in graph.inputs:
        opt = "?" if nid in graph.optional_inputs else ""
        inputs.append(f"{_ref(graph, nid)}{opt}")
    lines.append(f"  inputs: {', '.join(inputs) or '-'}")
    params = []
    for p in graph.params:
        frozen = ", frozen" if p.frozen else ""
        params.append(f"{p.name}#{p.node} [{p.init}{frozen}]")
    lines.append(f"  params: {', '.join(params) or '-'}")
    order = graph.topo_order()
    placed = set(order)
    order += [nid for nid in graph.nodes if nid not in placed]  # cyclic leftovers
    for nid in order:
        lines.append("  " + format_node(graph, graph.nodes[nid], spans))
    outs = ", ".join(f"{o.name} = {_ref(graph, o.node)}" for o in graph.outputs)
    lines.append(f"  outputs: {outs or '-'}")
    for a in graph.asserts:
        msg = f", {json.dumps(a.message)}" if a.message is not None else ""
        lines.append(f"  assert {a.text}{msg}")
    return "\n".join(lines)


def _section(title: str, mapping: dict) -> list[str]:
    if not mapping:
        return []
    return [f"{title}:"] + [f"  {k} = {format_value(v)}" for k, v in mapping.items()]


def dump(module_or_graph, spans: bool = True) -> str:
    """The stable text form of a module (or one graph)."""
    if isinstance(module_or_graph, Graph):
        return dump_graph(module_or_graph, spans) + "\n"
    mod: IRModule = module_or_graph
    lines: list[str] = []
    lines += _section("metadata", mod.metadata)
    lines += _section("config", mod.config)
    if mod.type_aliases:
        lines.append("types:")
        lines += [f"  {k} = {v}" for k, v in mod.type_aliases.items()]
    if mod.imports:
        lines.append("imports: " + ", ".join(sorted(mod.imports)))
    for op in mod.custom_ops.values():
        params = ", ".join(f"{n}: {t}" for n, t, _ in op.params)
        lines.append(f"custom_op {op.name}({params}) -> {op.returns}")
    for graph in mod.graphs.values():
        lines.append(dump_graph(graph, spans))
    t = mod.training
    if t is not None:
        opt = {"type": t.optimizer.type, "lr": t.optimizer.lr, **t.optimizer.extra}
        lines.append("training:")
        lines += [
            f"  model = {t.model}",
            f"  loss = {t.loss}",
            f"  optimizer = {format_value(opt)}",
        ]
        if t.lr_schedule is not None:
            lines.append(f"  lr_schedule = {format_value(t.lr_schedule)}")
        if t.grad_clip is not None:
            lines.append(f"  grad_clip = {format_value(t.grad_clip)}")
        lines += [
            f"  precision = {t.precision}",
            f"  epochs = {t.epochs}",
            f"  batch_size = {t.batch_size}",
            f"  accumulation_steps = {t.accumulation_steps}",
        ]
        lines += [f"  {k} = {format_value(v)}" for k, v in t.extra.items()]
    i = mod.inference
    if i is not None:
        lines.append("inference:")
        lines.append(f"  model = {i.model}")
        for key in ("optimizations", "quantization", "generation", "extra"):
            value = getattr(i, key)
            if value:
                lines.append(f"  {key} = {format_value(value)}")
    return "\n".join(lines) + "\n"


def _dot_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def to_dot(module_or_graph) -> str:
    """Graphviz DOT text: one cluster per graph, edges labelled with the producer's type."""
    graphs = (
        [module_or_graph]
        if isinstance(module_or_graph, Graph)
        else list(module_or_graph.graphs.values())
    )
    lines = ["digraph shrew {", "  rankdir=TB;", '  node [shape=box, fontname="monospace"];']
    for gi, g in enumerate(graphs):
        lines.append(f"  subgraph cluster_{gi} {{")
        lines.append(f'    label="{_dot_escape(g.name)}";')
        params = g.param_ids
        for nid in g.topo_order():
            node = g.nodes[nid]
            shape = "ellipse" if node.op == "input" else "box"
            style = ', style=filled, fillcolor="#e8f0fe"' if nid in params else ""
            label = _dot_escape(f"{node.name}\\n{node.op}")
            lines.append(f'    g{gi}_n{nid} [label="{label}", shape={shape}{style}];')
        for src, dst, _index, ty in g.edges():
            if src in g.nodes:
                lines.append(f'    g{gi}_n{src} -> g{gi}_n{dst} [label="{_dot_escape(str(ty))}"];')
        for k, out in enumerate(g.outputs):
            lines.append(f'    g{gi}_out{k} [label="{_dot_escape(out.name)}", shape=doublecircle];')
            lines.append(f"    g{gi}_n{out.node} -> g{gi}_out{k};")
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"
