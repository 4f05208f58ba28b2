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
