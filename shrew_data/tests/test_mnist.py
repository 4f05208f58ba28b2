import gzip
import struct

import numpy as np
import pytest
from data_testkit import MNIST_FILES, write_mnist
from numpy.testing import assert_array_equal

import shrew_core as sc
from shrew_data import MNIST, DataError, DataLoader, FashionMNIST, read_idx, sha256_file, write_idx
from shrew_data.transforms import ToTensor


@pytest.mark.parametrize("gz", [False, True])
def test_reads_raw_and_gzipped_files(tmp_path, gz):
    written = write_mnist(tmp_path, gz=gz)
    train, test = MNIST(tmp_path), MNIST(tmp_path, train=False)
    assert len(train) == 12 and len(test) == 5
    image, label = train[3]
    assert image.shape == (28, 28) and image.dtype == np.uint8
    assert_array_equal(image, written["train"][0][3])
    assert label == int(written["train"][1][3])
    assert train.targets.dtype == np.int64


def test_torchvision_layout_and_fashion_classes(tmp_path):
    write_mnist(tmp_path / "FashionMNIST" / "raw", gz=True)
    ds = FashionMNIST(tmp_path)
    assert len(ds) == 12 and ds.classes[9] == "Ankle boot"


def test_loader_over_mnist_with_transform(tmp_path, device):
    write_mnist(tmp_path)
    ds = MNIST(tmp_path, transform=ToTensor(device=device))
    x, y = next(iter(DataLoader(ds, batch_size=5, shuffle=True, seed=0, num_workers=2)))
    assert x.shape == (5, 1, 28, 28) and x.dtype == sc.f32 and y.dtype == sc.i64
    assert x.device == sc.as_device(device)
    assert float(x.numpy().max()) <= 1.0


def test_missing_files_say_where_to_put_them(tmp_path):
    with pytest.raises(DataError) as info:
        MNIST(tmp_path / "nowhere")
    msg = str(info.value)
    assert "train-images-idx3-ubyte" in msg and "train-labels-idx1-ubyte" in msg
    assert str(tmp_path / "nowhere") in msg and "download=True" in msg


def _serve(served, written_root):
    for split in MNIST_FILES.values():
        for stem in split:
            (served / (stem + ".gz")).write_bytes((written_root / (stem + ".gz")).read_bytes())


def test_download_from_mirror_with_checksums(tmp_path, http_dir):
    served, url = http_dir
    src = tmp_path / "src"
    written = write_mnist(src, gz=True)
    _serve(served, src)
    sums = {p.name: sha256_file(p) for p in served.iterdir()}
    cache = tmp_path / "cache"
    ds = MNIST(cache, download=True, mirror=url, checksums=sums)
    assert_array_equal(ds.data, written["train"][0])
    assert sorted(p.name for p in cache.iterdir()) == sorted(sums)  # both splits cached
    (served / "train-images-idx3-ubyte.gz").unlink()  # now served from the cache only
    assert len(MNIST(cache, train=False, download=True, mirror=url)) == 5


def test_download_rejects_a_checksum_mismatch(tmp_path, http_dir):
    served, url = http_dir
    src = tmp_path / "src"
    write_mnist(src, gz=True)
    _serve(served, src)
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match="checksum mismatch for .*train-images-idx3-ubyte.gz"):
        MNIST(cache, download=True, mirror=url)  # the real MNIST digests
    assert not list(cache.glob("train-images*"))  # nothing half-verified is kept


def test_download_failure_names_the_url(tmp_path, http_dir):
    _, url = http_dir  # serves an empty directory: 404
    with pytest.raises(DataError, match="download of .*train-images-idx3-ubyte.gz failed"):
        MNIST(tmp_path / "cache", download=True, mirror=url, checksums={})


def test_count_mismatch(tmp_path):
    write_mnist(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(11, np.uint8))
    with pytest.raises(DataError, match="holds 12 images but .* holds 11 labels"):
        MNIST(tmp_path)


def test_magic_number_mismatch(tmp_path):
    write_mnist(tmp_path)
    images = tmp_path / "train-images-idx3-ubyte"
    labels = tmp_path / "train-labels-idx1-ubyte"
    images.write_bytes(labels.read_bytes())  # a label file where images belong
    with pytest.raises(DataError, match="mismatch: expected 0x00000803, got 0x00000801"):
        MNIST(tmp_path)
    images.write_bytes(b"\x12\x34\x08\x03" + b"\x00" * 16)
    with pytest.raises(DataError, match="not an IDX file: magic number 0x12340803"):
        MNIST(tmp_path)


def test_truncated_and_corrupt_files(tmp_path):
    arr = np.arange(60, dtype=np.uint8).reshape(3, 4, 5)
    path = write_idx(tmp_path / "a.idx", arr)
    assert_array_equal(read_idx(path), arr)
    data = path.read_bytes()
    path.write_bytes(data[:-7])
    with pytest.raises(DataError, match=r"truncated: header says shape \(3, 4, 5\) .* holds 53"):
        read_idx(path)
    path.write_bytes(data + b"xx")
    with pytest.raises(DataError, match="trailing bytes"):
        read_idx(path)
    path.write_bytes(data[:2])
    with pytest.raises(DataError, match="too short for an IDX header"):
        read_idx(path)
    path.write_bytes(data[:9])
    with pytest.raises(DataError, match="truncated header: 3 dimensions need 16 bytes"):
        read_idx(path)
    gz = tmp_path / "b.idx.gz"
    gz.write_bytes(gzip.compress(data)[:-10])
    with pytest.raises(DataError, match="corrupt or truncated gzip"):
        read_idx(gz)
    with pytest.raises(DataError, match="IDX file not found"):
        read_idx(tmp_path / "missing")


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_idx_round_trip_every_type(tmp_path, dtype):
    arr = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    path = write_idx(tmp_path / "x.gz", arr)
    assert path.read_bytes()[:2] == b"\x1f\x8b"
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.shape == (2, 3, 4)
    assert_array_equal(back, arr)
    raw = write_idx(tmp_path / "x.idx", arr).read_bytes()
    assert struct.unpack(">I", raw[:4])[0] == (raw[2] << 8) | 3


def test_synthetic_and_seed_names(tmp_path):
    ds = MNIST.synthetic(7)
    assert len(ds) == 7 and ds[0][0].shape == (28, 28)
    write_mnist(tmp_path)
    assert len(MNIST.load(tmp_path, split="test")) == 5
    with pytest.raises(DataError, match="split must be 'train' or 'test'"):
        MNIST.load(tmp_path, split="val")
