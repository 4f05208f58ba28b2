"""Every bad call raises a clear ShrewError naming the op and operands, and changes nothing."""

from __future__ import annotations

import numpy as np
import pytest

import shrew_core as sc


@pytest.fixture
def xs(device):
    return sc.randn(2, 3, device=device), sc.randn(4, 5, device=device)


CASES = [
    ("broadcast", lambda a, b, d: a + b, sc.ShapeError, r"add: shapes \(2, 3\) and \(4, 5\)"),
    (
        "matmul",
        lambda a, b, d: a @ b,
        sc.ShapeError,
        r"matmul: shape mismatch lhs=\(2, 3\) rhs=\(4, 5\)",
    ),
    ("bad dim", lambda a, b, d: a.sum(2), sc.DimError, r"sum: dim 2 is out of range .* rank 2"),
    ("bad neg dim", lambda a, b, d: a.softmax(-3), sc.DimError, "softmax: dim -3"),
    (
        "reshape numel",
        lambda a, b, d: a.reshape(4, 2),
        sc.ShapeError,
        r"reshape: cannot reshape .*\(2, 3\) \(6 elements\)",
    ),
    (
        "reshape two -1",
        lambda a, b, d: a.reshape(-1, -1),
        sc.ShapeError,
        "only one dimension can be -1",
    ),
    ("view strides", lambda a, b, d: a.t().view(6), sc.ShapeError, "view: .* not compatible"),
    ("permute", lambda a, b, d: a.permute(0, 0), sc.DimError, "permute: dims"),
    ("expand", lambda a, b, d: a.expand(4, 3), sc.ShapeError, "expand: cannot expand"),
    ("narrow", lambda a, b, d: a.narrow(1, 2, 5), sc.ShapeError, "narrow: start 2 \\+ length 5"),
    (
        "cat shapes",
        lambda a, b, d: sc.cat([a, b], 0),
        sc.ShapeError,
        r"cat: tensor 1 has shape \(4, 5\)",
    ),
    ("cat empty", lambda a, b, d: sc.cat([], 0), sc.ShapeError, "non-empty"),
    ("stack shapes", lambda a, b, d: sc.stack([a, b]), sc.ShapeError, "stack: tensor 1"),
    (
        "index range",
        lambda a, b, d: a.index_select(1, sc.tensor([0, 3], device=d)),
        sc.IndexOutOfRangeError,
        "index_select: index 3",
    ),
    (
        "gather range",
        lambda a, b, d: a.gather(1, sc.tensor([[0], [7]], device=d)),
        sc.IndexOutOfRangeError,
        "gather",
    ),
    (
        "gather rank",
        lambda a, b, d: a.gather(1, sc.tensor([0], device=d)),
        sc.ShapeError,
        "gather: index rank 1",
    ),
    (
        "float index",
        lambda a, b, d: a.index_select(0, a[0]),
        sc.DTypeError,
        "index must be an integer",
    ),
    (
        "mean int",
        lambda a, b, d: sc.arange(3, device=d).mean(),
        sc.DTypeError,
        "mean: expected a floating-point",
    ),
    ("bool arith", lambda a, b, d: (a > 0) - (a > 1), sc.DTypeError, "sub: arithmetic on bool"),
    (
        "unknown dtype",
        lambda a, b, d: a.to("f8"),
        sc.DTypeError,
        "'f8' is neither a dtype nor a known device",
    ),
    (
        "device mix",
        lambda a, b, d: a + sc.ones(2, 3, device="reference" if d != "reference" else "cpu"),
        sc.DeviceError,
        "expected all tensors on one device",
    ),
    (
        "conv channels",
        lambda a, b, d: sc.conv2d(sc.randn(1, 3, 5, 5, device=d), sc.randn(2, 4, 3, 3, device=d)),
        sc.ShapeError,
        "conv2d: input has 3 channels",
    ),
    (
        "conv kernel",
        lambda a, b, d: sc.conv2d(sc.randn(1, 1, 2, 2, device=d), sc.randn(1, 1, 3, 3, device=d)),
        sc.ShapeError,
        "larger than the padded input",
    ),
    ("layer_norm shape", lambda a, b, d: sc.layer_norm(a, (4,)), sc.ShapeError, "normalized_shape"),
    (
        "ce target",
        lambda a, b, d: sc.cross_entropy_rows(a, sc.tensor([0, 5], device=d)),
        IndexError,
        "cross_entropy: target 5 is out of range for 3 classes",
    ),
    ("topk k", lambda a, b, d: a.topk(4), sc.ShapeError, "topk: k=4"),
    ("item", lambda a, b, d: a.item(), sc.ShapeError, "item: only one-element"),
    ("where cond", lambda a, b, d: sc.where(a > 0, a, b), sc.ShapeError, "where: shapes"),
]


@pytest.mark.parametrize("name,call,exc,pattern", CASES, ids=[c[0] for c in CASES])
def test_bad_call_raises_clear_error_and_leaves_inputs_unchanged(
    name, call, exc, pattern, xs, device
):
    if name == "device mix" and len(sc.available_backends()) < 2:
        pytest.skip("needs two backends")
    a, b = xs
    before = (a.numpy().copy(), b.numpy().copy())
    with pytest.raises(exc, match=pattern):
        call(a, b, device)
    np.testing.assert_array_equal(a.numpy(), before[0])
    np.testing.assert_array_equal(b.numpy(), before[1])


def test_errors_are_shrew_errors_and_builtin_kinds():
    assert issubclass(sc.ShapeError, sc.ShrewError) and issubclass(sc.ShapeError, ValueError)
    assert issubclass(sc.DimError, IndexError)
    assert issubclass(sc.DTypeError, TypeError)


def test_integer_division_by_zero_raises(device):
    with pytest.raises(ZeroDivisionError):
        sc.tensor([1, 2], device=device) // sc.tensor([1, 0], device=device)
