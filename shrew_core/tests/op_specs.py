"""The op-spec table: one entry per op drives forward, gradient and finite-difference tests.

Each entry's ``fn(m, *xs)`` is written once against the names shrew_core and PyTorch
share (methods like ``x.sum(1)``, ``m.lib.cat``, ``m.F.softmax``); where the two
spell an op differently, ``ref`` gives the PyTorch side.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

ALL_FLOATS = ("float32", "float64", "float16", "bfloat16")
FULL = ("float32", "float64")


@dataclass
class Op:
    name: str
    fn: Callable
    shapes: tuple
    domain: str = "any"  # any | pos | unit | nonzero | distinct
    dtypes: tuple = ALL_FLOATS
    grad: bool = True
    fd: bool = True  # finite differences are meaningful (smooth at the samples)
    variants: bool = True  # also run on non-contiguous views
    ref: Callable | None = None  # the PyTorch side, when spelled differently
    tol: float = 1.0  # tolerance multiplier
    elementwise: bool = False  # also run on 0-d and empty inputs
    extra: dict = field(default_factory=dict)


def _unary(name, domain="any", **kw):
    return Op(name, lambda m, x: getattr(x, name)(), ((3, 4),), domain, elementwise=True, **kw)


OPS: list[Op] = [
    # ---- unary
    _unary("neg"),
    _unary("abs", "nonzero"),
    _unary("exp"),
    _unary("log", "pos"),
    _unary("sqrt", "pos"),
    _unary("rsqrt", "pos"),
    _unary("square"),
    _unary("reciprocal", "nonzero"),
    _unary("sin"),
    _unary("cos"),
    _unary("tanh"),
    _unary("sigmoid"),
    _unary("relu", "nonzero"),
    _unary("erf"),
    _unary("log1p", "pos"),
    _unary("expm1"),
    _unary("floor", fd=False),
    _unary("ceil", fd=False),
    _unary("round", fd=False),
    _unary("sign", "nonzero", fd=False),
    Op("silu", lambda m, x: m.F.silu(x), ((3, 4),), elementwise=True),
    Op("gelu", lambda m, x: m.F.gelu(x), ((3, 4),), elementwise=True),
    Op("gelu_tanh", lambda m, x: m.F.gelu(x, approximate="tanh"), ((3, 4),), elementwise=True),
    Op(
        "affine",
        lambda m, x: x.affine(2.0, -1.0),
        ((3, 4),),
        ref=lambda m, x: x * 2.0 - 1.0,
        elementwise=True,
    ),
    Op("powf", lambda m, x: x.powf(3.0), ((3, 4),), ref=lambda m, x: x.pow(3.0), elementwise=True),
    Op("clamp", lambda m, x: x.clamp(-0.5, 0.5), ((3, 4),), fd=False, elementwise=True),
    Op("clamp_min", lambda m, x: x.clamp(min=0.1), ((3, 4),), fd=False),
    # ---- binary, with broadcasting and scalars
    Op("add", lambda m, x, y: x + y, ((3, 4), (3, 4)), elementwise=True),
    Op("add_bcast", lambda m, x, y: x + y, ((2, 1, 4), (3, 1))),
    Op("sub_bcast", lambda m, x, y: x - y, ((3, 4), (4,)), elementwise=True),
    Op("mul_bcast", lambda m, x, y: x * y, ((3, 1), (1, 4)), elementwise=True),
    Op("div", lambda m, x, y: x / y, ((3, 4), (3, 4)), "nonzero", elementwise=True),
    Op("pow", lambda m, x, y: x**y, ((3, 4), (3, 4)), "pos", elementwise=True),
    Op("maximum", lambda m, x, y: m.lib.maximum(x, y), ((3, 4), (4,)), elementwise=True),
    Op("minimum", lambda m, x, y: m.lib.minimum(x, y), ((3, 4), (3, 4)), elementwise=True),
    Op("radd_scalar", lambda m, x: 2.5 + x, ((3, 4),), elementwise=True),
    Op("rsub_scalar", lambda m, x: 2.5 - x, ((3, 4),), elementwise=True),
    Op("rdiv_scalar", lambda m, x: 2.0 / x, ((3, 4),), "nonzero", elementwise=True),
    Op("rpow_scalar", lambda m, x: 2.0**x, ((3, 4),), elementwise=True),
    Op("pow_scalar", lambda m, x: x**2, ((3, 4),), elementwise=True),
    Op("remainder", lambda m, x: x % 0.7, ((3, 4),), fd=False),
    Op(
        "where",
        lambda m, x, y: m.lib.where(x > 0, x, y),
        ((3, 4), (3, 4)),
        "nonzero",
        elementwise=True,
    ),
    Op("where_bcast", lambda m, x, y: m.lib.where(x > 0, x, y), ((3, 4), (4,)), "nonzero"),
    Op("masked_fill", lambda m, x: x.masked_fill(x > 0.5, 0.0), ((3, 4),), "nonzero", fd=False),
    Op("gt", lambda m, x, y: x > y, ((3, 4), (4,)), grad=False, elementwise=True),
    Op("le", lambda m, x, y: x <= y, ((3, 4), (3, 4)), grad=False, elementwise=True),
    Op("eq", lambda m, x: x == x.floor(), ((3, 4),), grad=False),
    # ---- reductions
    Op("sum_all", lambda m, x: x.sum(), ((3, 4),)),
    Op("sum_dim", lambda m, x: x.sum(1), ((3, 4),)),
    Op("sum_dims_keep", lambda m, x: x.sum((0, 2), keepdim=True), ((2, 3, 4),)),
    Op("sum_neg_dim", lambda m, x: x.sum(-1), ((2, 3, 4),)),
    Op("mean_all", lambda m, x: x.mean(), ((3, 4),)),
    Op("mean_dims", lambda m, x: x.mean((0, 1)), ((2, 3, 4),)),
    Op("prod_dim", lambda m, x: x.prod(1), ((3, 4),), "nonzero"),
    Op("amax", lambda m, x: x.amax(1), ((3, 4),), "distinct"),
    Op("amin_all", lambda m, x: x.amin(), ((3, 4),), "distinct"),
    Op("max_dim", lambda m, x: x.max(1), ((3, 4),), "distinct"),
    Op("min_dim_keep", lambda m, x: x.min(0, keepdim=True), ((3, 4),), "distinct"),
    Op("max_all", lambda m, x: x.max(), ((3, 4),), "distinct"),
    Op("argmax", lambda m, x: x.argmax(1), ((3, 4),), "distinct", grad=False),
    Op("argmin_all", lambda m, x: x.argmin(), ((3, 4),), "distinct", grad=False),
    Op("var", lambda m, x: x.var(1), ((3, 4),)),
    Op("var_biased", lambda m, x: x.var(0, correction=0), ((3, 4),)),
    Op("std", lambda m, x: x.std(1, keepdim=True), ((3, 4),)),
    Op("logsumexp", lambda m, x: x.logsumexp(1), ((3, 4),)),
    Op("cumsum", lambda m, x: x.cumsum(1), ((3, 4),)),
    Op("norm", lambda m, x: x.norm(2, 1), ((3, 4),), ref=lambda m, x: x.norm(p=2, dim=1)),
    Op("softmax", lambda m, x: m.F.softmax(x, -1), ((3, 4),)),
    Op("softmax_dim0", lambda m, x: m.F.softmax(x, 0), ((3, 4),)),
    Op("log_softmax", lambda m, x: m.F.log_softmax(x, 1), ((2, 3, 4),)),
    # ---- matmul
    Op("matmul", lambda m, x, y: x @ y, ((3, 4), (4, 5)), tol=4),
    Op("matmul_batched", lambda m, x, y: x @ y, ((2, 3, 4), (2, 4, 5)), tol=4),
    Op("matmul_bcast", lambda m, x, y: x @ y, ((2, 1, 3, 4), (3, 4, 2)), tol=4),
    Op("matmul_3d_2d", lambda m, x, y: x @ y, ((2, 3, 4), (4, 5)), tol=4),
    Op("matmul_vec_mat", lambda m, x, y: x @ y, ((4,), (4, 5)), tol=4),
    Op("matmul_mat_vec", lambda m, x, y: x @ y, ((3, 4), (4,)), tol=4),
    Op("matmul_dot", lambda m, x, y: x @ y, ((4,), (4,)), tol=4),
    Op("linear", lambda m, x, w, b: m.F.linear(x, w, b), ((2, 3, 4), (5, 4), (5,)), tol=4),
    Op("linear_2d_nobias", lambda m, x, w: m.F.linear(x, w), ((3, 4), (5, 4)), tol=4),
    Op("linear_1d", lambda m, x, w, b: m.F.linear(x, w, b), ((4,), (5, 4), (5,)), tol=4),
    # ---- shape
    Op("reshape", lambda m, x: x.reshape(2, -1), ((2, 3, 4),)),
    Op("reshape_flat", lambda m, x: x.reshape(-1), ((3, 4),)),
    Op("view_like_flatten", lambda m, x: x.flatten(1), ((2, 3, 4),)),
    Op("transpose", lambda m, x: x.transpose(0, 2), ((2, 3, 4),)),
    Op("permute", lambda m, x: x.permute(2, 0, 1), ((2, 3, 4),)),
    Op("t", lambda m, x: x.t(), ((3, 4),)),
    Op("narrow", lambda m, x: x.narrow(1, 1, 2), ((3, 4),)),
    Op("squeeze", lambda m, x: x.unsqueeze(1).squeeze(1), ((3, 4),)),
    Op("unsqueeze", lambda m, x: x.unsqueeze(-1), ((3, 4),)),
    Op("expand", lambda m, x: x.expand(2, 3, 4), ((3, 1),)),
    Op("getitem", lambda m, x: x[1:, ::2], ((3, 4),)),
    Op("getitem_ellipsis", lambda m, x: x[..., 1], ((2, 3, 4),)),
    Op("getitem_none", lambda m, x: x[None, :, 0], ((3, 4),)),
    Op("getitem_index", lambda m, x: x[m.idx([2, 0, 2])], ((3, 4),)),
    Op("cat", lambda m, x, y: m.lib.cat([x, y], 1), ((3, 4), (3, 2))),
    Op("stack", lambda m, x, y: m.lib.stack([x, y], 1), ((3, 4), (3, 4))),
    Op("chunk", lambda m, x: x.chunk(2, 1)[1], ((3, 4),)),
    Op("split", lambda m, x: x.split(3, 1)[1], ((3, 4),)),
    Op("pad", lambda m, x: m.F.pad(x, (1, 2, 0, 1), value=0.5), ((3, 4),)),
    Op("flip", lambda m, x: x.flip(1), ((3, 4),)),
    Op("repeat", lambda m, x: x.repeat(2, 1, 3), ((3, 4),)),
    Op("contiguous", lambda m, x: x.t().contiguous(), ((3, 4),)),
    # ---- indexing
    Op("index_select", lambda m, x: x.index_select(1, m.idx([3, 0, 0, 2])), ((3, 4),)),
    Op("gather", lambda m, x: x.gather(1, m.idx([[0, 3], [1, 1], [2, 0]])), ((3, 4),)),
    Op("scatter_add", lambda m, x, s: x.scatter_add(0, m.idx([[0, 2, 2, 1]]), s), ((3, 4), (1, 4))),
    Op(
        "embedding",
        lambda m, w: m.lib.embedding(w, m.idx([[1, 2], [2, 0]])),
        ((3, 4),),
        ref=lambda m, w: m.F.embedding(m.idx([[1, 2], [2, 0]]), w),
    ),
    Op("sort", lambda m, x: x.sort(1), ((3, 4),), "distinct"),
    Op("sort_desc", lambda m, x: x.sort(0, descending=True), ((3, 4),), "distinct"),
    Op("topk", lambda m, x: x.topk(2, 1), ((3, 4),), "distinct"),
    Op("kthvalue", lambda m, x: x.kthvalue(2, 1), ((3, 4),), "distinct"),
    # ---- nn kernels
    Op(
        "layer_norm",
        lambda m, x, w, b: m.F.layer_norm(x, (4,), w, b),
        ((2, 3, 4), (4,), (4,)),
        tol=4,
    ),
    Op("layer_norm_2d", lambda m, x: m.F.layer_norm(x, (3, 4)), ((2, 3, 4),), tol=4),
    Op("rms_norm", lambda m, x, w: m.F.rms_norm(x, (4,), w, eps=1e-5), ((3, 4), (4,)), tol=4),
    Op(
        "cross_entropy",
        lambda m, x: m.lib.cross_entropy_rows(x, m.idx([1, 0, 3])),
        ((3, 4),),
        ref=lambda m, x: m.F.cross_entropy(x, m.idx([1, 0, 3]), reduction="none"),
        tol=4,
    ),
    Op(
        "cross_entropy_smooth_ignore",
        lambda m, x: m.lib.cross_entropy_rows(x, m.idx([1, -100, 3]), label_smoothing=0.1),
        ((3, 4),),
        ref=lambda m, x: m.F.cross_entropy(
            x, m.idx([1, -100, 3]), reduction="none", label_smoothing=0.1
        ),
        tol=4,
    ),
    Op(
        "conv2d",
        lambda m, x, w, b: m.F.conv2d(x, w, b, stride=(2, 1), padding=1),
        ((2, 3, 5, 6), (4, 3, 3, 2), (4,)),
        dtypes=FULL,
        variants=False,
        tol=4,
    ),
    Op(
        "conv2d_dil_groups",
        lambda m, x, w: m.F.conv2d(x, w, dilation=2, groups=2, padding=2),
        ((1, 4, 6, 6), (2, 2, 3, 3)),
        dtypes=FULL,
        variants=False,
        tol=4,
    ),
    Op(
        "conv1d",
        lambda m, x, w: m.F.conv1d(x, w, stride=2, padding=1),
        ((2, 3, 7), (4, 3, 3)),
        dtypes=FULL,
        variants=False,
        tol=4,
    ),
    Op(
        "max_pool2d",
        lambda m, x: m.F.max_pool2d(x, 2),
        ((1, 2, 4, 6),),
        "distinct",
        dtypes=FULL,
        variants=False,
    ),
    Op(
        "max_pool2d_pad_stride",
        lambda m, x: m.F.max_pool2d(x, 3, stride=2, padding=1),
        ((1, 2, 5, 5),),
        "distinct",
        dtypes=FULL,
        variants=False,
    ),
    Op(
        "avg_pool2d",
        lambda m, x: m.F.avg_pool2d(x, 3, stride=2, padding=1),
        ((1, 2, 5, 6),),
        dtypes=FULL,
        variants=False,
    ),
    Op(
        "avg_pool2d_ceil_nopad",
        lambda m, x: m.F.avg_pool2d(
            x, 2, stride=2, padding=1, ceil_mode=True, count_include_pad=False
        ),
        ((1, 2, 5, 5),),
        dtypes=FULL,
        variants=False,
    ),
    Op(
        "adaptive_avg_pool2d",
        lambda m, x: m.F.adaptive_avg_pool2d(x, (2, 3)),
        ((1, 2, 5, 7),),
        dtypes=FULL,
        variants=False,
    ),
    Op("to_f64", lambda m, x: x.to(m.f64) * 2, ((3, 4),), dtypes=("float32",)),
    # ---- issue 17: keywords and modes PyTorch users pass
    Op("sum_dtype", lambda m, x: x.sum(1, dtype=m.f64), ((3, 4),)),
    Op("mean_dtype", lambda m, x: x.mean(0, dtype=m.f64), ((3, 4),)),
    Op("cumsum_dtype", lambda m, x: x.cumsum(0, dtype=m.f64), ((3, 4),)),
    Op("prod_dtype", lambda m, x: x.prod(1, dtype=m.f64), ((3, 4),), "nonzero"),
    Op("softmax_dtype", lambda m, x: m.F.softmax(x, -1, dtype=m.f64), ((3, 4),)),
    Op("log_softmax_dtype", lambda m, x: m.F.log_softmax(x, 0, dtype=m.f64), ((3, 4),)),
    Op("sum_dim_empty_tuple", lambda m, x: x.sum(dim=()), ((3, 4),)),
    Op("mean_dim_empty_tuple", lambda m, x: x.mean(dim=()), ((3, 4),)),
    Op("amax_dim_empty_tuple", lambda m, x: x.amax(dim=()), ((3, 4),), "distinct"),
    Op("norm_p3", lambda m, x: x.norm(3, 1), ((3, 4),), ref=lambda m, x: x.norm(p=3, dim=1)),
    Op("norm_fro", lambda m, x: x.norm("fro"), ((3, 4),)),
    Op("norm_inf", lambda m, x: x.norm(float("inf"), 0), ((3, 4),), "distinct",
       ref=lambda m, x: x.norm(p=float("inf"), dim=0)),  # fmt: skip
    Op("norm_neg_inf", lambda m, x: x.norm(float("-inf")), ((3, 4),), "distinct",
       ref=lambda m, x: m.lib.linalg.vector_norm(x, ord=float("-inf"))),  # fmt: skip
    Op("norm_p0", lambda m, x: x.norm(0, 1), ((3, 4),), ref=lambda m, x: x.norm(p=0, dim=1)),
    Op(
        "index_add_alpha",
        lambda m, x, s: x.index_add(0, m.idx([2, 0, 2]), s, alpha=-1.5),
        ((3, 4), (3, 4)),
    ),
    Op("pad_reflect", lambda m, x: m.F.pad(x, (1, 2, 2, 1), mode="reflect"), ((2, 3, 4, 5),)),
    Op("pad_replicate", lambda m, x: m.F.pad(x, (2, -1, 0, 3), mode="replicate"), ((1, 3, 4),)),
    Op("pad_circular", lambda m, x: m.F.pad(x, (1, 3, -1, 2), mode="circular"), ((2, 3, 4, 5),)),
    Op("pad_torch_positional", lambda m, x: m.F.pad(x, (1, 1), "constant", 0.5), ((3, 4),)),
    Op(
        "avg_pool2d_divisor_override",
        lambda m, x: m.F.avg_pool2d(x, 3, stride=2, padding=1, divisor_override=5),
        ((1, 2, 5, 6),),
        dtypes=FULL,
        variants=False,
    ),
    Op(
        "avg_pool2d_pad_1tuple",
        lambda m, x: m.F.avg_pool2d(x, 3, 1, (1,)),
        ((1, 2, 4, 5),),
        dtypes=FULL,
        variants=False,
    ),
    Op(
        "adaptive_avg_pool2d_none",
        lambda m, x: m.F.adaptive_avg_pool2d(x, (None, 3)),
        ((1, 2, 5, 7),),
        dtypes=FULL,
        variants=False,
    ),
    Op(
        "conv2d_same_even_kernel",
        lambda m, x, w: m.F.conv2d(x, w, padding="same", dilation=(1, 3)),
        ((1, 2, 5, 6), (3, 2, 2, 4)),
        dtypes=FULL,
        variants=False,
        tol=4,
    ),
    Op("elu", lambda m, x: m.F.elu(x, alpha=0.7), ((3, 4),), "nonzero", elementwise=True),
    Op("hardtanh", lambda m, x: m.F.hardtanh(x, -0.5, 0.5), ((3, 4),), fd=False,
       elementwise=True),  # fmt: skip
    Op("clamp_tensor_bounds", lambda m, x, lo, hi: x.clamp(lo, hi), ((3, 4), (3, 4), (4,)),
       fd=False),  # fmt: skip
]


@dataclass
class Case:
    """An op on fixed inputs (ties, NaN, 0-d, empty): forward and float64 gradients vs torch.
    Float inputs take the case's dtype; integer arrays stay int64."""

    name: str
    fn: Callable
    inputs: tuple = ()
    ref: Callable | None = None
    grad: bool = True
    dtypes: tuple = FULL


NAN = float("nan")
_CUBE = np.arange(125.0).reshape(5, 5, 5)

FIXED: list[Case] = [
    # advanced indexing: several lists pair up (NumPy/torch), masks over leading dims
    Case("getitem_three_lists", lambda m, x: x[[0, 2, 3], [1, 3, 3], [0, 0, 2]], (_CUBE,)),
    Case("getitem_two_lists", lambda m, x: x[[0, 3], [1, 2]], (_CUBE,)),
    Case("getitem_lists_and_slice", lambda m, x: x[1:4, [0, 2], [4, 1]], (_CUBE,)),
    Case("getitem_bool_leading", lambda m, x: x[m.mask([True, False, True, False, True])],
         (_CUBE,)),  # fmt: skip
    Case("getitem_separated_lists", lambda m, x: x[:, [0, 1], :, [0, 1]],
         (np.arange(81.0).reshape(3, 3, 3, 3),)),  # fmt: skip
    Case("getitem_int_then_list", lambda m, x: x[0, :, [1, 2]], (_CUBE,)),
    Case("getitem_negative_list", lambda m, x: x[[-1, 0], [-2, 1]], (_CUBE,)),
    Case("getitem_negative_tensor", lambda m, x: x[m.idx([-1, 0, -5])], (_CUBE,)),
    Case("getitem_list_ellipsis", lambda m, x: x[[0, 3], ...], (_CUBE,)),
    Case("sign_and_abs_grad_at_nan", lambda m, x: x.abs() * 2.0 + x.sign(),
         (np.array([NAN, -0.0, 0.0, -2.0, 3.0]),)),  # fmt: skip
    # norms
    Case("norm_neg_inf", lambda m, x: x.norm(float("-inf")), (np.array([3.0, -0.5, 2.0]),)),
    Case("norm_zero_counts", lambda m, x: x.norm(0), (np.array([[1.0, 0.0], [-2.0, 0.0]]),)),
    Case("norm_at_zero_vector", lambda m, x: x.norm(), (np.zeros(3),)),
    Case("norm_p3_at_zero", lambda m, x: x.norm(3), (np.zeros(3),)),
    # integer division rounding toward zero stays exact integer arithmetic
    Case("div_trunc_int_exact", lambda m, a, b: m.lib.div(a, b, rounding_mode="trunc"),
         (np.array([2**40 + 1, -7, 7, 0]), np.array([1, 2, -2, 3])), grad=False),  # fmt: skip
    Case("div_trunc_infinite_quotient", lambda m, a, b: m.lib.div(a, b, rounding_mode="trunc"),
         (np.array([1.0, -1.0, 3.0]), np.array([0.0, 0.0, 2.0]))),  # fmt: skip
    # gradients at boundaries, ties and NaN
    Case("hardtanh_at_bounds", lambda m, x: m.F.hardtanh(x), (np.array([-1.0, 1.0, 0.5, -3.0]),)),
    Case("clamp_min_tensor_tie", lambda m, x, lo: x.clamp(min=lo),
         (np.array([0.5, 1.0, -1.0]), np.array([0.5, 0.0, 0.0]))),  # fmt: skip
    Case("clamp_max_tensor_tie", lambda m, x, hi: x.clamp(max=hi),
         (np.array([0.5, 1.0, -1.0]), np.array([0.5, 0.0, 0.0]))),  # fmt: skip
    Case("clamp_tensor_min_above_max", lambda m, x, lo, hi: x.clamp(lo, hi),
         (np.array([0.0, 2.0, -2.0]), np.array([1.0, 1.0, 1.0]), np.array([-1.0, -1.0, -1.0]))),
    Case("maximum_nan_and_ties", lambda m, a, b: m.lib.maximum(a, b),
         (np.array([NAN, 1.0, 2.0, 3.0]), np.array([1.0, NAN, 2.0, 1.0]))),  # fmt: skip
    Case("minimum_nan_and_ties", lambda m, a, b: m.lib.minimum(a, b),
         (np.array([NAN, 1.0, 2.0, 3.0]), np.array([1.0, NAN, 2.0, 1.0]))),  # fmt: skip
    Case("relu_nan", lambda m, x: x.relu(), (np.array([NAN, -1.0, 0.0, 2.0]),)),
    Case("elu_nan", lambda m, x: m.F.elu(x), (np.array([NAN, -1.0, 0.5]),)),
    # 0-d inputs
    Case("index_select_0d", lambda m, x: x.index_select(0, m.idx([0])), (np.array(2.5),)),
    Case("kthvalue_0d", lambda m, x: x.kthvalue(1), (np.array(2.5),)),
    Case("squeeze_0d_dim", lambda m, x: x.squeeze(0), (np.array(2.5),)),
    Case("squeeze_0d_dims", lambda m, x: x.squeeze((0,)), (np.array(2.5),)),
    Case("gather_0d", lambda m, x: x.gather(0, m.idx(0)), (np.array(2.5),)),
    Case("gather_0d_1d_index", lambda m, x: x.gather(0, m.idx([0, 0])), (np.array(2.5),)),
    Case("scatter_add_0d", lambda m, x, s: x.scatter_add(0, m.idx(0), s),
         (np.array(2.5), np.array(-1.0))),  # fmt: skip
    Case("index_add_0d", lambda m, x, s: x.index_add(0, m.idx([0]), s, alpha=2),
         (np.array(2.5), np.array(-1.0))),  # fmt: skip
    # empty tensors
    Case("softmax_empty", lambda m, x: m.F.softmax(x, -1), (np.zeros((5, 0, 0)),)),
    Case("log_softmax_empty", lambda m, x: m.F.log_softmax(x, 1), (np.zeros((5, 0, 0)),)),
    Case("logsumexp_empty", lambda m, x: x.logsumexp(0), (np.zeros(0),)),
    Case("cat_legacy_empty", lambda m, a, b: m.lib.cat([a, b]), (np.zeros(0), np.ones((2, 2)))),
    Case("gather_empty_index", lambda m, x: x.gather(0, m.idx(np.zeros((2, 0), np.int64))),
         (np.arange(5.0),)),  # fmt: skip
    # constructors
    Case("arange_int_dtype_truncates", lambda m: m.lib.arange(0.0, -8.000001, -4.0, dtype=m.i64)),
    Case("linspace_int_dtype", lambda m: m.lib.linspace(-2.0, 50, 7, dtype=m.i64)),
    Case("linspace_tensor_ends", lambda m, a, b: m.lib.linspace(a, b, 5),
         (np.array(-1.5), np.array(2.0)), grad=False),  # fmt: skip
    Case("nonzero_as_tuple", lambda m, x: x.nonzero(as_tuple=True),
         (np.array([[0.0, 1.0], [2.0, 0.0]]),), grad=False),  # fmt: skip
    Case("nonzero_as_tuple_0d", lambda m, x: x.nonzero(as_tuple=True), (np.array(3.0),),
         grad=False),  # fmt: skip
]


def make_values(shape, domain: str, rng: np.random.Generator) -> np.ndarray:
    """Test inputs in the op's domain (kept away from kinks and ties)."""
    return np.asarray(_values(shape, domain, rng), dtype=np.float64)


def _values(shape, domain: str, rng: np.random.Generator):
    if domain == "pos":
        return rng.uniform(0.5, 2.0, shape)
    if domain == "unit":
        return rng.uniform(-0.9, 0.9, shape)
    if domain == "nonzero":
        return rng.choice([-1.0, 1.0], shape) * rng.uniform(0.3, 2.0, shape)
    if domain == "distinct":
        n = int(np.prod(shape))
        return (rng.permutation(n).reshape(shape) - n / 2) * 0.25 + rng.uniform(-0.05, 0.05, shape)
    return rng.uniform(-2.0, 2.0, shape)
