"""The ONE mapping from PyTorch's ``op_db`` names to Shrew, read by ``test_opinfo.py``.

Each entry says which Shrew callable answers the op (called like the OpInfo's ``op``:
``fn(sample.input, *sample.args, **sample.kwargs)`` with Shrew tensors), how keywords are
renamed, and why any sample is not compared:

* ``unsupported`` — what Shrew does not take (a keyword, a dtype); the sample is not run;
* ``documented`` — a deliberate difference listed in shrew_core/README.md; the sample is
  run and must still differ from torch (so the reason cannot go stale).

Samples are capped deterministically to keep the suite inside its time budget: at most
``MAX_SAMPLES`` evenly spaced samples per op and dtype, none with more than ``MAX_NUMEL``
elements (large inputs are shrew_cpu's kernel tests' job). The cap is reported as
``capped`` in the counts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

import shrew_core as sc
import shrew_nn.functional as nnF

MAX_SAMPLES = 32
MAX_NUMEL = 20_000


class Unconvertible(Exception):
    """A sample holds something with no Shrew equivalent that no table rule accounts for."""


@dataclass(frozen=True)
class Rule:
    """A reason that applies to the samples for which ``when(sample, dtype)`` is true.
    ``strict=False`` (documented differences only): the sample may also agree, because
    torch itself is not consistent there."""

    reason: str
    when: Callable
    strict: bool = True

    def applies(self, sample, dtype: str) -> bool:
        return bool(self.when(sample, dtype))


def first_rule(rules, sample, dtype: str) -> Rule | None:
    for r in rules:
        if r.applies(sample, dtype):
            return r
    return None


def kw(name: str, reason: str, value=None) -> Rule:
    """Samples passing keyword ``name`` (with ``value``, when given)."""
    if value is None:
        return Rule(reason, lambda s, _d: name in s.kwargs)
    return Rule(reason, lambda s, _d: name in s.kwargs and s.kwargs[name] == value)


def when(reason: str, fn: Callable, strict: bool = True) -> Rule:
    return Rule(reason, fn, strict)


@dataclass
class Entry:
    fn: Callable
    family: str
    rename: dict = field(default_factory=dict)  # torch keyword -> Shrew keyword
    unsupported: tuple = ()
    documented: tuple = ()
    forward_only: tuple = ()  # rules for samples whose gradient torch cannot compute
    dtypes: tuple = ("float32", "float64", "int64")
    grad: bool = True
    tol: float = 1.0  # forward tolerance multiplier
    grad_tol: float = 1.0
    no_grad_args: tuple = ()  # argument positions / keywords never differentiated
    # For (values, indices) ops whose tie order torch leaves unspecified: sample -> (dim,
    # keepdim). The indices then need only pick torch's values from the input.
    tie_indices: Callable | None = None
    note: str = ""  # how the Shrew callable differs in form (adapters, modules)


# torch dtypes a sample may hold -> the Shrew dtype it becomes. int32/int16/int8 widen to
# int64 (Shrew has no narrower integers; the values are unchanged).
SHREW_DTYPE = {
    torch.float32: "f32", torch.float64: "f64", torch.float16: "f16", torch.bfloat16: "bf16",
    torch.int64: "i64", torch.uint8: "u8", torch.bool: "bool",
    torch.int32: "i64", torch.int16: "i64", torch.int8: "i64",
}  # fmt: skip


def _leaves(x):
    if isinstance(x, (list, tuple)):
        for v in x:
            yield from _leaves(v)
    elif isinstance(x, dict):
        for v in x.values():
            yield from _leaves(v)
    else:
        yield x


def _no_shrew_dtype(s, _d) -> bool:
    for v in _leaves((s.input, s.args, s.kwargs)):
        if isinstance(v, complex) or (isinstance(v, torch.Tensor) and v.dtype not in SHREW_DTYPE):
            return True
        if isinstance(v, torch.dtype) and v not in SHREW_DTYPE:
            return True
    return False


GLOBAL_UNSUPPORTED = (
    when("complex numbers or dtypes with no Shrew equivalent", _no_shrew_dtype),
    kw("out", "out= is not supported (Shrew ops return new tensors)"),
    when(
        "memory_format= other than contiguous/preserve: Shrew tensors are row-major",
        lambda s, _d: s.kwargs.get("memory_format", torch.contiguous_format)
        not in (torch.contiguous_format, torch.preserve_format),
    ),
)


# --------------------------------------------------------------------------- adapters
def _where(x, cond, other):
    return sc.where(cond, x, other)


def _var(fn):
    def call(x, *args, **kwargs):
        if args and isinstance(args[0], bool):  # var(x, unbiased)
            return fn(x, unbiased=args[0], **kwargs)
        return fn(x, *args, **kwargs)

    return call


def _embedding(weight, idx, **kwargs):
    return nnF.embedding(idx, weight, **kwargs)


def _pad(x, pad, mode="constant", value=None):
    return sc.pad(x, pad, mode=mode, value=value)


def _clamp_min(x, m):
    return sc.clamp(x, min=m)


def _clamp_max(x, m):
    return sc.clamp(x, max=m)


def _rdunder(op):
    return lambda x, other: op(other, x)


def _group_norm(x, num_groups, weight=None, bias=None, eps=1e-5):
    return nnF.group_norm(x, num_groups, weight, bias, eps)


def _batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False,
                momentum=0.1, eps=1e-5):  # fmt: skip
    return nnF.batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps)


def _linspace(start, end, steps, **kwargs):
    return sc.linspace(start, end, steps, **kwargs)


def _zeros(size, **kwargs):
    return sc.zeros(size, **kwargs)


def _ones(size, **kwargs):
    return sc.ones(size, **kwargs)


def _full(size, value, **kwargs):
    return sc.full(size, fill_value=value, **kwargs)


def _getitem(x, key):
    return x[key]


def _split_with_sizes(x, sizes, dim=0):
    return sc.split(x, list(sizes), dim)


def _broadcast_tensors(x, *others):
    return sc.broadcast_tensors(x, *others)


def _sum_to_size(x, *size):
    shape = tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list)) else size
    return x.sum_to_shape(shape)


def _arg(s, pos: int, name: str, default):
    if len(s.args) > pos:
        return s.args[pos]
    return s.kwargs.get(name, default)


def _topk_dim(s):
    return _arg(s, 1, "dim", -1), True


def _kthvalue_dim(s):
    return _arg(s, 1, "dim", -1), _arg(s, 2, "keepdim", False)


def _sdpa(*args, **kwargs):
    out = nnF.scaled_dot_product_attention(*args, **kwargs)
    return out[0] if isinstance(out, tuple) else out  # shrew_nn also returns the weights


def _loss(fn):
    return Entry(fn, "nn (shrew_nn)", no_grad_args=("weight", "pos_weight"))


def _method(name):
    return lambda x, *a, **k: getattr(x, name)(*a, **k)


# --------------------------------------------------------------------------- reasons
def _has_nan(s, dtype) -> bool:
    return dtype == "float64" and any(
        isinstance(t, torch.Tensor) and t.is_floating_point() and bool(t.isnan().any())
        for t in _leaves(s.input)
    )


TORCH_NAN_GRAD = when(
    "torch's gradient at NaN depends on the element's position (its vectorised loop and its "
    "scalar tail disagree); Shrew passes the gradient, as torch's scalar path does (README)",
    _has_nan,
    strict=False,
)
def _clamp_grad_fails(s, dtype) -> bool:
    """torch's clamp backward computes each bound's gradient in broadcast(x, bound)'s shape
    and fails when the result is larger."""
    shapes = [tuple(t.shape) for t in (s.input, *s.args) if isinstance(t, torch.Tensor)]
    full = torch.broadcast_shapes(*shapes)
    return dtype == "float64" and any(
        torch.broadcast_shapes(tuple(s.input.shape), tuple(b.shape)) != full
        for b in s.args
        if isinstance(b, torch.Tensor)
    )


CLAMP_BROADCAST_GRAD = when(
    "torch's clamp backward fails when min/max broadcast beyond the input's shape",
    _clamp_grad_fails,
)


FLOAT_KERNEL = when(
    "integer inputs: Shrew's convolution and pooling kernels are floating-point only "
    "(DTypeError)",
    lambda s, d: d == "int64",
)


def _unary(fn, **kw_):
    return Entry(fn, "elementwise", **kw_)


NUMBER_SELF = when(
    "the sample calls a reflected dunder with a Python number as self (torch returns "
    "NotImplemented or raises: not an operation)",
    lambda s, _d: not isinstance(s.input, torch.Tensor),
)


def _binary(fn, **kw_):
    return Entry(fn, "binary", **kw_)


def _reflected(op, **kw_):
    kw_["unsupported"] = (NUMBER_SELF,) + kw_.get("unsupported", ())
    return _binary(_rdunder(op), **kw_)


TABLE: dict[str, Entry] = {
    # ------------------------------------------------------------ elementwise unary
    "abs": _unary(sc.abs),
    "neg": _unary(sc.neg),
    "exp": _unary(sc.exp),
    "log": _unary(sc.log),
    "sqrt": _unary(sc.sqrt),
    "rsqrt": _unary(sc.rsqrt),
    "square": _unary(sc.square),
    "reciprocal": _unary(sc.reciprocal),
    "sin": _unary(sc.sin),
    "cos": _unary(sc.cos),
    "tanh": _unary(sc.tanh),
    "sigmoid": _unary(sc.sigmoid),
    "erf": _unary(sc.erf),
    "floor": _unary(sc.floor),
    "ceil": _unary(sc.ceil),
    "round": _unary(sc.round),
    "round.decimals_0": _unary(sc.round),
    "round.decimals_3": _unary(sc.round),
    "round.decimals_neg_3": _unary(sc.round),
    "sign": _unary(sc.sign),
    "log1p": _unary(sc.log1p),
    "expm1": _unary(sc.expm1),
    "nn.functional.relu": _unary(sc.relu),
    "nn.functional.gelu": _unary(sc.gelu),
    "nn.functional.silu": _unary(sc.silu),
    "nn.functional.hardtanh": _unary(sc.hardtanh, documented=(TORCH_NAN_GRAD,)),
    "nn.functional.elu": _unary(sc.elu, documented=(TORCH_NAN_GRAD,)),
    "clamp": _unary(sc.clamp, forward_only=(CLAMP_BROADCAST_GRAD,)),
    "clamp_min": _unary(_clamp_min),
    "clamp_max": _unary(_clamp_max),
    "logical_not": _unary(sc.logical_not),
    "float": _unary(_method("float")),
    "double": _unary(_method("double")),
    "long": _unary(_method("long")),
    "bool": _unary(_method("bool")),
    "half": _unary(_method("half")),
    "bfloat16": _unary(_method("bfloat16")),
    "item": _unary(_method("item")),
    # ------------------------------------------------------------ elementwise binary
    "add": _binary(sc.add),
    "sub": _binary(sc.sub),
    "mul": _binary(sc.mul),
    "div.no_rounding_mode": _binary(sc.div),
    "div.floor_rounding": _binary(sc.div),
    "div.trunc_rounding": _binary(sc.div),
    "true_divide": _binary(sc.div),
    "pow": _binary(sc.pow),
    "maximum": _binary(sc.maximum),
    "minimum": _binary(sc.minimum),
    "max.binary": _binary(sc.max),
    "min.binary": _binary(sc.min),
    "floor_divide": _binary(sc.floor_divide),
    "remainder": _binary(sc.remainder),
    "eq": _binary(sc.eq),
    "ne": _binary(sc.ne),
    "lt": _binary(sc.lt),
    "le": _binary(sc.le),
    "gt": _binary(sc.gt),
    "ge": _binary(sc.ge),
    "logical_and": _binary(sc.logical_and),
    "logical_or": _binary(sc.logical_or),
    "logical_xor": _binary(sc.logical_xor),
    "where": _binary(_where, note="op_db calls the method form x.where(cond, other)"),
    "masked_fill": _binary(sc.masked_fill),
    "__radd__": _binary(_rdunder(sc.add)),
    "__rsub__": _reflected(sc.sub),
    "__rmul__": _binary(_rdunder(sc.mul)),
    "__rdiv__": _binary(_rdunder(sc.div)),
    "__rpow__": _reflected(sc.pow),
    "__rmod__": _reflected(
        sc.remainder,
        forward_only=(
            when(
                "torch has no derivative of remainder(number, tensor) with respect to the tensor",
                lambda s, d: d == "float64" and not isinstance(s.args[0], torch.Tensor),
            ),
        ),
    ),
    # ------------------------------------------------------------ reductions
    "sum": Entry(sc.sum, "reduction"),
    "mean": Entry(sc.mean, "reduction"),
    "prod": Entry(sc.prod, "reduction"),
    "amax": Entry(sc.amax, "reduction"),
    "amin": Entry(sc.amin, "reduction"),
    "max.reduction_no_dim": Entry(sc.max, "reduction"),
    "max.reduction_with_dim": Entry(sc.max, "reduction"),
    "min.reduction_no_dim": Entry(sc.min, "reduction"),
    "min.reduction_with_dim": Entry(sc.min, "reduction"),
    "argmax": Entry(sc.argmax, "reduction"),
    "argmin": Entry(sc.argmin, "reduction"),
    "var": Entry(_var(sc.var), "reduction"),
    "var.unbiased": Entry(_var(sc.var), "reduction"),
    "std": Entry(_var(sc.std), "reduction"),
    "std.unbiased": Entry(_var(sc.std), "reduction"),
    "logsumexp": Entry(sc.logsumexp, "reduction"),
    "cumsum": Entry(sc.cumsum, "reduction"),
    "norm": Entry(sc.norm, "reduction", note="torch.norm's p='fro' is the 2-norm"),
    "linalg.vector_norm": Entry(sc.norm, "reduction", rename={"ord": "p"}),
    "all": Entry(sc.all, "reduction"),
    "any": Entry(sc.any, "reduction"),
    # ------------------------------------------------------------ linear algebra
    "matmul": Entry(sc.matmul, "linalg"),
    "__rmatmul__": Entry(_rdunder(sc.matmul), "linalg"),
    "mm": Entry(sc.mm, "linalg"),
    "bmm": Entry(sc.bmm, "linalg"),
    "dot": Entry(sc.dot, "linalg"),
    "outer": Entry(sc.outer, "linalg"),
    "nn.functional.linear": Entry(sc.linear, "linalg"),
    # ------------------------------------------------------------ shape
    "reshape": Entry(sc.reshape, "shape"),
    "view": Entry(sc.view, "shape"),
    "flatten": Entry(sc.flatten, "shape"),
    "unflatten": Entry(sc.unflatten, "shape"),
    "squeeze": Entry(sc.squeeze, "shape"),
    "squeeze.multiple": Entry(sc.squeeze, "shape"),
    "unsqueeze": Entry(sc.unsqueeze, "shape"),
    "permute": Entry(sc.permute, "shape"),
    "transpose": Entry(sc.transpose, "shape"),
    "t": Entry(sc.t, "shape"),
    "T": Entry(lambda x: x.T, "shape"),
    "mT": Entry(lambda x: x.mT, "shape"),
    "expand": Entry(sc.expand, "shape"),
    "expand_as": Entry(sc.expand_as, "shape"),
    "broadcast_to": Entry(sc.broadcast_to, "shape"),
    "broadcast_tensors": Entry(_broadcast_tensors, "shape"),
    "narrow": Entry(sc.narrow, "shape"),
    "select": Entry(sc.select, "shape"),
    "contiguous": Entry(sc.contiguous, "shape"),
    "clone": Entry(sc.clone, "shape"),
    "split": Entry(sc.split, "shape"),
    "split.list_args": Entry(sc.split, "shape"),
    "split_with_sizes": Entry(_split_with_sizes, "shape"),
    "chunk": Entry(sc.chunk, "shape"),
    "unbind": Entry(sc.unbind, "shape"),
    "cat": Entry(sc.cat, "shape"),
    "stack": Entry(sc.stack, "shape"),
    "flip": Entry(sc.flip, "shape"),
    "repeat": Entry(sc.repeat, "shape"),
    "sum_to_size": Entry(_sum_to_size, "shape"),
    "nn.functional.pad.constant": Entry(_pad, "shape"),
    "nn.functional.pad.reflect": Entry(_pad, "shape"),
    "nn.functional.pad.replicate": Entry(_pad, "shape"),
    "nn.functional.pad.replicate_negative": Entry(_pad, "shape"),
    "nn.functional.pad.circular": Entry(_pad, "shape"),
    "triu": Entry(sc.triu, "shape"),
    "tril": Entry(sc.tril, "shape"),
    # ------------------------------------------------------------ indexing
    "__getitem__": Entry(_getitem, "indexing"),
    "index_select": Entry(sc.index_select, "indexing"),
    "gather": Entry(sc.gather, "indexing"),
    "scatter_add": Entry(sc.scatter_add, "indexing"),
    "index_add": Entry(sc.index_add, "indexing"),
    "nonzero": Entry(sc.nonzero, "indexing"),
    "masked_select": Entry(sc.masked_select, "indexing"),
    "nn.functional.one_hot": Entry(sc.one_hot, "indexing"),
    "nn.functional.embedding": Entry(
        _embedding,
        "indexing",
        note="shrew_nn.functional.embedding(indices, weight); op_db passes the weight first",
        unsupported=(
            kw("max_norm", "max_norm= (in-place renormalisation) is not supported"),
            kw("scale_grad_by_freq", "scale_grad_by_freq= is not supported"),
            kw("sparse", "sparse= gradients are not supported (Shrew tensors are dense)"),
        ),
    ),
    # ------------------------------------------------------------ sorting
    "sort": Entry(sc.sort, "sorting"),
    "argsort": Entry(sc.argsort, "sorting"),
    "topk": Entry(sc.topk, "sorting", tie_indices=_topk_dim),
    "kthvalue": Entry(sc.kthvalue, "sorting", tie_indices=_kthvalue_dim),
    # ------------------------------------------------------------ creation
    "arange": Entry(sc.arange, "creation"),
    "linspace": Entry(_linspace, "creation"),
    "linspace.tensor_overload": Entry(_linspace, "creation"),
    "eye": Entry(sc.eye, "creation"),
    "zeros": Entry(_zeros, "creation"),
    "ones": Entry(_ones, "creation"),
    "full": Entry(_full, "creation"),
    "zeros_like": Entry(sc.zeros_like, "creation"),
    "ones_like": Entry(sc.ones_like, "creation"),
    "full_like": Entry(sc.full_like, "creation"),
    # ------------------------------------------------------------ nn kernels
    "softmax": Entry(sc.softmax, "nn"),
    "softmax.with_dtype": Entry(sc.softmax, "nn"),
    "log_softmax": Entry(sc.log_softmax, "nn"),
    "log_softmax.with_dtype": Entry(sc.log_softmax, "nn"),
    "nn.functional.layer_norm": Entry(sc.layer_norm, "nn"),
    "nn.functional.rms_norm": Entry(sc.rms_norm, "nn"),
    "nn.functional.group_norm": Entry(_group_norm, "nn"),
    "nn.functional.batch_norm": Entry(_batch_norm, "nn", no_grad_args=(1, 2)),
    "nn.functional.conv1d": Entry(sc.conv1d, "nn", unsupported=(FLOAT_KERNEL,), tol=4),
    "nn.functional.conv2d": Entry(sc.conv2d, "nn", unsupported=(FLOAT_KERNEL,), tol=4),
    "nn.functional.max_pool2d": Entry(sc.max_pool2d, "nn", unsupported=(FLOAT_KERNEL,)),
    "nn.functional.avg_pool2d": Entry(sc.avg_pool2d, "nn", unsupported=(FLOAT_KERNEL,)),
    "nn.functional.adaptive_avg_pool2d": Entry(sc.adaptive_avg_pool2d, "nn"),
    # ------------------------------------------------------------ shrew_nn.functional
    "nn.functional.leaky_relu": Entry(nnF.leaky_relu, "nn (shrew_nn)"),
    "nn.functional.softplus": Entry(nnF.softplus, "nn (shrew_nn)"),
    "nn.functional.mish": Entry(nnF.mish, "nn (shrew_nn)"),
    "nn.functional.logsigmoid": Entry(nnF.logsigmoid, "nn (shrew_nn)"),
    "nn.functional.mse_loss": _loss(nnF.mse_loss),
    "nn.functional.l1_loss": _loss(nnF.l1_loss),
    "nn.functional.smooth_l1_loss": _loss(nnF.smooth_l1_loss),
    "nn.functional.huber_loss": _loss(nnF.huber_loss),
    "nn.functional.binary_cross_entropy": _loss(nnF.binary_cross_entropy),
    "nn.functional.binary_cross_entropy_with_logits": _loss(
        nnF.binary_cross_entropy_with_logits
    ),
    "nn.functional.nll_loss": _loss(nnF.nll_loss),
    "nn.functional.cross_entropy": _loss(nnF.cross_entropy),
    "nn.functional.scaled_dot_product_attention": Entry(
        _sdpa,
        "nn (shrew_nn)",
        tol=4,
        unsupported=(
            when(
                "dropout_p > 0 draws a random mask (Shrew's generator is not torch's)",
                lambda s, _d: s.kwargs.get("dropout_p", 0.0) > 0,
            ),
        ),
    ),
}
