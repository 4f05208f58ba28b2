"""Operator fusion.

Rules, in order:
* `add(matmul(x, transpose(w)), b)` (either operand order) -> `linear(x, w, b)`
  when w is 2-D and the transpose swaps its two dims;
* `matmul(x, transpose(w))` -> `linear(x, w)` under the same condition;
* `add(linear(x, w), b)` (bias-less linear) -> `linear(x, w, b)`;
* `add(matmul(a, b), c)` (either operand order) -> `matmul_add(a, b, c)`;
* chains of elementwise ops -> one `fused_elementwise` node whose `steps`
  list the ops in order and whose `expr` shows the expression.

A producer is absorbed only when its single use is the node being rewritten
and it is not a graph output, so no value is computed twice.

`steps` format: a list of `[op, arg, ...]`; an arg is "$i" (the fused node's
input i), "%k" (the result of step k) or a number literal. The last step is
the result. Example: relu(x + b) * 2.0 ->
`[["add", "$0", "$1"], ["relu", "%0"], ["mul", "%1", 2.0]]`.
"""

from __future__ import annotations

from .. import ops as O
from ..ir import Graph, TensorType
from .base import PassResult, Replace, RewriteContext, Rule, apply_rules


def _transposed_weight(ctx: RewriteContext, nid: int) -> int | None:
    """If nid is transpose(w) swapping the two dims of a 2-D w, return w's id."""
    node = ctx.node(nid)
    if node is None or node.op != "transpose" or not ctx.single_use(nid):
        return None
    w = ctx.node(node.inputs[0])
    if w is None or not isinstance(w.type, TensorType) or w.type.rank != 2:
        return None
    dims = {node.attrs.get("dim0", -2) % 2, node.attrs.get("dim1", -1) % 2}
    return w.id if dims == {0, 1} else None


def _matmul_operand(ctx, node):
    """For add(a, b): (matmul_node, other_id) when one side is a single-use matmul."""
    for mine, other in ((0, 1), (1, 0)):
        producer = ctx.node(node.inputs[mine])
        if producer is not None and producer.op == "matmul" and ctx.single_use(producer.id):
            return producer, node.inputs[other]
    return None, None


def _add_to_linear(ctx, node):
    mm, bias = _matmul_operand(ctx, node)
    if mm is None:
        return None
    w = _transposed_weight(ctx, mm.inputs[1])
    if w is None:
        return None
    return Replace("linear", [mm.inputs[0], w, bias], {})


def _matmul_to_linear(ctx, node):
    w = _transposed_weight(ctx, node.inputs[1])
    if w is None:
        return None
    return Replace("linear", [node.inputs[0], w], {})


def _linear_bias(ctx, node):
    for mine, other in ((0, 1), (1, 0)):
        producer = ctx.node(node.inputs[mine])
        if (
            producer is not None
            and producer.op == "linear"
            and len(producer.inputs) == 2
            and ctx.single_use(producer.id)
        ):
            return Replace("linear", producer.inputs + [node.inputs[other]], {})
    return None


def _matmul_add(ctx, node):
    mm, other = _matmul_operand(ctx, node)
    if mm is None:
        return None
    return Replace("matmul_add", list(mm.inputs) + [other], {})


MATMUL_RULES = [
    Rule("matmul_transpose_add_to_linear", ("add",), _add_to_linear),
    Rule("matmul_transpose_to_linear", ("matmul",), _matmul_to_linear),
    Rule("linear_add_bias", ("add",), _linear_bias),
    Rule("matmul_add", ("add",), _matmul_add),
]

_INFIX = {"add": "+", "sub": "-", "mul": "*", "div": "/", "mod": "%", "pow": "**"}


def fusable(node) -> bool:
    op = O.OPS.get(node.op)
    return op is not None and op.elementwise and op.pure and not node.attrs


def _chain(ctx: RewriteContext, root) -> list[int]:
    """The producers absorbable into root, in evaluation order (post-order), root last."""
    members = {root.id}
    stack = [root.id]
    while stack:
        consumer = ctx.node(stack.pop())
        for src in consumer.inputs:
            producer = ctx.node(src)
            if (
                src not in members
                and producer is not None
                and fusable(producer)
                and ctx.only_used_by(src, consumer)
            ):
                members.add(src)
                stack.append(src)
    # Iterative post-order from the root, following inputs left to right.
    order: list[int] = []
    placed: set[int] = set()
    work = [(root.id, False)]
    while work:
        nid, expanded = work.pop()
        if nid in placed:
            continue
        if expanded:
            placed.add(nid)
            order.append(nid)
            continue
        work.append((nid, True))
        for src in reversed(ctx.node(nid).inputs):
            if src in members and src not in placed:
                work.append((src, False))
    return order


def _fuse_elementwise(ctx, node):
    """Returns (Replace, absorbed ids) or None."""
    if not fusable(node):
        return None
    chain = _chain(ctx, node)
    if len(chain) < 2:
        return None
    index = {nid: k for k, nid in enumerate(chain)}
    inputs: list[int] = []
    steps: list[list] = []
    texts: list[str] = []
    for nid in chain:
        member = ctx.node(nid)
        args, arg_texts = [], []
        for src in member.inputs:
            if src in index:
                args.append(f"%{index[src]}")
                arg_texts.append(texts[index[src]])
                continue
            ok, value = ctx.constant(src)
            if ok and isinstance(value, (int, float)) and not isinstance(value, bool):
                args.append(value)
                arg_texts.append(repr(value))
                continue
            if src not in inputs:
                inputs.append(src)
            ref = f"${inputs.index(src)}"
            args.append(ref)
            arg_texts.append(ref)
        steps.append([member.op, *args])
        if member.op in _INFIX and len(arg_texts) == 2:
            texts.append(f"({arg_texts[0]} {_INFIX[member.op]} {arg_texts[1]})")
        else:
            texts.append(f"{member.op}({', '.join(arg_texts)})")
    expr = texts[-1]
    if expr.startswith("(") and expr.endswith(")"):
        expr = expr[1:-1]
    if not inputs:
        return None
    return Replace("fused_elementwise", inputs, {"expr": expr, "steps": steps}), chain[:-1]


def _sweep_reverse(graph: Graph, result: PassResult) -> None:
    """Elementwise fusion visits consumers before producers so chains grow maximal."""
    ctx = RewriteContext(graph)
    absorbed: set[int] = set()
    for nid in reversed(graph.topo_order()):
        node = graph.nodes.get(nid)
        if node is None or nid in ctx.interface or nid in absorbed:
            continue
        if ctx.uses.get(nid, 0) == 0 and nid not in ctx.outputs:
            continue  # dead: DCE removes it
        fused = _fuse_elementwise(ctx, node)
        if fused is None:
            continue
        outcome, members = fused
        absorbed.update(members)
        size = len(outcome.attrs["steps"])
        result.record(f"fuse_elementwise: {node.name} <- {size} ops: {outcome.attrs['expr']}")
        node.op, node.attrs = outcome.op, outcome.attrs
        ctx.set_inputs(node, outcome.inputs)


def operator_fusion(graph: Graph) -> PassResult:
    result = PassResult("fusion")
    apply_rules(graph, MATMUL_RULES, result)
    _sweep_reverse(graph, result)
    return result
