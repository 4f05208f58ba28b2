"""MNIST and Fashion-MNIST from IDX files (raw or gzipped) in a directory, with optional
download from a configurable mirror into a cache directory, verified by SHA-256.

Files are looked up in ``root``, ``root/<Name>`` and ``root/<Name>/raw`` (torchvision's
layout), each as ``<file>`` or ``<file>.gz``. ``root=None`` means the cache directory
(``$SHREW_DATA_HOME`` or ``~/.cache/shrew/data``) + ``<Name>``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .dataset import Dataset, check_index
from .download import default_cache_dir, download_file
from .errors import DataError
from .idx import read_idx


class MNIST(Dataset[tuple]):
    """The MNIST handwritten digits: 60,000 training and 10,000 test 28x28 images.

    ``dataset[i]`` is ``(image, label)``: a ``(28, 28)`` uint8 array (a view, no copy; like
    torchvision's grayscale image, so ``ToTensor()`` makes it ``(1, 28, 28)`` float32) and
    an int, each passed through ``transform`` / ``target_transform`` when given.
    ``.data`` (N, 28, 28) uint8 and ``.targets`` (N,) int64 hold everything for
    vectorised pipelines.

    Args:
        root: directory holding the files (see the module docstring); None for the cache.
        train: the training split (else the test split).
        download: fetch missing files from ``mirror`` into ``root``.
        mirror: base URL the file names are appended to (default: the class's first mirror).
        checksums: file name -> SHA-256 of the ``.gz`` download (default: the published
            digests; pass ``{}`` to skip verification, e.g. for a private mirror).
    """

    name: ClassVar[str] = "MNIST"
    mirrors: ClassVar[tuple[str, ...]] = ("https://ossci-datasets.s3.amazonaws.com/mnist/",)
    files: ClassVar[dict[str, tuple[str, str]]] = {
        "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    }
    sha256: ClassVar[dict[str, str]] = {
        "train-images-idx3-ubyte.gz":
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz":
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz":
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz":
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    }  # fmt: skip
    classes: ClassVar[list[str]] = [str(d) for d in range(10)]

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        train: bool = True,
        download: bool = False,
        transform: Callable[[Any], Any] | None = None,
        target_transform: Callable[[Any], Any] | None = None,
        *,
        mirror: str | None = None,
        checksums: Mapping[str, str] | None = None,
    ) -> None:
        self.root = Path(root) if root is not None else default_cache_dir() / self.name
        self.train = train
        self.transform = transform
        self.target_transform = target_transform
        self.mirror = mirror if mirror is not None else self.mirrors[0]
        self.checksums = dict(self.sha256 if checksums is None else checksums)
        image_file, label_file = self.files["train" if train else "test"]
        paths = [self._find(image_file), self._find(label_file)]
        if None in paths and download:
            self.download()
            paths = [self._find(image_file), self._find(label_file)]
        missing = [f for f, p in zip((image_file, label_file), paths) if p is None]
        if missing:
            raise DataError(self._missing_message(missing))
        images = read_idx(paths[0], expect_code=0x08, expect_ndim=3)
        labels = read_idx(paths[1], expect_code=0x08, expect_ndim=1)
        if len(images) != len(labels):
            raise DataError(
                f"{self.name}: {paths[0]} holds {len(images)} images but {paths[1]} holds "
                f"{len(labels)} labels"
            )
        self._set(images, labels.astype(np.int64))

    def _set(self, images: np.ndarray, labels: np.ndarray) -> None:
        self.data = images
        self.targets = labels

    @classmethod
    def synthetic(cls, n: int = 64, train: bool = True, seed: int = 0) -> MNIST:
        """A random MNIST-shaped dataset (no files), like the seed's ``synthetic``."""
        rng = np.random.default_rng(seed)
        obj = cls.__new__(cls)
        obj.root, obj.train, obj.transform, obj.target_transform = None, train, None, None
        obj._set(rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
                 rng.integers(0, len(cls.classes), n).astype(np.int64))
        return obj

    @classmethod
    def load(cls, root: str | os.PathLike, split: str = "train") -> MNIST:
        """The seed's ``MnistDataset.load(dir, split="train"|"test")``."""
        if split not in cls.files:
            raise DataError(f"{cls.name}.load: split must be 'train' or 'test', got {split!r}")
        return cls(root, train=split == "train")

    def _search_dirs(self) -> list[Path]:
        return [self.root, self.root / self.name, self.root / self.name / "raw"]

    def _find(self, stem: str) -> Path | None:
        for d in self._search_dirs():
            for name in (stem, stem + ".gz"):
                if (d / name).is_file():
                    return d / name
        return None

    def _missing_message(self, missing: list[str]) -> str:
        where = ", ".join(str(d) for d in self._search_dirs())
        names = ", ".join(f"{m} (or {m}.gz)" for m in missing)
        return (
            f"{self.name}: missing {names}. Put the files in {self.root} (also searched: "
            f"{where}), or pass download=True to fetch them from {self.mirror}"
        )

    def download(self) -> None:
        """Fetch both splits' missing files into ``root``, verifying their SHA-256."""
        for image_file, label_file in self.files.values():
            for stem in (image_file, label_file):
                if self._find(stem) is not None:
                    continue
                name = stem + ".gz"
                download_file(self.mirror.rstrip("/") + "/" + name, self.root / name,
                              self.checksums.get(name))

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple:
        i = check_index(index, len(self.targets), self.name)
        image: Any = self.data[i]
        target: Any = int(self.targets[i])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target


class FashionMNIST(MNIST):
    """Zalando's Fashion-MNIST: MNIST's format and sizes, ten clothing classes."""

    name: ClassVar[str] = "FashionMNIST"
    mirrors: ClassVar[tuple[str, ...]] = (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    )
    sha256: ClassVar[dict[str, str]] = {
        "train-images-idx3-ubyte.gz":
            "08dc20ab1689590a0bcd66e874647b6ee8464e2d501b5a3f1f78831db19a3fdc",
        "train-labels-idx1-ubyte.gz":
            "b0197879cbda89f3dc7b894f9fd52b858e68ea4182b6947c9d8c2b67e5f18dcc",
        "t10k-images-idx3-ubyte.gz":
            "78dcbbfb5a27efaf1b6c1d616caca68560be8766c5bffcb2791df9273a534229",
        "t10k-labels-idx1-ubyte.gz":
            "42bd18137a62d5998cdeae52bf3a0676ac6b706f5cf8439b47bb5b151ae3dccf",
    }  # fmt: skip
    classes: ClassVar[list[str]] = [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ]  # fmt: skip


MnistDataset = MNIST  # the seed's name
