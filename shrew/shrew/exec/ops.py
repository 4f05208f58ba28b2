"""The executor's op table: one implementation per shrew_ir op name.

``IMPLS[op](ctx, node, args)`` returns the node's value from its evaluated inputs
(``args``, in the order of the op's inputs in ``shrew_ir.OPS``) and attributes. Every op
runs through shrew_core / shrew_nn functions, so gradients flow for training.
"""

from __future__ import annotations

import shrew_core as sc
import shrew_nn.functional as F

IMPLS: dict = {}


def impl(*names: str):
    def register(fn):
        for n in names:
            IMPLS[n] = fn
        return fn

    return register


def _t(ctx, value):
    """A Python scalar (weak constant) stays a scalar; lists become tensors."""
    if isinstance(value, (list, tuple)):
        return sc.tensor(value, device=ctx.device)
    return value


# ---------------------------------------------------------------- elementwise
for _name in (
    "neg",
    "abs",
    "relu",
    "silu",
    "sigmoid",
    "tanh",
    "exp",
    "log",
    "sqrt",
    "rsqrt",
    "sin",
    "cos",
    "reciprocal",
    "square",
    "sign",
    "floor",
    "ceil",
    "round",
):
    IMPLS[_name] = (lambda op: lambda ctx, node, a: getattr(sc, op)(a[0]))(_name)


@impl("not")
def _not(ctx, node, a):
    return sc.logical_not(a[0])


@impl("gelu")
def _gelu(ctx, node, a):
    return sc.gelu(a[0], approximate=node.attrs.get("approximate", "none"))


@impl("leaky_relu")
def _leaky_relu(ctx, node, a):
    return F.leaky_relu(a[0], node.attrs.get("negative_slope", 0.01))


@impl("elu")
def _elu(ctx, node, a):
    return F.elu(a[0], node.attrs.get("alpha", 1.0))


@impl("softplus")
def _softplus(ctx, node, a):
    return F.softplus(a[0], node.attrs.get("beta", 1.0), node.attrs.get("threshold", 20.0))


@impl("clamp")
def _clamp(ctx, node, a):
    return sc.clamp(a[0], node.attrs.get("min"), node.attrs.get("max"))


@impl("cast")
def _cast(ctx, node, a):
    from .params import runtime_dtype

    return sc.cast(a[0], runtime_dtype(node.attrs["dtype"], node.name))


_BINARY = {
    "add": lambda x, y: x + y,
    "sub": lambda x, y: x - y,
    "mul": lambda x, y: x * y,
    "div": lambda x, y: x / y,
    "mod": lambda x, y: x % y,
    "pow": lambda x, y: x**y,
    "maximum": sc.maximum,
    "minimum": sc.minimum,
    "eq": sc.eq,
    "ne": sc.ne,
    "lt": sc.lt,
    "gt": sc.gt,
    "le": sc.le,
    "ge": sc.ge,
    "and": lambda x, y: sc.logical_and(x, y),
    "or": lambda x, y: sc.logical_or(x, y),
}


def _binary(op):
    fn = _BINARY[op]

    def run(ctx, node, a):
        x, y = _t(ctx, a[0]), _t(ctx, a[1])
        if not isinstance(x, sc.Tensor) and not isinstance(y, sc.Tensor):
            x = sc.tensor(x, device=ctx.device)  # two constants that were not folded
        return fn(x, y)

    return run


for _name in _BINARY:
    IMPLS[_name] = _binary(_name)


@impl("where")
def _where(ctx, node, a):
    return sc.where(a[0], _t(ctx, a[1]), _t(ctx, a[2]))


@impl("coalesce")
def _coalesce(ctx, node, a):
    return a[1] if a[0] is None else a[0]


# ---------------------------------------------------------------- linear algebra
def _quantized(ctx, node):
    """The QuantizedLinear that shrew.quantization.quantize_executor installed for this
    node's weight (used in eval mode only), or None."""
    table = getattr(ctx.ex, "quantized_weights", None)
    return table.get((ctx.graph, node.id)) if table and not ctx.training else None


@impl("matmul")
def _matmul(ctx, node, a):
    q = _quantized(ctx, node)
    return a[0] @ a[1] if q is None else q(a[0])


@impl("linear")
def _linear(ctx, node, a):
    q = _quantized(ctx, node)
    if q is not None:
        return q(a[0]) if len(a) < 3 or a[2] is None else q(a[0]) + a[2]
    return sc.linear(a[0], a[1], a[2] if len(a) > 2 else None)


@impl("matmul_add")
def _matmul_add(ctx, node, a):
    q = _quantized(ctx, node)
    return (a[0] @ a[1] if q is None else q(a[0])) + a[2]


# ---------------------------------------------------------------- neural network
@impl("softmax")
def _softmax(ctx, node, a):
    return sc.softmax(a[0], node.attrs.get("dim", -1))


@impl("log_softmax")
def _log_softmax(ctx, node, a):
    return sc.log_softmax(a[0], node.attrs.get("dim", -1))


def _opt(a, i):
    return a[i] if len(a) > i else None


@impl("layer_norm")
def _layer_norm(ctx, node, a):
    x, w, b = a[0], _opt(a, 1), _opt(a, 2)
    shape = w.shape if w is not None else x.shape[-1:]
    return sc.layer_norm(x, shape, w, b, node.attrs.get("eps", 1e-5))


@impl("rms_norm")
def _rms_norm(ctx, node, a):
    x, w = a[0], _opt(a, 1)
    return sc.rms_norm(
        x, w.shape if w is not None else x.shape[-1:], w, node.attrs.get("eps", 1e-6)
    )


@impl("batch_norm")
def _batch_norm(ctx, node, a):
    x = a[0]
    mean, var = _opt(a, 3), _opt(a, 4)
    return F.batch_norm(
        x,
        mean,
        var,
        _opt(a, 1),
        _opt(a, 2),
        training=ctx.training or mean is None,
        momentum=node.attrs.get("momentum", 0.1),
        eps=node.attrs.get("eps", 1e-5),
    )


@impl("dropout")
def _dropout(ctx, node, a):
    return sc.dropout(a[0], node.attrs.get("p", 0.5), training=ctx.training)


@impl("embedding")
def _embedding(ctx, node, a):
    return sc.embedding(a[1], a[0])


@impl("multi_head_attention", "transformer_block")
def _owned_module(ctx, node, a):
    module = ctx.module_for(node)
    if node.op == "transformer_block":
        return module(a[0])
    query = a[0]
    key = _opt(a, 1) if _opt(a, 1) is not None else query
    value = _opt(a, 2) if _opt(a, 2) is not None else key
    out, _ = module(
        query,
        key,
        value,
        attn_mask=_opt(a, 3),
        is_causal=node.attrs.get("causal", False),
        need_weights=False,
    )
    return out


def _conv_attrs(node):
    return {
        k: node.attrs[k] for k in ("stride", "padding", "dilation", "groups") if k in node.attrs
    }


@impl("conv1d")
def _conv1d(ctx, node, a):
    return sc.conv1d(a[0], a[1], _opt(a, 2), **_conv_attrs(node))


@impl("conv2d")
def _conv2d(ctx, node, a):
    return sc.conv2d(a[0], a[1], _opt(a, 2), **_conv_attrs(node))


def _pool_args(node):
    return node.attrs["kernel_size"], node.attrs.get("stride"), node.attrs.get("padding", 0)


@impl("max_pool2d")
def _max_pool2d(ctx, node, a):
    return sc.max_pool2d(a[0], *_pool_args(node))


@impl("avg_pool2d")
def _avg_pool2d(ctx, node, a):
    return sc.avg_pool2d(a[0], *_pool_args(node))


def _pool1d(fn):
    def run(ctx, node, a):
        k, s, p = _pool_args(node)

        def first(v):
            return v if isinstance(v, int) or v is None else v[0]

        out = fn(
            a[0].unsqueeze(-2), (1, first(k)), None if s is None else (1, first(s)), (0, first(p))
        )
        return out.squeeze(-2)

    return run


IMPLS["max_pool1d"] = _pool1d(sc.max_pool2d)
IMPLS["avg_pool1d"] = _pool1d(sc.avg_pool2d)


@impl("adaptive_avg_pool2d")
def _adaptive_avg_pool2d(ctx, node, a):
    return sc.adaptive_avg_pool2d(a[0], node.attrs["output_size"])


# ---------------------------------------------------------------- shape and layout
def _shape_attr(ctx, node, x):
    return tuple(d if isinstance(d, int) else ctx.dim(d, node) for d in node.attrs["shape"])


@impl("reshape")
def _reshape(ctx, node, a):
    return a[0].reshape(_shape_attr(ctx, node, a[0]))


@impl("expand")
def _expand(ctx, node, a):
    return a[0].expand(_shape_attr(ctx, node, a[0]))


@impl("flatten")
def _flatten(ctx, node, a):
    return a[0].flatten(node.attrs.get("start_dim", 0), node.attrs.get("end_dim", -1))


@impl("squeeze")
def _squeeze(ctx, node, a):
    return a[0].squeeze(node.attrs.get("dim"))


@impl("unsqueeze")
def _unsqueeze(ctx, node, a):
    return a[0].unsqueeze(node.attrs["dim"])


@impl("transpose")
def _transpose(ctx, node, a):
    return a[0].transpose(node.attrs.get("dim0", -2), node.attrs.get("dim1", -1))


@impl("permute")
def _permute(ctx, node, a):
    return a[0].permute(tuple(node.attrs["dims"]))


@impl("concat")
def _concat(ctx, node, a):
    return sc.cat(list(a), node.attrs.get("dim", 0))


@impl("stack")
def _stack(ctx, node, a):
    return sc.stack(list(a), node.attrs.get("dim", 0))


@impl("split")
def _split(ctx, node, a):
    return tuple(a[0].chunk(node.attrs["chunks"], node.attrs.get("dim", 0)))


@impl("index")
def _index(ctx, node, a):
    x, i = a[0], node.attrs["index"]
    if isinstance(x, tuple):
        return x[i]
    return x.select(node.attrs.get("dim", 0), i)


@impl("slice")
def _slice(ctx, node, a):
    at = node.attrs
    return sc.slice_dim(
        a[0], at.get("dim", 0), at.get("start", 0), at.get("end"), at.get("step", 1)
    )


# ---------------------------------------------------------------- reductions
def _dim(node):
    d = node.attrs.get("dim")
    return tuple(d) if isinstance(d, list) else d


def _reduction(op):
    def run(ctx, node, a):
        x, d, keep = a[0], _dim(node), node.attrs.get("keepdim", False)
        if op in ("max", "min"):
            return (x.amax if op == "max" else x.amin)(d, keep)
        if op in ("argmax", "argmin"):
            return getattr(x, op)(d, keep)
        if op in ("var", "std"):
            return getattr(x, op)(d, keep, correction=node.attrs.get("correction", 1))
        return getattr(x, op)(d, keep)

    return run


for _name in ("sum", "mean", "prod", "max", "min", "argmax", "argmin", "var", "std"):
    IMPLS[_name] = _reduction(_name)


# ---------------------------------------------------------------- losses
@impl("cross_entropy")
def _cross_entropy(ctx, node, a):
    return F.cross_entropy(
        a[0],
        a[1],
        reduction=node.attrs.get("reduction", "mean"),
        label_smoothing=node.attrs.get("label_smoothing", 0.0),
    )


@impl("nll_loss")
def _nll_loss(ctx, node, a):
    return F.nll_loss(a[0], a[1], reduction=node.attrs.get("reduction", "mean"))


@impl("mse_loss")
def _mse_loss(ctx, node, a):
    return F.mse_loss(a[0], a[1], reduction=node.attrs.get("reduction", "mean"))


@impl("l1_loss")
def _l1_loss(ctx, node, a):
    return F.l1_loss(a[0], a[1], reduction=node.attrs.get("reduction", "mean"))


@impl("binary_cross_entropy")
def _bce(ctx, node, a):
    return F.binary_cross_entropy(a[0], a[1], reduction=node.attrs.get("reduction", "mean"))


# ---------------------------------------------------------------- structure
@impl("constant")
def _constant(ctx, node, a):
    return _t(ctx, node.attrs.get("value"))


@impl("dim")
def _dim_value(ctx, node, a):
    return ctx.dim(node.attrs["name"], node)


@impl("range")
def _range(ctx, node, a):
    args = [int(v.item()) if isinstance(v, sc.Tensor) else int(v) for v in a]
    return sc.arange(*args, device=ctx.device)


@impl("identity")
def _identity(ctx, node, a):
    return a[0]


@impl("call")
def _call(ctx, node, a):
    return ctx.call(node.attrs["graph"], list(a), node)


@impl("custom")
def _custom(ctx, node, a):
    return ctx.custom(node.attrs["name"], list(a), node.attrs.get("attrs") or {}, node)


@impl("fused_elementwise")
def _fused(ctx, node, a):
    slots = list(a)
    results = []

    def arg(v):
        if isinstance(v, str) and v[:1] == "$":
            return slots[int(v[1:])]
        if isinstance(v, str) and v[:1] == "%":
            return results[int(v[1:])]
        return v

    for op, *args in node.attrs["steps"]:
        results.append(IMPLS[op](ctx, _Step(op, node), [arg(v) for v in args]))
    return results[-1]


class _Step:
    """What a fused step's implementation sees as its node (defaults for attributes)."""

    def __init__(self, op: str, parent):
        self.op, self.name, self.span, self.attrs = op, parent.name, parent.span, {}
