"""Property tests (hypothesis): broadcasting and chains of views agree with NumPy, and the
compiled hot path agrees with the pure-Python one."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import shrew_core as sc
from shrew_core import _shapes, layout

SETTINGS = settings(max_examples=60, deadline=None)


@SETTINGS
@given(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, max_side=3))
def test_broadcast_add_matches_numpy(shapes):
    (sa, sb), _ = shapes
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(sa), rng.standard_normal(sb)
    got = sc.tensor(a, device="reference") + sc.tensor(b, device="reference")
    np.testing.assert_allclose(got.numpy(), a + b)


@st.composite
def view_chains(draw):
    shape = draw(st.lists(st.integers(1, 4), min_size=1, max_size=4))
    steps = draw(
        st.lists(
            st.sampled_from(
                ["t", "permute", "narrow", "slice", "unsqueeze", "squeeze", "reshape", "expand"]
            ),
            max_size=6,
        )
    )
    seeds = draw(st.lists(st.integers(0, 10**6), min_size=len(steps), max_size=len(steps)))
    return tuple(shape), list(zip(steps, seeds))


def _apply(step: str, seed: int, x, lib):
    """Apply one view step to a shrew tensor (lib=sc) or a NumPy array (lib=np)."""
    rng = np.random.default_rng(seed)
    shape = x.shape
    nd = len(shape)
    is_np = lib is np
    if step == "t" and nd >= 2:
        return np.swapaxes(x, -1, -2) if is_np else x.transpose(-1, -2)
    if step == "permute" and nd >= 1:
        p = tuple(rng.permutation(nd))
        return np.transpose(x, p) if is_np else x.permute(p)
    if step == "narrow" and nd >= 1:
        d = int(rng.integers(nd))
        start = int(rng.integers(shape[d]))
        n = int(rng.integers(1, shape[d] - start + 1))
        return np.take(x, range(start, start + n), axis=d) if is_np else x.narrow(d, start, n)
    if step == "slice" and nd >= 1:
        step_ = int(rng.integers(1, 3))
        return x[::step_] if is_np else x[::step_]
    if step == "unsqueeze":
        d = int(rng.integers(nd + 1))
        return np.expand_dims(x, d) if is_np else x.unsqueeze(d)
    if step == "squeeze":
        return np.squeeze(x) if is_np else x.squeeze()
    if step == "reshape":
        return x.reshape(-1) if is_np else x.reshape(-1)
    if step == "expand" and nd >= 1 and 1 in shape:
        target = tuple(3 if s == 1 else s for s in shape)
        return np.broadcast_to(x, target) if is_np else x.expand(target)
    return x


@SETTINGS
@given(view_chains())
def test_view_chains_match_numpy(chain):
    shape, steps = chain
    a = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape)
    x = sc.tensor(a, device="reference")
    for step, seed in steps:
        a = _apply(step, seed, a, np)
        x = _apply(step, seed, x, sc)
    assert x.shape == a.shape
    np.testing.assert_array_equal(x.numpy(), a)
    np.testing.assert_array_equal((x * 1.0).numpy(), a)  # through a kernel
    np.testing.assert_allclose(x.sum().item() if x.numel else 0.0, a.sum())


shapes = st.lists(st.integers(0, 5), max_size=5).map(tuple)


@SETTINGS
@given(shapes, shapes)
def test_compiled_shape_functions_match_python(a, b):
    assert layout.broadcast_shapes(a, b) == _shapes.broadcast_shapes(a, b)
    assert layout.contiguous_strides(a) == _shapes.contiguous_strides(a)
    strides = _shapes.contiguous_strides(a)
    assert layout.is_contiguous(a, strides) == _shapes.is_contiguous(a, strides)
    assert layout.broadcast_strides(a, strides, b) == _shapes.broadcast_strides(a, strides, b)
    if int(np.prod(a)) == int(np.prod(b)):
        t = tuple(reversed(strides))
        ra = tuple(reversed(a))
        assert layout.view_strides(ra, t, b) == _shapes.view_strides(ra, t, b)


def test_hot_path_is_compiled():
    assert layout.COMPILED, "shrew_core._speedups was not built (pip install ./shrew_core)"
