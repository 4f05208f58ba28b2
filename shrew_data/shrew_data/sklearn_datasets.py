"""Real datasets bundled with scikit-learn (no download): digits as 1x8x8 images, iris,
wine and breast cancer, as ``ArrayDataset``s of float32 features and int64 labels.
scikit-learn is optional (``pip install 'shrew-data[sklearn]'``); without it these
functions raise ``MissingDependencyError`` naming it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .arrays import ArrayDataset
from .errors import MissingDependencyError


def _sklearn_datasets(what: str) -> Any:
    try:
        from sklearn import datasets
    except ImportError as exc:
        raise MissingDependencyError(
            f"shrew_data.{what} needs scikit-learn, which is not installed: "
            "pip install scikit-learn (or pip install 'shrew-data[sklearn]')"
        ) from exc
    return datasets


def _tabular(what: str, loader: str, transform: Any, target_transform: Any) -> ArrayDataset:
    bunch = getattr(_sklearn_datasets(what), loader)()
    return ArrayDataset(
        bunch.data.astype(np.float32),
        bunch.target.astype(np.int64),
        transform,
        target_transform,
        classes=[str(c) for c in bunch.target_names],
        feature_names=list(bunch.feature_names),
        name=what,
    )


def load_digits(
    images: bool = True,
    transform: Callable[[Any], Any] | None = None,
    target_transform: Callable[[Any], Any] | None = None,
) -> ArrayDataset:
    """1,797 handwritten digits: features ``(1, 8, 8)`` float32 in [0, 1] (or flat ``(64,)``
    with ``images=False``), labels 0-9."""
    bunch = _sklearn_datasets("load_digits").load_digits()
    x = (bunch.data / 16.0).astype(np.float32)
    x = x.reshape(-1, 1, 8, 8) if images else x
    return ArrayDataset(x, bunch.target.astype(np.int64), transform, target_transform,
                        classes=[str(c) for c in bunch.target_names], name="load_digits")


def load_iris(transform: Any = None, target_transform: Any = None) -> ArrayDataset:
    """150 irises, 4 features, 3 classes."""
    return _tabular("load_iris", "load_iris", transform, target_transform)


def load_wine(transform: Any = None, target_transform: Any = None) -> ArrayDataset:
    """178 wines, 13 features, 3 classes."""
    return _tabular("load_wine", "load_wine", transform, target_transform)


def load_breast_cancer(transform: Any = None, target_transform: Any = None) -> ArrayDataset:
    """569 tumours, 30 features, 2 classes (malignant, benign)."""
    return _tabular("load_breast_cancer", "load_breast_cancer", transform, target_transform)
