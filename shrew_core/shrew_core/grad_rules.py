"""One gradient rule per differentiable primitive, in one table.

``RULES[op](node, g)`` returns one gradient per entry of ``node.inputs`` (None where an
input needs none). Rules are written with ordinary tensor ops and run under no_grad.
Broadcasting is undone by the engine (``autograd._fit``), so a rule may return a
gradient in the broadcast shape. Composite ops (var, logsumexp, linear, ...) need no
rule: they are built from these.
"""

from __future__ import annotations

import math

from . import ops
from .autograd import SlabGrad
from .layout import Layout
from .ops._base import dense, wrap

RULES: dict = {}


def rule(*names: str):
    def register(fn):
        for n in names:
            RULES[n] = fn
        return fn

    return register


def _in(node, i=0):
    return node.inputs[i]


# ---------------------------------------------------------------- elementwise unary
@rule("neg")
def _neg(node, g):
    return (-g,)


@rule("abs")
def _abs(node, g):
    return (g * _in(node).sign(),)


@rule("exp")
def _exp(node, g):
    return (g * node.saved,)


@rule("expm1")
def _expm1(node, g):
    return (g * (node.saved + 1.0),)


@rule("log")
def _log(node, g):
    return (g / _in(node),)


@rule("log1p")
def _log1p(node, g):
    return (g / (_in(node) + 1.0),)


@rule("sqrt")
def _sqrt(node, g):
    return (g * 0.5 / node.saved,)


@rule("rsqrt")
def _rsqrt(node, g):
    y = node.saved
    return (g * -0.5 * y * y * y,)


@rule("square")
def _square(node, g):
    return (g * 2.0 * _in(node),)


@rule("reciprocal")
def _reciprocal(node, g):
    y = node.saved
    return (-g * y * y,)


@rule("sin")
def _sin(node, g):
    return (g * _in(node).cos(),)


@rule("cos")
def _cos(node, g):
    return (-g * _in(node).sin(),)


@rule("relu")
def _relu(node, g):
    return (ops.where(node.saved <= 0, 0.0, g),)  # from the result: NaN passes, like torch


@rule("hardtanh")
def _hardtanh(node, g):
    x = _in(node)
    lo, hi = node.saved
    return (ops.where((x <= lo) | (x >= hi), 0.0, g),)


@rule("elu")
def _elu(node, g):
    x = _in(node)
    return (ops.where(x <= 0, g * x.exp() * node.saved, g),)


@rule("erf")
def _erf(node, g):
    x = _in(node)
    return (g * (2.0 / math.sqrt(math.pi)) * (-(x * x)).exp(),)


@rule("tanh", "sigmoid", "gelu", "gelu_tanh", "silu")
def _fused_unary(node, g):
    x = _in(node)
    gc, xc = dense(g), dense(x)
    s = x._backend.unary_backward(node.op, xc._storage, gc._storage, x.shape, x.dtype)
    return (wrap(s, x.shape, x.dtype, x._backend),)


@rule("floor", "ceil", "round", "sign")
def _zero(node, g):
    return (ops.zeros_like(_in(node)),)


@rule("affine")
def _affine(node, g):
    return (g * node.saved,)


@rule("clamp")
def _clamp(node, g):
    x = _in(node)
    lo, hi = node.saved
    keep = None
    if lo is not None:
        keep = x >= lo
    if hi is not None:
        keep = (x <= hi) if keep is None else keep & (x <= hi)
    return (ops.where(keep, g, 0.0),)


@rule("clamp_tensor")
def _clamp_tensor(node, g):
    x = node.inputs[0]
    lo, hi = node.saved
    keep = (x >= lo) if hi is None else (x <= hi) if lo is None else (x >= lo) & (x <= hi)
    g_lo = g_hi = None
    if node.needs[1]:
        g_lo = ops.where((x < lo) if hi is None else (x < lo) & (lo < hi), g, 0.0)
    if node.needs[2]:
        g_hi = ops.where((x > hi) if lo is None else (x > hi) | (hi < lo), g, 0.0)
    return ops.where(keep, g, 0.0), g_lo, g_hi


@rule("cast", "to_device", "clone")
def _identity(node, g):
    x = _in(node)
    if g.device != x.device:
        g = g.to(x.device)
    return (g,)


# ---------------------------------------------------------------- elementwise binary
@rule("add")
def _add(node, g):
    return g, g


@rule("sub")
def _sub(node, g):
    return g, -g


@rule("mul")
def _mul(node, g):
    a, b = node.inputs
    return (g * b if node.needs[0] else None), (g * a if node.needs[1] else None)


@rule("div")
def _div(node, g):
    a, b = node.inputs
    ga = g / b
    return ga, (-ga * a / b if node.needs[1] else None)


@rule("pow")
def _pow(node, g):
    a, b = node.inputs
    ga = gb = None
    if node.needs[0]:
        ga = ops.where(b == 0, 0.0, g * b * a ** (b - 1.0))
    if node.needs[1]:
        gb = ops.where((a == 0) & (b >= 0), 0.0, g * node.saved * a.log())
    return ga, gb


@rule("maximum", "minimum")
def _max_min(node, g):
    """Ties split the gradient; where either side is NaN both receive it (like torch)."""
    a, b = node.inputs
    shared = ops.where(a == b, g * 0.5, g)
    a_loses, b_loses = (a < b, a > b) if node.op == "maximum" else (a > b, a < b)
    return ops.where(a_loses, 0.0, shared), ops.where(b_loses, 0.0, shared)


@rule("remainder")
def _remainder(node, g):
    a, b = node.inputs
    return g, (-g * ops.floor_divide(a, b) if node.needs[1] else None)


@rule("floor_divide", "div_trunc")
def _floor_divide(node, g):
    a, b = node.inputs
    return ops.zeros_like(a), ops.zeros_like(b)


@rule("where")
def _where(node, g):
    cond = node.saved
    return ops.where(cond, g, 0.0), ops.where(cond, 0.0, g)


# ---------------------------------------------------------------- reductions
def _expand_back(node, g):
    x = _in(node)
    dims, keepdim, _ = node.saved
    if not keepdim and g.ndim:  # a 0-d gradient (full reduction) broadcasts as it is
        g = g.reshape(tuple(1 if i in dims else d for i, d in enumerate(x.shape)))
    return g


@rule("sum")
def _sum(node, g):
    return (_expand_back(node, g).expand(_in(node).shape),)


@rule("max", "min")
def _amax(node, g):
    x = _in(node)
    dims = node.saved[0]
    y = node.saved[2]
    if not node.saved[1]:
        y = y.reshape(tuple(1 if i in dims else d for i, d in enumerate(x.shape)))
    mask = (x == y).to(g.dtype)
    return (mask * _expand_back(node, g) / mask.sum(dims, keepdim=True),)


@rule("prod")
def _prod(node, g):
    x = _in(node)
    dims = node.saved[0]
    g = _expand_back(node, g)
    is_zero = x == 0
    zeros = is_zero.to(x.dtype).sum(dims, keepdim=True)
    prod_nonzero = ops.where(is_zero, 1.0, x).prod(dims, keepdim=True)
    full = prod_nonzero * (zeros == 0).to(x.dtype)
    safe_x = ops.where(is_zero, 1.0, x)
    grad = ops.where(
        zeros == 0, full / safe_x, ops.where((zeros == 1) & is_zero, prod_nonzero, 0.0)
    )
    return (g * grad,)


@rule("norm")
def _norm(node, g):
    """torch's vector-norm backward: 0 where the norm is 0, ties of ±inf share equally."""
    x = _in(node)
    p, dims, keepdim, out = node.saved
    if not keepdim:
        kept = tuple(1 if i in dims else d for i, d in enumerate(x.shape))
        g, out = g.reshape(kept), out.reshape(kept)
    if p == 0:
        return (ops.zeros_like(x),)
    if p == 1:
        return (x.sign() * g,)
    if p == 2:
        return (g * ops.where(out == 0, 0.0, x / out),)
    a = x.abs()
    if math.isinf(p):
        mask = ((a == out) | (a != a)).to(x.dtype)  # the extreme entries, or NaN
        return (x.sign() * (g / mask.sum(dims, keepdim=True)) * mask,)
    if p < 1:
        return (x.sign() * ops.where(x == 0, 0.0, a ** (p - 1)) * g * out ** (1 - p),)
    scale = ops.where(out == 0, 0.0, g / out ** (p - 1))
    return ((x.sign() * a ** (p - 1) if p < 2 else x * a ** (p - 2)) * scale,)


@rule("cumsum")
def _cumsum(node, g):
    d = node.saved
    return (g.flip(d).cumsum(d).flip(d),)


# ---------------------------------------------------------------- shape and views
@rule("reshape")
def _reshape(node, g):
    return (g.reshape(node.saved),)


@rule("permute")
def _permute(node, g):
    dims = node.saved
    inverse = [0] * len(dims)
    for i, d in enumerate(dims):
        inverse[d] = i
    return (g.permute(tuple(inverse)),)


@rule("expand")
def _expand(node, g):
    return (g,)  # the engine sums the broadcast dims back


@rule("slice")
def _slice(node, g):
    in_shape, spec = node.saved
    target = ops.apply_slice_spec(Layout.contiguous(in_shape), spec)
    return (SlabGrad(in_shape, target, g),)  # made dense by the walk, see SlabGrad


@rule("cat")
def _cat(node, g):
    d, sizes = node.saved
    out, start = [], 0
    for n in sizes:
        out.append(g.narrow(d, start, n))
        start += n
    return tuple(out)


@rule("pad")
def _pad(node, g):
    x = _in(node)
    out = g
    for d, (lo, n) in enumerate(zip(node.saved, x.shape)):
        out = out.narrow(d, lo, n)
    return (out,)


# ---------------------------------------------------------------- indexing
@rule("index_select")
def _index_select(node, g):
    x = _in(node)
    d, index = node.saved
    return (ops.indexing._scatter_rows(x, d, index, g),)


@rule("index_add")
def _index_add(node, g):
    d, index = node.saved
    return (ops.index_select(g, d, index),)


@rule("gather")
def _gather(node, g):
    d, index, in_shape = node.saved
    return (ops.indexing._scatter(in_shape, d, index, g),)


@rule("scatter_add")
def _scatter_add(node, g):
    d, index = node.saved
    return (ops.gather(g, d, index),)


# ---------------------------------------------------------------- linear algebra
def _matmul_like(x, y, like):
    """``x @ y``, computed transposed when ``like`` is a transposed view (e.g. a Linear
    weight used as ``w.t()``), so the gradient lands contiguous in ``like``'s base layout."""
    if like.ndim >= 2 and not like.is_contiguous() and like.mT.is_contiguous():
        return (y.mT @ x.mT).mT
    return x @ y


@rule("matmul")
def _matmul(node, g):
    a, b = node.inputs
    ga = _matmul_like(g, b.mT, a) if node.needs[0] else None
    gb = _matmul_like(a.mT, g, b) if node.needs[1] else None
    return ga, gb


@rule("linear")
def _linear(node, g):
    x, w = node.inputs[0], node.inputs[1]
    g2 = g.reshape(-1, g.shape[-1]) if g.ndim != 2 else g
    gx = g @ w if node.needs[0] else None
    gw = None
    if node.needs[1]:
        x2 = x.reshape(-1, x.shape[-1]) if x.ndim != 2 else x
        gw = g2.mT @ x2
    grads = [gx, gw]
    if len(node.inputs) == 3:
        b = node.inputs[2]
        grads.append(g2.sum(0).reshape(b.shape) if node.needs[2] else None)
    return tuple(grads)


# ---------------------------------------------------------------- fused nn kernels
_contig = dense


@rule("softmax", "log_softmax")
def _softmax(node, g):
    x = _in(node)
    d, y = node.saved
    gc = _contig(g)
    s = x._backend.softmax_backward(
        y._storage, gc._storage, x.shape, x.dtype, d, node.op == "log_softmax"
    )
    return (wrap(s, x.shape, x.dtype, x._backend),)


@rule("layer_norm")
def _layer_norm(node, g):
    x, w, b = node.inputs
    k, mean, rstd = node.saved
    xc, gc = _contig(x), _contig(g)
    be = x._backend
    gx, gw, gb = be.layer_norm_backward(
        gc._storage, xc._storage, x.shape, None if w is None else w._storage, mean, rstd, x.dtype, k
    )
    wshape = x.shape[x.ndim - k :]
    return (
        wrap(gx, x.shape, x.dtype, be),
        None if w is None else wrap(gw, wshape, x.dtype, be),
        None if b is None else wrap(gb, wshape, x.dtype, be),
    )


@rule("rms_norm")
def _rms_norm(node, g):
    x, w = node.inputs
    k, rstd = node.saved
    xc, gc = _contig(x), _contig(g)
    be = x._backend
    gx, gw = be.rms_norm_backward(
        gc._storage, xc._storage, x.shape, None if w is None else w._storage, rstd, x.dtype, k
    )
    return (
        wrap(gx, x.shape, x.dtype, be),
        None if w is None else wrap(gw, x.shape[x.ndim - k :], x.dtype, be),
    )


@rule("cross_entropy")
def _cross_entropy(node, g):
    logits = _in(node)
    target, lse, ignore_index, smoothing = node.saved
    lc, gc = _contig(logits), _contig(g)
    be = logits._backend
    s = be.cross_entropy_backward(
        gc._storage,
        lc._storage,
        logits.shape,
        target._storage,
        lse,
        logits.dtype,
        ignore_index,
        smoothing,
    )
    return (wrap(s, logits.shape, logits.dtype, be),)


@rule("conv2d")
def _conv2d(node, g):
    x, w = node.inputs
    stride, padding, dilation, groups = node.saved
    be = x._backend
    gx = gw = None
    if node.needs[0]:
        s = be.conv2d_grad_input(
            g._storage,
            g.layout,
            w._storage,
            w.layout,
            x.dtype,
            x.shape,
            stride,
            padding,
            dilation,
            groups,
        )
        gx = wrap(s, x.shape, x.dtype, be)
    if node.needs[1]:
        s = be.conv2d_grad_weight(
            g._storage,
            g.layout,
            x._storage,
            x.layout,
            x.dtype,
            w.shape,
            stride,
            padding,
            dilation,
            groups,
        )
        gw = wrap(s, w.shape, x.dtype, be)
    return gx, gw


@rule("max_pool2d")
def _max_pool2d(node, g):
    x = _in(node)
    indices, in_shape = node.saved
    s = x._backend.max_pool2d_backward(
        g._storage, g.layout, indices._storage, indices.layout, in_shape, x.dtype
    )
    return (wrap(s, in_shape, x.dtype, x._backend),)


@rule("avg_pool2d")
def _avg_pool2d(node, g):
    x = _in(node)
    in_shape, k, s_, p, ceil_mode, cip = node.saved
    s = x._backend.avg_pool2d_backward(
        g._storage, g.layout, in_shape, x.dtype, k, s_, p, ceil_mode, cip
    )
    return (wrap(s, in_shape, x.dtype, x._backend),)


@rule("adaptive_avg_pool2d")
def _adaptive_avg_pool2d(node, g):
    x = _in(node)
    s = x._backend.adaptive_avg_pool2d_backward(g._storage, g.layout, node.saved, x.dtype)
    return (wrap(s, node.saved, x.dtype, x._backend),)


# ---------------------------------------------------------------- user-defined Functions
@rule("custom")
def _custom(node, g):
    fn, ctx = node.saved
    grads = fn.backward(ctx, g)
    grads = grads if isinstance(grads, tuple) else (grads,)
    if len(grads) != len(node.inputs):
        raise TypeError(
            f"{fn.__name__}.backward returned {len(grads)} gradients for {len(node.inputs)} "
            "tensor inputs"
        )
    return grads
