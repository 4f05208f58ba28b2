"""Autograd engine behaviour: accumulation, leaves, no_grad, detach, deep graphs."""

from __future__ import annotations

import numpy as np
import pytest

import shrew_core as sc


def test_tensor_used_twice_accumulates(device):
    x = sc.tensor([1.0, 2.0, 3.0], device=device).requires_grad_()
    y = x * x + x  # x reached along three paths
    g = y.sum().backward()
    np.testing.assert_allclose(g[x].numpy(), 2 * np.array([1.0, 2, 3]) + 1)


def test_only_variables_receive_gradients(device):
    w = sc.randn(3, 3, dtype="f64", device=device).requires_grad_()
    frozen = sc.randn(3, 3, dtype="f64", device=device)
    loss = (w @ frozen).sum()
    grads = loss.backward()
    assert w in grads
    assert frozen not in grads
    assert grads.get(frozen) is None
    with pytest.raises(KeyError, match="not a variable"):
        grads[frozen]


def test_freeze_stops_gradient(device):
    w = sc.randn(2, 2, device=device).requires_grad_()
    b = sc.randn(2, 2, device=device).requires_grad_().freeze()
    grads = (w * b).sum().backward()
    assert len(grads) == 1 and w in grads


def test_seed_example_matmul_gradient(device):
    w = sc.randn(3, 3, dtype="f64", device=device).set_variable()
    x = sc.randn(2, 3, dtype="f64", device=device)
    dw = x.matmul(w).sum_all().backward().get(w)
    np.testing.assert_allclose(dw.numpy(), np.repeat(x.numpy().sum(0)[:, None], 3, 1))


def test_deep_chain_of_ten_thousand_ops_is_iterative(device):
    x = sc.tensor(1.0, dtype="f64", device=device).requires_grad_()
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    g = y.backward()[x]
    np.testing.assert_allclose(g.item(), 1.0001**10_000, rtol=1e-9)


def test_no_grad_records_nothing(device):
    x = sc.randn(3, device=device).requires_grad_()
    with sc.no_grad():
        y = x * 2
    assert not y.requires_grad and y.grad_fn is None
    assert sc.is_grad_enabled()


def test_no_grad_as_decorator(device):
    @sc.no_grad()
    def f(t):
        return t * 3

    assert not f(sc.randn(2, device=device).requires_grad_()).requires_grad


def test_detach_cuts_history_and_shares_storage(device):
    x = sc.randn(3, device=device).requires_grad_()
    d = (x * 2).detach()
    assert not d.requires_grad
    y = x * 2
    assert y.detach()._storage is y._storage


def test_backward_of_non_scalar_needs_grad(device):
    x = sc.randn(3, device=device).requires_grad_()
    with pytest.raises(sc.AutogradError, match="one-element"):
        (x * 2).backward()
    g = (x * 2).backward(sc.ones(3, device=device))
    np.testing.assert_allclose(g[x].numpy(), [2, 2, 2])


def test_backward_without_variables_is_an_error(device):
    with pytest.raises(sc.AutogradError, match="does not require grad"):
        sc.randn(3, device=device).sum().backward()


def test_integer_tensor_cannot_require_grad(device):
    with pytest.raises(sc.DTypeError, match="floating-point"):
        sc.arange(3, device=device).requires_grad_()


def test_broadcast_gradients_reduce_to_input_shape(device):
    a = sc.randn(3, 1, dtype="f64", device=device).requires_grad_()
    b = sc.randn(4, dtype="f64", device=device).requires_grad_()
    g = (a * b).sum().backward()
    assert g[a].shape == (3, 1) and g[b].shape == (4,)
    np.testing.assert_allclose(g[a].numpy(), np.full((3, 1), b.numpy().sum()))


def test_gradient_dtype_follows_input_through_casts(device):
    x = sc.randn(3, dtype="f32", device=device).requires_grad_()
    g = x.to("f64").sum().backward()
    assert g[x].dtype == sc.f32


def test_custom_function(device):
    class Cube(sc.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return (3 * x * x * g,)

    x = sc.tensor([1.0, 2.0], device=device).requires_grad_()
    np.testing.assert_allclose(Cube.apply(x).sum().backward()[x].numpy(), [3.0, 12.0])


def test_in_place_write_into_variable_is_refused(device):
    w = sc.zeros(3, device=device).requires_grad_()
    with pytest.raises(sc.AutogradError, match="in-place"):
        w[0] = 1.0
    before = w.numpy().copy()
    with pytest.raises(sc.AutogradError):
        w.add_(1.0)
    np.testing.assert_array_equal(w.numpy(), before)


def test_gradstore_mapping_api(device):
    a = sc.randn(2, device=device).requires_grad_()
    b = sc.randn(2, device=device).requires_grad_()
    g = (a * b).sum().backward()
    assert set(map(id, g)) == {id(a), id(b)}
    assert len(g.items()) == 2 and len(g.values()) == 2
    c = g.copy()
    del c[a]
    assert a in g and a not in c


def test_in_place_update_of_variable_under_no_grad(device):
    w = sc.ones(3, device=device).requires_grad_()
    with sc.no_grad():
        w.sub_(0.5)
        w[0] = 2.0
    assert w.tolist() == [2.0, 0.5, 0.5] and w.requires_grad


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_slices_of_one_tensor_accumulate_like_torch(device, dtype):
    """Several slices of one intermediate (q, k, v = qkv[0], qkv[1], qkv[2]; overlapping
    ranges, steps, a select) plus ordinary uses of the same tensor, and slices of a leaf:
    the lazily added slab gradients match torch's."""
    import torch

    rng = np.random.default_rng(7)
    x0 = rng.standard_normal((3, 4, 5)).astype(dtype)
    w0 = rng.standard_normal((3, 4, 5)).astype(dtype)

    def loss(lib, x, w):
        y = x * 2.0 + w  # an intermediate: its slices' gradients are added lazily
        q, k, v = y[0], y[1], y[2]
        parts = [
            (q * k).sum(), (v * v).sum(),
            (y[:, 1:3] * 3.0).sum(),  # overlaps q, k and v
            (y[..., ::2] ** 2).sum(),  # a stepped slice over all of them
            (y[1:, :, 2] * y[:2, :, 2]).sum(),  # two overlapping slices multiplied
            y.sum() * 0.5,  # an ordinary use of y after the slices
            (w[2] * 4.0).sum(), (w[0:2] ** 3).sum(),  # slices of a leaf
        ]
        total = parts[0]
        for p in parts[1:]:
            total = total + p
        return total

    xs, ws = sc.tensor(x0).requires_grad_(), sc.tensor(w0).requires_grad_()
    grads = loss(sc, xs, ws).backward()
    xt = torch.from_numpy(x0.copy()).requires_grad_()
    wt = torch.from_numpy(w0.copy()).requires_grad_()
    loss(torch, xt, wt).backward()
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(grads[xs].numpy(), xt.grad.numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(grads[ws].numpy(), wt.grad.numpy(), rtol=tol, atol=tol)


def test_slice_gradient_never_writes_into_a_shared_gradient(device):
    """y's gradient from ``y + y`` is one tensor passed to both uses; a slice of y adds
    into a copy of it, not into it (the other use still sees the original)."""
    import torch

    x0 = np.arange(12, dtype=np.float32).reshape(3, 4)

    def loss(lib, x):
        y = x * 1.5
        z = y * 1.0
        return (z + z).sum() + (y[1] * 2.0).sum() + (z[0] * z[2]).sum()

    xs = sc.tensor(x0).requires_grad_()
    g = loss(sc, xs).backward()[xs].numpy()
    xt = torch.from_numpy(x0.copy()).requires_grad_()
    loss(torch, xt).backward()
    np.testing.assert_allclose(g, xt.grad.numpy(), rtol=1e-6)


def test_slice_gradient_leaves_a_sibling_gradient_alone(device):
    """``y + u`` hands one gradient tensor to both y and u; y's slice then adds into a copy:
    u's gradient (and so x's) stays right."""
    import torch

    x0 = np.linspace(-1.0, 1.0, 12, dtype=np.float32).reshape(3, 4)

    def loss(lib, x):
        y, u = x * 1.5, x * 0.5
        return ((y + u) * 1.0).sum() + (y[1] * 2.0).sum() + (u * u).sum()

    xs = sc.tensor(x0).requires_grad_()
    g = loss(sc, xs).backward()[xs].numpy()
    xt = torch.from_numpy(x0.copy()).requires_grad_()
    loss(torch, xt).backward()
    np.testing.assert_allclose(g, xt.grad.numpy(), rtol=1e-6)
