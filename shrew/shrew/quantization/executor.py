"""Quantized inference for `.sw` programs: ``quantize_executor(executor, config=None)`` makes
an ``shrew.exec.Executor`` run its ``linear`` / ``matmul`` / ``matmul_add`` nodes whose
weight operand is a 2-D param through QuantizedLinear kernels; ``inference_config(module)``
reads the ``@inference { quantization: { ... } }`` block into a QuantConfig.

The quantized weights are a snapshot of the params: the float params stay (``state_dict``,
training and the JIT are unchanged), the Executor uses the quantized copies only while it
is in eval mode (``training=False``), and after changing the params (training,
``load_state_dict``) calling ``quantize_executor`` again refreshes them.
"""

from __future__ import annotations

import shrew_ir
from shrew_core import ShapeError, ShrewError

from .config import QuantConfig, config_from_spec
from .linear import QuantizedLinear
from .tensor import quantize

_WEIGHT_OPS = ("linear", "matmul", "matmul_add")


def inference_config(module) -> QuantConfig | None:
    """The QuantConfig of an IR module's (or Executor's) ``@inference { quantization: ... }``
    block; None when the program has no such block."""
    module = getattr(module, "module", module)
    if not isinstance(module, shrew_ir.IRModule):
        raise TypeError(
            f"inference_config: expected an IRModule or Executor, got {type(module).__name__}"
        )
    inference = module.inference
    return None if inference is None else config_from_spec(inference.quantization)


def quantize_executor(executor, config: QuantConfig | None = None,
                      graphs: list[str] | None = None):  # fmt: skip
    """Quantize the weight params of ``executor``'s linear-like nodes; returns ``executor``.

    Args:
        executor: a ``shrew.exec.Executor``.
        config: default: the program's ``@inference`` quantization block (a ShrewError if it
            has none).
        graphs: which graphs (default: every graph).

    A node qualifies when its op is ``linear`` (weight ``[out, in]``), ``matmul`` or
    ``matmul_add`` (``x @ W`` with ``W`` ``[in, out]``, quantized as ``Wᵀ``: per channel
    means per output column) and its second input is a 2-D float param. The table of
    quantized weights is ``executor.quantized_weights`` (``(graph, node id) ->
    QuantizedLinear``).
    """
    if config is None:
        config = inference_config(executor.module)
        if config is None:
            raise ShrewError(
                "quantize_executor: no config given and the program has no "
                "@inference { quantization: { ... } } block"
            )
    params = executor.named_params()
    table: dict[tuple[str, int], QuantizedLinear] = {}
    for gname in graphs or executor.graph_names():
        graph = executor.module.graphs[gname]
        param_of = {p.node: p.name for p in graph.params}
        cache: dict[int, QuantizedLinear] = {}
        for nid in graph.topo_order():
            node = graph.nodes[nid]
            if node.op not in _WEIGHT_OPS or len(node.inputs) < 2:
                continue
            pid = node.inputs[1]
            weight = params.get(f"{gname}/{param_of.get(pid)}")
            if weight is None or weight.ndim != 2 or not weight.dtype.is_float:
                continue
            if pid not in cache:
                w = weight.detach() if node.op == "linear" else weight.detach().t().contiguous()
                try:
                    cache[pid] = QuantizedLinear(quantize(w, config))
                except ShapeError as e:
                    raise ShapeError(f"quantize_executor: graph {gname!r}, node {node.name!r}: "
                                     f"{e}") from None  # fmt: skip
            table[(gname, nid)] = cache[pid]
    executor.quantized_weights = table
    return executor
