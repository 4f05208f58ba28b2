"""More of shrew_core's surface on cuda, value for value against the cpu backend: boolean
reductions, integer and u8/u32 arithmetic, casts, cat/stack/setitem (strided writes),
constructors, randint (the RNG through floor and cast), top-k, NaN and -inf edge cases,
half-to-even rounding."""

from __future__ import annotations

import numpy as np
import pytest

import shrew_core as sc

pytestmark = pytest.mark.cuda

RNG = np.random.default_rng(0)
A = RNG.standard_normal((4, 5)).astype(np.float32)
AI = RNG.integers(-5, 6, (4, 5))


def _setitem(d):
    t = sc.zeros(4, 5, device=d)
    t[1:3, ::2] = sc.tensor(A, device=d)[:2, :3]
    t[0] = 7.0
    return t


def _t(d, a=A):
    return sc.tensor(a, device=d)


CASES = {
    "any_all": lambda d: ((_t(d) > 0).any(1), (_t(d) > -3).all()),
    "logical_and": lambda d: sc.logical_and(_t(d) > 0, _t(d) < 1),
    "masked_select": lambda d: _t(d).masked_select(_t(d) > 0),
    "int_clamp_where": lambda d: (_t(d, AI).clamp(-2, 3), sc.where(_t(d, AI) > 0, _t(d, AI), 7)),
    "int_prod_min_argmin": lambda d: (_t(d, AI).prod(1), _t(d, AI).amin(0), _t(d, AI).argmin(1)),
    "f16_mean": lambda d: _t(d).to("f16").mean(1),
    "cat_stack": lambda d: (sc.cat([_t(d), _t(d).t().t()], 0), sc.stack([_t(d)] * 2, 2)),
    "setitem": _setitem,
    "one_hot": lambda d: sc.one_hot(sc.tensor([0, 3, 1], device=d), 4),
    "triu": lambda d: sc.triu(_t(d), diagonal=1),
    "constructors": lambda d: (sc.arange(5, device=d) * 2, sc.eye(3, device=d),
                               sc.linspace(0, 1, 5, device=d)),  # fmt: skip
    "randint": lambda d: sc.randint(0, 10, (20,), device=d),
    "u8_u32_wrap": lambda d: (_t(d, AI).to("u8") + 250, _t(d, AI).to("u32").sum()),
    "casts": lambda d: (_t(d).to("bool"), _t(d).to("i64")),
    "bf16_math": lambda d: (_t(d).to("bf16").exp() * 2, _t(d).to("bf16").sum()),
    "int_matmul": lambda d: _t(d, AI) @ _t(d, AI).t(),
    "int_true_div": lambda d: _t(d, AI) / 2,
    "int_pow": lambda d: _t(d, np.abs(AI)) ** 3,
    "int_sort_desc": lambda d: _t(d, AI).sort(0, descending=True),
    "topk": lambda d: _t(d).topk(3, 1),
    "gather": lambda d: _t(d).gather(1, sc.tensor([[0], [4], [2], [1]], device=d)),
    "softmax_wide_range": lambda d: sc.softmax(
        _t(d, np.tile(np.linspace(-50, 50, 300, dtype=np.float32), (2, 1))), -1),
    "softmax_all_neg_inf": lambda d: sc.softmax(
        _t(d, np.array([[-np.inf, -np.inf], [0, -np.inf]], np.float32)), -1),
    "var_std": lambda d: (_t(d).var(), _t(d).std(0)),
    "norm_f64": lambda d: _t(d, A.astype(np.float64)).norm(),
    "max_argmax_nan": lambda d: (_t(d, np.array([1, np.nan, 3], np.float32)).amax(),
                                 _t(d, np.array([1, np.nan, 3, np.nan], np.float32)).argmax()),
    "round_half_even": lambda d: _t(d, np.array([0.5, 1.5, 2.5, -0.5, -1.5], np.float32)).round(),
    "int_remainder": lambda d: _t(d, AI) % 3,
    "float_floor_divide": lambda d: (_t(d) // 0.3, _t(d) // -_t(d, np.abs(A) + 0.5)),
}


def _host(x):
    if isinstance(x, (tuple, list)):
        return [a for y in x for a in _host(y)]
    return [x.numpy()]


@pytest.mark.parametrize("name", list(CASES))
def test_matches_cpu(name):
    outs = []
    for d in ("cpu", "cuda"):
        sc.manual_seed(0)
        outs.append(_host(CASES[name](d)))
    half = "16" in name
    for i, (c, g) in enumerate(zip(*outs)):
        assert c.shape == g.shape, f"{name} output {i}: shape {g.shape} != cpu {c.shape}"
        assert c.dtype == g.dtype, f"{name} output {i}: dtype {g.dtype} != cpu {c.dtype}"
        np.testing.assert_allclose(g.astype(np.float64), c.astype(np.float64), equal_nan=True,
                                   rtol=1e-2 if half else 1e-5, atol=1e-5,
                                   err_msg=f"{name} output {i}")  # fmt: skip
