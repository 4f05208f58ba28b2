"""Opening up module ops for the JIT: each ``transformer_block`` node becomes the graph of
its ``shrew_nn.TransformerBlock`` (the same parameters, the same ops in the same order), so
the planner can fuse its GEMM epilogues (linear + bias + GELU, linear + bias + residual)
and reuse its buffers across blocks:

    ln1 = layer_norm(x)          att = multi_head_attention(ln1)   (the block's own MHA)
    r1 = x + dropout(att)        ln2 = layer_norm(r1)
    f1 = act(module_linear(ln2)) out = r1 + dropout(module_linear(dropout(f1)))

``module_linear`` is ``shrew_nn.Linear``'s arithmetic (leading dims flattened into one
GEMM), which can differ in the last bits from a broadcast 3-D ``linear``. Blocks with an
attention mask input keep running as one module call.
"""

from __future__ import annotations

import copy

import shrew_core as sc
import shrew_ir
from shrew_ir.ir import UNKNOWN, Node, Param

_ACT = {"gelu": ("gelu", {}), "gelu_tanh": ("gelu", {"approximate": "tanh"}),
        "relu": ("relu", {}), "silu": ("silu", {})}  # fmt: skip


def module_linear(ctx, node, a):
    """``y = linear(x.reshape(-1, in), w, b).reshape(*lead, out)`` like ``shrew_nn.Linear``."""
    x, w = a[0], a[1]
    b = a[2] if len(a) > 2 else None
    if x.ndim > 2:
        lead = x.shape[:-1]
        return sc.linear(x.reshape(-1, w.shape[1]), w, b).reshape(lead + (w.shape[0],))
    return sc.linear(x, w, b)


#: Ops only the JIT's graphs contain (looked up before the executor's op table).
JIT_OPS = {"module_linear": module_linear}


def expand_modules(executor, gname: str, graph) -> shrew_ir.ir.Graph:
    """A copy of ``graph`` with every mask-free ``transformer_block`` opened up (the original
    graph is returned when there is none)."""
    blocks = [
        nid for nid in graph.topo_order()
        if graph.nodes[nid].op == "transformer_block" and len(graph.nodes[nid].inputs) == 1
        and (gname, nid) in executor._modules
    ]  # fmt: skip
    if not blocks:
        return graph
    g = copy.deepcopy(graph)
    builder = _Builder(g)
    for nid in blocks:
        _open_block(builder, executor, gname, g.nodes[nid], executor._modules[(gname, nid)])
    return g


class _Builder:
    """Adds nodes (fresh ids) to a graph."""

    def __init__(self, g):
        self.g = g
        self.next_id = max(g.nodes) + 1

    def add(self, name, op, inputs, attrs=None, span=None) -> int:
        nid = self.next_id
        self.next_id += 1
        self.g.nodes[nid] = Node(nid, name, op, list(inputs), dict(attrs or {}), span=span)
        return nid


def _open_block(b: _Builder, executor, gname: str, node, block) -> None:
    """Rewrite ``node`` (a transformer_block) in place into the block's ops."""
    name, span, x = node.name, node.span, node.inputs[0]
    p = {}
    for pname, _ in block.named_parameters():
        pid = b.add(f"{name}.{pname}", "param", [], span=span)
        b.g.params.append(Param(f"{name}.{pname}", pid, UNKNOWN))
        p[pname] = pid

    def opt(*names):
        return [p[n] for n in names if n in p]

    def dropout(v, tag):
        if block.dropout.p == 0:
            return v
        return b.add(f"{name}.{tag}", "dropout", [v], {"p": block.dropout.p}, span)

    ln1 = b.add(f"{name}.norm1", "layer_norm", [x, *opt("norm1.weight", "norm1.bias")],
                {"eps": block.norm1.eps}, span)  # fmt: skip
    att = b.add(f"{name}.self_attn", "multi_head_attention", [ln1],
                {"n_heads": block.n_heads, "causal": block.causal}, span)  # fmt: skip
    executor._modules[(gname, att)] = block.self_attn
    r1 = b.add(f"{name}.residual1", "add", [x, dropout(att, "dropout1")], span=span)
    ln2 = b.add(f"{name}.norm2", "layer_norm", [r1, *opt("norm2.weight", "norm2.bias")],
                {"eps": block.norm2.eps}, span)  # fmt: skip
    f1 = b.add(f"{name}.linear1", "module_linear",
               [ln2, *opt("linear1.weight", "linear1.bias")], span=span)  # fmt: skip
    op, attrs = _ACT[block.activation]
    act = b.add(f"{name}.activation", op, [f1], attrs, span)
    f2 = b.add(f"{name}.linear2", "module_linear",
               [dropout(act, "dropout"), *opt("linear2.weight", "linear2.bias")],
               span=span)  # fmt: skip
    node.op, node.attrs = "add", {}
    node.inputs = [r1, dropout(f2, "dropout2")]
