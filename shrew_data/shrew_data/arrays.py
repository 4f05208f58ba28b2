"""``ArrayDataset``: in-memory features/targets with transforms, and ``train_test_split``
(seeded, stratified by default) for any dataset that exposes ``targets``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .dataset import Dataset, Subset, check_index
from .errors import DataError
from .sampler import resolve_seed


class ArrayDataset(Dataset[tuple]):
    """``dataset[i] = (features[i], targets[i])`` from two NumPy arrays of equal length."""

    def __init__(
        self,
        features: np.ndarray,
        targets: np.ndarray,
        transform: Callable[[Any], Any] | None = None,
        target_transform: Callable[[Any], Any] | None = None,
        *,
        classes: Sequence[str] | None = None,
        feature_names: Sequence[str] | None = None,
        name: str = "ArrayDataset",
    ) -> None:
        self.features = np.asarray(features)
        self.targets = np.asarray(targets)
        if self.features.ndim == 0 or len(self.features) != len(self.targets):
            raise DataError(
                f"{name}: features have shape {self.features.shape} but targets have "
                f"{self.targets.shape}; their first dimensions must match"
            )
        self.transform = transform
        self.target_transform = target_transform
        self.classes = list(classes) if classes is not None else None
        self.feature_names = list(feature_names) if feature_names is not None else None
        self.name = name

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple:
        i = check_index(index, len(self.targets), self.name)
        x: Any = self.features[i]
        y: Any = self.targets[i]
        if self.transform is not None:
            x = self.transform(x)
        if self.target_transform is not None:
            y = self.target_transform(y)
        return x, y


def train_test_split(
    dataset: Any,
    test_size: float | int = 0.25,
    seed: int | None = 0,
    stratify: bool = True,
) -> tuple[Subset, Subset]:
    """Split into (train, test) subsets. ``test_size`` is a fraction in (0, 1) or a count.
    With ``stratify`` (and a ``targets`` attribute) each class keeps its proportion."""
    n = len(dataset)
    if isinstance(test_size, float):
        if not 0.0 < test_size < 1.0:
            raise DataError(f"train_test_split: test_size must be in (0, 1), got {test_size}")
        n_test = int(round(n * test_size))
    else:
        n_test = int(test_size)
    if not 0 < n_test < n:
        raise DataError(
            f"train_test_split: test_size={test_size} leaves {n_test} of {n} samples for test; "
            "both parts must be non-empty"
        )
    rng = np.random.default_rng(resolve_seed(seed))
    targets = getattr(dataset, "targets", None)
    if stratify and targets is not None and np.asarray(targets).ndim == 1:
        targets = np.asarray(targets)
        test: list[np.ndarray] = []
        for cls in np.unique(targets):
            members = rng.permutation(np.flatnonzero(targets == cls))
            test.append(members[: int(round(len(members) * n_test / n))])
        test_idx = np.concatenate(test)
    else:
        test_idx = rng.permutation(n)[:n_test]
    mask = np.ones(n, dtype=bool)
    mask[test_idx] = False
    train_idx = rng.permutation(np.flatnonzero(mask))
    return Subset(dataset, train_idx.tolist()), Subset(dataset, rng.permutation(test_idx).tolist())
