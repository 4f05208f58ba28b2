"""Image data for the MNIST examples: real MNIST IDX files when a folder is given, else
scikit-learn's bundled 8x8 handwritten digits (no download), as (train, test) datasets of
``(1, H, W)`` float32 images in [0, 1] and int64 labels."""

from __future__ import annotations

import argparse

import numpy as np

from shrew_data import MNIST, ArrayDataset, load_digits, train_test_split


def load_images(data_dir: str | None, limit: int | None = None):
    """``(train, test, source)``; ``limit`` caps each split (quick runs)."""
    if data_dir:
        train, test = (MNIST(data_dir, train=split) for split in (True, False))
        sets = [
            ArrayDataset((d.data[:limit, None] / np.float32(255)), d.targets[:limit], name=n)
            for d, n in ((train, "mnist-train"), (test, "mnist-test"))
        ]
        return sets[0], sets[1], f"MNIST from {data_dir}"
    train, test = train_test_split(load_digits(), test_size=0.25, seed=0)
    if limit:
        train = ArrayDataset(*_arrays(train, limit), name="digits-train")
        test = ArrayDataset(*_arrays(test, limit), name="digits-test")
    return train, test, "scikit-learn's bundled 8x8 digits (pass --data DIR for MNIST)"


def _arrays(subset, limit):
    idx = np.asarray(subset.indices[:limit])
    return subset.dataset.features[idx], subset.dataset.targets[idx]


def command_line(main, doc: str, epochs: int) -> None:
    """``python examples/<name>.py [--data DIR] [--epochs N] [--limit N]``."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--data", help="folder with MNIST IDX files (default: bundled digits)")
    p.add_argument("--epochs", type=int, default=epochs)
    p.add_argument("--limit", type=int, help="use at most N images per split")
    a = p.parse_args()
    main(a.data, a.epochs, a.limit)
