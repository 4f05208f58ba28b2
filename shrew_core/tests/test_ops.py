"""The op-spec suite: every entry of op_specs.OPS, on every backend under test, compared
with PyTorch (forward and gradients) over dtypes and view kinds, and with finite
differences in float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as torch_F
from op_specs import FIXED, OPS, make_values

import shrew_core as sc
from conftest import GRAD_TOL, TOL, TORCH_DTYPE, assert_close

pytestmark = pytest.mark.filterwarnings("ignore:Using padding=.same.:UserWarning")

VARIANTS = ("contiguous", "transposed", "narrowed", "offset", "expanded", "scalar", "empty")


class Side:
    """What an op lambda sees: the same names on the shrew and the PyTorch side."""

    def __init__(self, is_torch: bool, device: str | None = None):
        self.is_torch = is_torch
        self.lib = torch if is_torch else sc
        self.F = torch_F if is_torch else sc
        self.f64 = torch.float64 if is_torch else sc.f64
        self.i64 = torch.int64 if is_torch else sc.i64
        self.device = device

    def idx(self, values):
        arr = np.asarray(values, dtype=np.int64)
        return torch.from_numpy(arr) if self.is_torch else sc.tensor(arr, device=self.device)

    def mask(self, values):
        arr = np.asarray(values, dtype=np.bool_)
        return torch.from_numpy(arr) if self.is_torch else sc.tensor(arr, device=self.device)

    def tensor(self, arr: np.ndarray, dtype: str):
        if self.is_torch:
            return torch.from_numpy(arr.copy()).to(TORCH_DTYPE[dtype])
        return sc.tensor(arr, dtype=dtype, device=self.device)


def _base_and_view(vals: np.ndarray, variant: str):
    """(numpy base, function that makes the logical input from the base tensor)."""
    if variant in ("contiguous", "scalar", "empty"):
        return vals, lambda t: t
    if variant == "transposed":
        return np.ascontiguousarray(np.swapaxes(vals, -1, -2)), lambda t: t.transpose(-1, -2)
    if variant == "narrowed":
        n = vals.shape[-1]
        base = np.concatenate([vals[..., :1] + 7.0, vals, vals[..., :1] - 7.0], axis=-1)
        return base, lambda t: t.narrow(-1, 1, n)
    if variant == "offset":
        base = np.concatenate([vals[:1] + 3.0, vals], axis=0)
        return base, lambda t: t[1:]
    if variant == "expanded":
        shape = vals.shape
        return np.ascontiguousarray(vals[:1]), lambda t: t.expand(*shape)
    raise ValueError(variant)


def _variant_shape(shape: tuple, variant: str) -> tuple:
    """0-d and empty variants replace the op's shapes (broadcasting stays valid)."""
    if variant == "scalar":
        return ()
    if variant == "empty":
        return (0,) + shape[1:] if len(shape) > 1 else (0,)
    return shape


def _applicable(op, variant: str) -> bool:
    if variant == "contiguous":
        return True
    if variant in ("scalar", "empty"):
        return op.elementwise
    if not op.variants:
        return False
    shapes = op.shapes
    if variant == "transposed":
        return all(len(s) >= 2 for s in shapes)
    if variant == "expanded":
        return op.domain != "distinct" and all(len(s) >= 1 and s[0] > 1 for s in shapes)
    return all(len(s) >= 1 for s in shapes)


def _outputs(out) -> list:
    if isinstance(out, (list, tuple)):
        return [o for o in out]
    return [out]


def _run(op, side: Side, bases, views, dtype, requires_grad):
    tensors = []
    for b in bases:
        t = side.tensor(b, dtype)
        if requires_grad:
            t.requires_grad_()
        tensors.append(t)
    inputs = [v(t) for v, t in zip(views, tensors)]
    fn = op.ref if (side.is_torch and op.ref is not None) else op.fn
    return tensors, _outputs(fn(side, *inputs))


def _grads(side: Side, tensors, out, weight: np.ndarray, dtype):
    w = side.tensor(weight, dtype)
    loss = (out * w).sum()
    if side.is_torch:
        return list(torch.autograd.grad(loss, tensors, allow_unused=True))
    store = loss.backward()
    return [store.get(t) for t in tensors]


CASES = [
    pytest.param(op, dtype, variant, id=f"{op.name}-{dtype}-{variant}")
    for op in OPS
    for dtype in op.dtypes
    for variant in VARIANTS
    if _applicable(op, variant) and (variant == "contiguous" or dtype in ("float32", "float64"))
]


@pytest.mark.parametrize("op,dtype,variant", CASES)
def test_op_matches_torch(op, dtype, variant, device):
    rng = np.random.default_rng(abs(hash(op.name)) % 2**32)
    shapes = [_variant_shape(s, variant) for s in op.shapes]
    if variant == "empty" and len(shapes) > 1:  # keep one operand non-empty when it broadcasts
        shapes[1] = op.shapes[1][-1:] if len(op.shapes[1]) > 1 else (1,)
    pairs = [_base_and_view(make_values(s, op.domain, rng), variant) for s in shapes]
    bases, views = [p[0] for p in pairs], [p[1] for p in pairs]
    do_grad = op.grad and dtype in ("float32", "float64")
    ours, got = _run(op, Side(False, device), bases, views, dtype, do_grad)
    ref_dtype = dtype
    try:
        theirs, want = _run(op, Side(True), bases, views, dtype, do_grad)
    except (RuntimeError, NotImplementedError):  # torch lacks this half kernel on CPU
        ref_dtype = "float32"
        theirs, want = _run(op, Side(True), bases, views, ref_dtype, do_grad)
    assert len(got) == len(want), f"{op.name}: {len(got)} outputs, torch gives {len(want)}"
    rtol, atol = TOL[dtype]
    tol = {dtype: (rtol * op.tol, atol * op.tol)}
    for i, (g, w) in enumerate(zip(got, want)):
        assert_close(g, w, dtype, tol, f"{op.name} output {i}")
        if ref_dtype == dtype:
            want_dtype = str(w.dtype).removeprefix("torch.")
            assert g.dtype.name == want_dtype, f"{op.name}: dtype {g.dtype} != torch's {want_dtype}"
    if not do_grad:
        return
    out_ours, out_torch = got[0], want[0]
    weight = rng.uniform(-1.0, 1.0, tuple(out_ours.shape))
    if out_ours.numel == 0:
        weight = np.zeros(tuple(out_ours.shape))
    g_ours = _grads(Side(False, device), ours, out_ours, weight, dtype)
    g_torch = _grads(Side(True), theirs, out_torch, weight, ref_dtype)
    rtol, atol = GRAD_TOL[dtype]
    gtol = {dtype: (rtol * op.tol, atol * op.tol)}
    for i, (a, b) in enumerate(zip(g_ours, g_torch)):
        if b is None:
            assert a is None or np.all(a.numpy() == 0), f"{op.name}: unexpected grad for input {i}"
            continue
        assert a is not None, f"{op.name}: no gradient for input {i}"
        assert a.shape == ours[i].shape, f"{op.name}: grad shape {a.shape} != {ours[i].shape}"
        assert_close(a, b, dtype, gtol, f"{op.name} grad of input {i}")


FD_CASES = [pytest.param(op, id=op.name) for op in OPS if op.grad and op.fd]


@pytest.mark.parametrize("op", FD_CASES)
def test_op_gradient_matches_finite_differences(op, device):
    """Central differences of sum(out * w) in float64 against backward()."""
    rng = np.random.default_rng(1 + abs(hash(op.name)) % 2**32)
    side = Side(False, device)
    vals = [make_values(s, op.domain, rng) for s in op.shapes]
    tensors = [side.tensor(v, "float64").requires_grad_() for v in vals]
    out = _outputs(op.fn(side, *tensors))[0]
    weight = rng.uniform(-1.0, 1.0, tuple(out.shape))
    grads = _grads(side, tensors, out, weight, "float64")
    w = side.tensor(weight, "float64")

    def loss(arrays) -> float:
        with sc.no_grad():
            ts = [side.tensor(a, "float64") for a in arrays]
            return float((_outputs(op.fn(side, *ts))[0] * w).sum().item())

    h = 1e-6
    for i, v in enumerate(vals):
        flat_idx = range(v.size) if v.size <= 48 else rng.choice(v.size, 24, replace=False)
        numeric, analytic = [], []
        g = grads[i].numpy().reshape(-1)
        for j in flat_idx:
            plus = [a.copy() for a in vals]
            minus = [a.copy() for a in vals]
            plus[i].reshape(-1)[j] += h
            minus[i].reshape(-1)[j] -= h
            numeric.append((loss(plus) - loss(minus)) / (2 * h))
            analytic.append(g[j])
        np.testing.assert_allclose(
            analytic, numeric, rtol=1e-5, atol=1e-6, err_msg=f"{op.name}: d/d input {i}"
        )


FIXED_CASES = [
    pytest.param(c, dtype, id=f"{c.name}-{dtype}") for c in FIXED for dtype in c.dtypes
]


@pytest.mark.parametrize("case,dtype", FIXED_CASES)
def test_fixed_case_matches_torch(case, dtype, device):
    """Fixed inputs (ties, NaN, 0-d, empty): outputs, then float64 gradients, NaN included."""
    sides = {False: Side(False, device), True: Side(True)}
    leaves, outs = {}, {}
    for is_torch, side in sides.items():
        tensors = []
        for arr in case.inputs:
            arr = np.asarray(arr)
            is_int = arr.dtype.kind in "iu"
            t = side.idx(arr) if is_int else side.tensor(arr.astype(np.float64), dtype)
            if case.grad and dtype == "float64" and arr.dtype.kind == "f":
                t.requires_grad_()
            tensors.append(t)
        sc.set_default_device(device if not is_torch else "cpu")
        try:
            fn = case.ref if (is_torch and case.ref is not None) else case.fn
            outs[is_torch] = _outputs(fn(side, *tensors))
        finally:
            sc.set_default_device("cpu")
        leaves[is_torch] = tensors
    got, want = outs[False], outs[True]
    assert len(got) == len(want), f"{case.name}: {len(got)} outputs, torch gives {len(want)}"
    for i, (g, w) in enumerate(zip(got, want)):
        assert_close(g, w, dtype, TOL, f"{case.name} output {i}")
        want_dtype = str(w.dtype).removeprefix("torch.")
        assert g.dtype.name == want_dtype, f"{case.name}: dtype {g.dtype} != torch's {want_dtype}"
    if not (case.grad and dtype == "float64" and want[0].requires_grad):
        return
    weight = np.random.default_rng(0).uniform(-1.0, 1.0, tuple(want[0].shape))
    g_ours = _grads(sides[False], leaves[False], got[0], weight, dtype)
    g_torch = _grads(sides[True], leaves[True], want[0], weight, dtype)
    for i, (a, b) in enumerate(zip(g_ours, g_torch)):
        if not leaves[True][i].requires_grad:
            continue
        if b is None:
            b = torch.zeros(leaves[True][i].shape, dtype=torch.float64)
        if a is None:
            a = sc.zeros(*leaves[False][i].shape, dtype="f64", device=device)
        assert_close(a, b, dtype, {dtype: GRAD_TOL[dtype]}, f"{case.name} grad of input {i}")
