import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal

import shrew_core as sc
from shrew_core import Tensor
from shrew_data import DataError, one_hot
from shrew_data._rng import batch_generator
from shrew_data.transforms import (
    Compose,
    Lambda,
    Normalize,
    OneHot,
    RandomCrop,
    RandomHorizontalFlip,
    ToTensor,
)


def test_to_tensor_layouts(device):
    img = np.arange(12, dtype=np.uint8).reshape(3, 4)
    t = ToTensor(device=device)(img)
    assert isinstance(t, Tensor) and t.shape == (1, 3, 4) and t.dtype == sc.f32
    assert t.device == sc.as_device(device)
    assert_allclose(t.numpy()[0], img / 255.0, rtol=1e-6)
    hwc = np.zeros((5, 6, 3), np.uint8)
    assert ToTensor()(hwc).shape == (3, 5, 6)
    assert ToTensor(batched=True)(np.zeros((2, 5, 6), np.uint8)).shape == (2, 1, 5, 6)
    assert ToTensor(batched=True)(np.zeros((2, 5, 6, 3), np.uint8)).shape == (2, 3, 5, 6)
    floats = np.full((2, 2), 3.0)
    assert_allclose(ToTensor(dtype="f64")(floats).numpy(), np.full((1, 2, 2), 3.0))
    with pytest.raises(sc.ShapeError, match=r"expected \(H, W\) or \(H, W, C\), got shape \(4,\)"):
        ToTensor()(np.zeros(4))


def test_normalize_matches_torch(device):
    x = np.random.default_rng(0).random((4, 3, 5, 5)).astype(np.float32)
    mean, std = [0.1, 0.2, 0.3], [0.5, 0.25, 2.0]
    want = ((torch.from_numpy(x) - torch.tensor(mean)[:, None, None])
            / torch.tensor(std)[:, None, None]).numpy()
    got_t = Normalize(mean, std)(sc.from_numpy(x, device=device))
    assert got_t.device == sc.as_device(device) and got_t.dtype == sc.f32
    assert_allclose(got_t.numpy(), want, rtol=1e-5, atol=1e-6)
    assert_allclose(Normalize(mean, std)(x[0]), want[0], rtol=1e-5, atol=1e-6)
    assert_allclose(Normalize(0.5, 2.0)(x), (x - 0.5) / 2.0, rtol=1e-6)
    with pytest.raises(sc.ShapeError, match="3 channel statistics but the input has 2"):
        Normalize(mean, std)(np.zeros((2, 4, 4)))
    with pytest.raises(DataError, match="std must be non-zero"):
        Normalize([0.0], [0.0])


def test_horizontal_flip_batch_is_per_image(device):
    x = np.arange(8 * 2 * 3 * 3, dtype=np.float32).reshape(8, 2, 3, 3)
    flip = RandomHorizontalFlip(p=0.5, seed=1)
    out = flip(sc.from_numpy(x, device=device))
    assert isinstance(out, Tensor) and out.device == sc.as_device(device)
    out = out.numpy()
    flipped = [np.array_equal(o, xi[..., ::-1]) for o, xi in zip(out, x)]
    kept = [np.array_equal(o, xi) for o, xi in zip(out, x)]
    assert all(f or k for f, k in zip(flipped, kept)) and any(flipped) and any(kept)
    assert_array_equal(RandomHorizontalFlip(p=1.0)(x[0]), torch.from_numpy(x[0]).flip(-1).numpy())
    assert_array_equal(RandomHorizontalFlip(p=0.0)(x), x)


def test_random_crop_windows_of_the_padded_image():
    x = np.random.default_rng(2).integers(1, 255, (10, 3, 6, 6)).astype(np.uint8)
    crop = RandomCrop(6, padding=2, seed=4)
    out = crop(x)
    assert out.shape == (10, 3, 6, 6) and out.dtype == np.uint8
    padded = torch.nn.functional.pad(torch.from_numpy(x), (2, 2, 2, 2)).numpy()
    offsets = set()
    for k in range(10):
        hits = [(i, j) for i in range(5) for j in range(5)
                if np.array_equal(out[k], padded[k, :, i:i + 6, j:j + 6])]
        assert hits, f"image {k} is not a window of its padded image"
        offsets.add(hits[0])
    assert len(offsets) > 1  # per-image offsets
    assert RandomCrop((2, 3))(x[0]).shape == (3, 2, 3)
    with pytest.raises(sc.ShapeError, match=r"crop \(8, 8\) is larger than the padded image"):
        RandomCrop(8)(x)
    with pytest.raises(sc.ShapeError, match="expected an image"):
        RandomCrop(2)(np.zeros((4, 4)))


def test_random_transforms_follow_the_batch_generator():
    x = np.arange(4 * 1 * 5 * 5, dtype=np.float32).reshape(4, 1, 5, 5)
    crop = Compose([RandomCrop(3, padding=1), RandomHorizontalFlip()])
    with batch_generator(np.random.default_rng(9)):
        a = crop(x)
    with batch_generator(np.random.default_rng(9)):
        b = crop(x)
    assert_array_equal(a, b)
    seeded = RandomCrop(3, seed=5)
    assert_array_equal(seeded(x), RandomCrop(3, seed=5)(x))


def test_one_hot_matches_torch(device):
    labels = np.array([[0, 3], [2, 1]])
    want = torch.nn.functional.one_hot(torch.from_numpy(labels), 4).numpy()
    got = one_hot(sc.from_numpy(labels, device=device), 4)
    assert got.shape == (2, 2, 4) and got.dtype == sc.f32
    assert got.device == sc.as_device(device)
    assert_array_equal(got.numpy(), want)
    assert_array_equal(OneHot(3, dtype="i64")(2).numpy(), [0, 0, 1])
    with pytest.raises(DataError, match=r"label 4 is outside \[0, 4\)"):
        one_hot(np.array([4]), 4)
    with pytest.raises(DataError, match="labels must be integers"):
        one_hot(np.array([0.5]), 4)


def test_lambda_and_compose():
    t = Compose([Lambda(lambda v: v + 1), Lambda(lambda v: v * 10)])
    assert t(1) == 20
    assert "Lambda" in repr(t)
    with pytest.raises(DataError, match="expected a callable"):
        Lambda(3)
