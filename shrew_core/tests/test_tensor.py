"""Constructors, conversion and interop, Python protocol methods, in-place writes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import shrew_core as sc


def test_tensor_infers_dtypes_like_torch(device):
    assert sc.tensor([1.0, 2.0], device=device).dtype == sc.f32
    assert sc.tensor([1, 2], device=device).dtype == sc.i64
    assert sc.tensor([True], device=device).dtype == sc.bool_
    assert sc.tensor(np.zeros(2, np.float64), device=device).dtype == sc.f64
    assert sc.tensor(3.5, device=device).shape == ()
    for scalar in (np.float64(2.5), np.float32(2.5), np.float16(2.5)):  # NumPy scalars keep it
        got = sc.tensor(scalar, device=device)
        assert (got.shape, str(got.dtype)) == ((), str(torch.tensor(scalar).dtype)[6:])
    assert sc.tensor(np.arange(3, dtype=np.int32), device=device).dtype == sc.i64  # widened
    assert sc.tensor(np.arange(3, dtype=np.uint16), device=device).dtype == sc.u32
    with pytest.raises(sc.DTypeError, match="int32 has no Shrew equivalent"):
        sc.from_numpy(np.arange(3, dtype=np.int32), device=device)  # zero-copy cannot widen


def test_constructors(device):
    assert sc.zeros(2, 3, device=device).numpy().sum() == 0
    assert sc.ones((2, 3), dtype="f64", device=device).dtype == sc.f64
    np.testing.assert_array_equal(sc.full((2,), 7, device=device).numpy(), [7, 7])
    np.testing.assert_array_equal(sc.arange(5, device=device).numpy(), np.arange(5))
    np.testing.assert_allclose(sc.arange(0, 1, 0.25, device=device).numpy(), [0, 0.25, 0.5, 0.75])
    np.testing.assert_allclose(sc.linspace(0, 1, 5, device=device).numpy(), np.linspace(0, 1, 5))
    np.testing.assert_array_equal(sc.eye(3, device=device).numpy(), np.eye(3))
    np.testing.assert_array_equal(
        sc.triu(3, 4, 1, device=device).numpy(), np.triu(np.ones((3, 4)), 1)
    )
    x = sc.randn(3, 3, device=device)
    np.testing.assert_array_equal(sc.tril(x).numpy(), np.tril(x.numpy()))
    assert sc.zeros_like(x).shape == (3, 3) and sc.full_like(x, 2.0).numpy()[0, 0] == 2.0
    assert sc.zeros(0, 3, device=device).numel == 0
    m = sc.from_list([1, 2, 3, 4, 5, 6], (2, 3), device=device)
    assert m.tolist() == [[1, 2, 3], [4, 5, 6]]
    with pytest.raises(sc.ShapeError, match="do not fill shape"):
        sc.from_list([1, 2, 3], (2, 2), device=device)


def test_random_is_seeded(device):
    sc.manual_seed(123)
    a = sc.randn(5, device=device).numpy()
    sc.manual_seed(123)
    b = sc.randn(5, device=device).numpy()
    np.testing.assert_array_equal(a, b)
    u = sc.rand(10_000, device=device).numpy()
    assert 0.0 <= u.min() and u.max() < 1.0 and abs(u.mean() - 0.5) < 0.02
    n = sc.randn(10_000, dtype="f64", device=device).numpy()
    assert abs(n.mean()) < 0.05 and abs(n.std() - 1.0) < 0.05


@pytest.mark.parametrize("dtype", ["f32", "bf16", "f16", "i64", "bool"])
def test_tensor_copies_large_arrays_to_aligned_storage(dtype):
    """``tensor()`` copies of >= ALIGN_FROM_BYTES start on a 64-byte line, cast like
    ``astype``, from any source layout; the source is never shared."""
    from shrew_core.ops.creation import ALIGN_FROM_BYTES

    src = (np.random.default_rng(3).standard_normal((3, 300, 250)) * 5).transpose(2, 0, 1)
    t = sc.tensor(src, dtype=dtype, device="cpu")
    want = src.astype(t.dtype.np_dtype)
    assert t.shape == want.shape and np.array_equal(t.numpy(), want)
    storage = t._storage
    assert storage.nbytes >= ALIGN_FROM_BYTES
    assert storage.ctypes.data % 64 == 0 and storage.flags.c_contiguous
    assert not np.shares_memory(storage, src)


def test_from_numpy_is_zero_copy_on_host(device):
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = sc.from_numpy(arr, device=device)
    if device in ("cpu", "reference"):
        arr[0, 0] = 42.0
        assert t.numpy()[0, 0] == 42.0
    assert t.shape == (2, 3) and t.dtype == sc.f32


def test_numpy_interop(device):
    t = sc.tensor([[1.0, 2.0], [3.0, 4.0]], device=device)
    np.testing.assert_array_equal(np.asarray(t), [[1, 2], [3, 4]])
    assert t.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert t.to_list() == [1.0, 2.0, 3.0, 4.0]
    assert t[1, 0].item() == 3.0
    with pytest.raises(sc.ShapeError, match="one-element"):
        t.item()


def test_dlpack_roundtrip_with_torch(device):
    t = sc.tensor([[1.0, 2.0], [3.0, 4.0]], device=device)
    tt = torch.from_dlpack(t)
    np.testing.assert_array_equal(tt.numpy(), t.numpy())
    back = sc.from_dlpack(torch.arange(4, dtype=torch.float64), device=device)
    np.testing.assert_array_equal(back.numpy(), [0, 1, 2, 3])


def test_views_share_storage_and_are_zero_copy(device):
    x = sc.arange(12, dtype="f32", device=device).reshape(3, 4)
    for v in (
        x.t(),
        x.narrow(1, 1, 2),
        x[1:],
        x.unsqueeze(0),
        x.reshape(4, 3),
        x[:, None].expand(3, 2, 4),
        x.permute(1, 0),
    ):
        assert v._storage is x._storage
    assert not x.t().is_contiguous()
    assert x.t().reshape(-1)._storage is not x._storage  # needs a copy


def test_chained_views_compute_correctly(device):
    a = np.arange(60, dtype=np.float64).reshape(3, 4, 5)
    x = sc.tensor(a, device=device)
    v = x.permute(2, 0, 1)[1:, :, ::2].transpose(0, 1).narrow(2, 1, 1)
    ref = a.transpose(2, 0, 1)[1:, :, ::2].swapaxes(0, 1)[:, :, 1:2]
    np.testing.assert_array_equal((v * 2).numpy(), ref * 2)
    np.testing.assert_array_equal(v.sum(1).numpy(), ref.sum(1))


def test_setitem_and_inplace(device):
    x = sc.zeros(3, 4, device=device)
    x[1] = 5.0
    x[:, 0] = sc.tensor([1.0, 2.0, 3.0], device=device)
    x[x > 4] = -1.0
    ref = np.zeros((3, 4))
    ref[1] = 5
    ref[:, 0] = [1, 2, 3]
    ref[ref > 4] = -1
    np.testing.assert_array_equal(x.numpy(), ref)
    x.fill_(2.0).mul_(3.0)
    assert float(x.sum()) == 72.0


_ADVANCED_KEYS = [  # (key builder given the module, value builder given the module)
    (lambda m: m.tensor([0, 2]), lambda m: 9.0),
    (lambda m: m.tensor([0, 2]), lambda m: m.tensor([1.0, 2.0, 3.0])),
    (lambda m: (m.tensor([0, 2]), m.tensor([1, 0])), lambda m: m.tensor([7.0, 8.0])),
    (lambda m: (slice(None), m.tensor([2, 0])), lambda m: m.tensor([[1.0], [2.0], [3.0], [4.0]])),
    (lambda m: m.tensor([True, False, True, False]), lambda m: -1.0),  # a row mask
    (lambda m: m.tensor([3, 3, 1]), lambda m: m.tensor([[1.0, 2, 3], [4, 5, 6], [7, 8, 9]])),
    (lambda m: [1, 0], lambda m: m.tensor(5.0)),
    (lambda m: m.arange(12).reshape(4, 3) > 6, lambda m: m.tensor([1.0, 2, 3, 4, 5])),
    (lambda m: (m.tensor([[0], [3]]), m.tensor([[0, 2]])), lambda m: m.tensor([[-1.0, -2.0]])),
]


@pytest.mark.parametrize("case", range(len(_ADVANCED_KEYS)))
@pytest.mark.parametrize("dtype", ["float32", "int64", "float64"])
def test_setitem_with_advanced_keys_matches_torch(device, case, dtype):
    """index_put: integer lists/tensors, several advanced keys broadcast together, a key
    after a slice, partial and full bool masks with one value per selected element, and a
    repeated index (the last value wins, as torch on CPU)."""
    key, value = _ADVANCED_KEYS[case]
    base = np.arange(12).reshape(4, 3)
    x = sc.tensor(base, dtype=dtype, device=device)
    t = torch.tensor(base, dtype=getattr(torch, dtype))

    def moved(k):  # a shrew key on the test's device
        if isinstance(k, tuple):
            return tuple(moved(e) for e in k)
        return k.to(device) if isinstance(k, sc.Tensor) else k

    v, tv = value(sc), value(torch)
    x[moved(key(sc))] = v.to(device).to(dtype) if isinstance(v, sc.Tensor) else v
    t[key(torch)] = tv.to(getattr(torch, dtype)) if isinstance(tv, torch.Tensor) else tv
    np.testing.assert_array_equal(x.numpy(), t.numpy())


def test_setitem_with_advanced_keys_rejects_bad_values(device):
    x = sc.zeros(4, 3, device=device)
    with pytest.raises(sc.ShapeError, match=r"value of shape \(2, 2\) cannot be broadcast to "
                       r"the indexed shape \(2, 3\)"):  # fmt: skip
        x[sc.tensor([0, 1], device=device)] = sc.ones(2, 2, device=device)
    np.testing.assert_array_equal(x.numpy(), np.zeros((4, 3)))  # nothing was written
    with pytest.raises(sc.IndexOutOfRangeError):
        x[sc.tensor([0, 4], device=device)] = 1.0
    w = sc.zeros(3, requires_grad=True)
    with pytest.raises(sc.AutogradError, match="in-place write"):
        w[sc.tensor([0])] = 1.0


def test_python_operators_with_scalars_on_either_side(device):
    x = sc.tensor([1.0, 2.0], device=device)
    np.testing.assert_allclose((1 - x).numpy(), [0, -1])
    np.testing.assert_allclose((2 / x).numpy(), [2, 1])
    np.testing.assert_allclose((2**x).numpy(), [2, 4])
    np.testing.assert_allclose((-x).numpy(), [-1, -2])
    assert (x == 1.0).dtype == sc.bool_
    np.testing.assert_array_equal((~(x > 1)).numpy(), [True, False])
    np.testing.assert_array_equal(((x > 1) | (x < 2)).numpy(), [True, True])


def test_integer_arithmetic_is_exact(device):
    big = 2**53 + 1
    x = sc.tensor([big, 7], device=device)
    assert (x + 1).tolist() == [big + 1, 8]
    assert (x // 2).tolist() == [big // 2, 3]
    assert (x % 3).tolist() == [big % 3, 1]
    assert (sc.tensor([-7], device=device) // 2).tolist() == [-4]
    m = sc.tensor([[1, 2], [3, 4]], device=device)
    assert (m @ m).tolist() == [[7, 10], [15, 22]]
    assert m.sum().dtype == sc.i64 and m.sum().item() == 10
    assert (sc.tensor([1, 2], dtype="u8", device=device) + 3).dtype == sc.u8
    assert (m / 2).dtype == sc.f32


def test_promotion_between_tensors(device):
    a = sc.ones(2, dtype="f16", device=device)
    b = sc.ones(2, dtype="bf16", device=device)
    assert (a + b).dtype == sc.f32
    assert (sc.ones(2, dtype="i64", device=device) * 1.5).dtype == sc.f32
    assert (sc.ones(2, dtype="f16", device=device) * 1.5).dtype == sc.f16
    assert (
        sc.ones(2, dtype="f32", device=device) + sc.ones(2, dtype="f64", device=device)
    ).dtype == sc.f64


def test_zero_dim_and_empty(device):
    s = sc.tensor(2.0, device=device)
    assert (
        (s * 3).shape == () and s.sum().shape == () and float(s.exp()) == pytest.approx(7.389, 1e-3)
    )
    e = sc.zeros(0, 3, device=device)
    assert (e + 1).shape == (0, 3)
    assert e.sum().item() == 0.0 and e.sum(0).tolist() == [0.0, 0.0, 0.0]
    assert e.prod(0).tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(sc.ShapeError, match="empty"):
        e.max(0)


def test_repr(device):
    assert repr(sc.tensor([1.0, 2.0], device="reference")).startswith("tensor([1., 2.]")
    assert "dtype=int64" in repr(sc.tensor([1], device=device))
    assert "requires_grad=True" in repr(sc.zeros(1, device=device).requires_grad_())


def test_to_device_and_dtype(device):
    x = sc.randn(2, 2, device=device).requires_grad_()
    y = x.to("reference").to("f64")
    assert y.device == sc.Device("reference") and y.dtype == sc.f64
    g = y.sum().backward()
    assert g[x].device == x.device and g[x].dtype == sc.f32


def test_half_types_roundtrip(device):
    vals = np.array([0.5, -1.25, 3.0], dtype=np.float32)
    for dt in ("f16", "bf16"):
        t = sc.tensor(vals, dtype=dt, device=device)
        np.testing.assert_array_equal(t.to("f32").numpy(), vals)
        assert (t * 2).dtype == sc.as_dtype(dt)


def test_clone_never_aliases(device):
    x = sc.arange(4, dtype="f32", device=device)
    for src in (x, x.reshape(2, 2), x[1:]):
        c = src.clone()
        c.fill_(-1.0)
        assert x.tolist() == [0.0, 1.0, 2.0, 3.0]


def test_data_setter_replaces_contents_keeping_identity(device):
    w = sc.zeros(2, 2, device=device).requires_grad_()
    w.data = sc.ones(3, dtype="f64", device=device)
    assert w.shape == (3,) and w.dtype == sc.f64 and w.requires_grad
    assert w.data.tolist() == [1.0, 1.0, 1.0] and not w.data.requires_grad


def test_linear_weight_gradient_is_contiguous(device):
    w = sc.randn(4, 3, device=device).requires_grad_()
    g = (sc.randn(5, 3, device=device) @ w.t()).sum().backward()
    assert g[w].is_contiguous() and g[w].layout.offset == 0
