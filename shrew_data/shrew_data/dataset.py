"""Dataset containers: the map-style ``Dataset`` protocol (``len`` + ``getitem``),
``IterableDataset``, ``TensorDataset``, ``Subset``, ``ConcatDataset`` and ``random_split``.

A map-style dataset is anything with ``__len__`` and ``__getitem__(int)``; subclassing
``Dataset`` only adds ``+`` (concatenation) and the seed's ``get(i)`` alias.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterator, Sequence
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

import numpy as np

from shrew_core.random import next_seed

from .errors import DataError

T_co = TypeVar("T_co", covariant=True)


@runtime_checkable
class SizedDataset(Protocol[T_co]):
    """The structural protocol every map-style dataset satisfies."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> T_co: ...


class Dataset(Generic[T_co]):
    """Base class of map-style datasets: override ``__len__`` and ``__getitem__``."""

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must implement __len__")

    def __getitem__(self, index: int) -> T_co:
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__")

    def get(self, index: int) -> T_co:
        """The seed's spelling of ``dataset[index]``."""
        return self[index]

    def __add__(self, other: Dataset) -> ConcatDataset:
        return ConcatDataset([self, other])


class IterableDataset(Generic[T_co]):
    """A stream of samples: override ``__iter__``. May define ``__len__`` (number of
    samples) so loaders can report a length for progress bars."""

    def __iter__(self) -> Iterator[T_co]:
        raise NotImplementedError(f"{type(self).__name__} must implement __iter__")


def check_index(index: Any, size: int, what: str) -> int:
    """Normalise a (possibly negative) integer index, or raise IndexError naming ``what``."""
    if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
        raise DataError(f"{what}: index must be an integer, got {type(index).__name__}")
    i = int(index)
    if i < -size or i >= size:
        raise IndexError(f"{what}: index {i} out of range for {size} samples")
    return i + size if i < 0 else i


class TensorDataset(Dataset[tuple]):
    """Samples are ``(a[i], b[i], ...)`` across tensors or NumPy arrays of equal length.

    >>> import numpy as np
    >>> ds = TensorDataset(np.zeros((4, 2)), np.arange(4))
    >>> len(ds), ds[1][1]
    (4, np.int64(1))
    """

    def __init__(self, *tensors: Any) -> None:
        if not tensors:
            raise DataError("TensorDataset: needs at least one tensor or array")
        sizes = [_first_dim(t, i) for i, t in enumerate(tensors)]
        if len(set(sizes)) != 1:
            raise DataError(
                "TensorDataset: all tensors must have the same size in dim 0, got sizes "
                + ", ".join(str(s) for s in sizes)
            )
        self.tensors = tensors
        self._len = sizes[0]

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, index: int) -> tuple:
        i = check_index(index, self._len, "TensorDataset")
        return tuple(t[i] for t in self.tensors)


def _first_dim(t: Any, position: int) -> int:
    shape = getattr(t, "shape", None)
    if shape is None or len(shape) == 0:
        raise DataError(
            f"TensorDataset: argument {position} must be a tensor or array with at least one "
            f"dimension, got {type(t).__name__} with shape {shape}"
        )
    return int(shape[0])


class Subset(Dataset[T_co]):
    """The samples of ``dataset`` at ``indices`` (in that order)."""

    def __init__(self, dataset: SizedDataset[T_co], indices: Sequence[int]) -> None:
        self.dataset = dataset
        self.indices = [int(i) for i in indices]
        n = len(dataset)
        bad = [i for i in self.indices if i < -n or i >= n]
        if bad:
            raise DataError(f"Subset: index {bad[0]} out of range for a dataset of {n} samples")

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> T_co:
        i = check_index(index, len(self.indices), "Subset")
        return self.dataset[self.indices[i]]


class ConcatDataset(Dataset[T_co]):
    """Several map-style datasets one after the other."""

    def __init__(self, datasets: Sequence[SizedDataset[T_co]]) -> None:
        self.datasets = list(datasets)
        if not self.datasets:
            raise DataError("ConcatDataset: needs at least one dataset")
        for k, d in enumerate(self.datasets):
            if isinstance(d, IterableDataset):
                raise DataError(f"ConcatDataset: dataset {k} is an IterableDataset")
        self.cumulative_sizes: list[int] = np.cumsum([len(d) for d in self.datasets]).tolist()

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, index: int) -> T_co:
        i = check_index(index, len(self), "ConcatDataset")
        k = bisect.bisect_right(self.cumulative_sizes, i)
        start = self.cumulative_sizes[k - 1] if k > 0 else 0
        return self.datasets[k][i - start]


def random_split(
    dataset: SizedDataset[T_co], lengths: Sequence[int | float], seed: int | None = None
) -> list[Subset[T_co]]:
    """Split into non-overlapping random subsets of the given lengths (or fractions summing
    to 1; the remainder is spread round-robin like PyTorch). ``seed=None`` draws one from
    ``shrew_core``'s global generator, so ``shrew_core.manual_seed`` makes it reproducible.
    """
    n = len(dataset)
    lengths = list(lengths)
    if lengths and all(isinstance(x, float) for x in lengths) and math.isclose(sum(lengths), 1):
        counts = [int(math.floor(n * f)) for f in lengths]
        for k in range(n - sum(counts)):
            counts[k % len(counts)] += 1
    else:
        counts = [int(x) for x in lengths]
    if any(c < 0 for c in counts) or sum(counts) != n:
        raise DataError(
            f"random_split: lengths {lengths} do not add up to the dataset size {n} "
            "(give integer sizes summing to it, or fractions summing to 1)"
        )
    rng = np.random.default_rng(next_seed() if seed is None else seed)
    perm = rng.permutation(n)
    out, start = [], 0
    for c in counts:
        out.append(Subset(dataset, perm[start : start + c].tolist()))
        start += c
    return out
