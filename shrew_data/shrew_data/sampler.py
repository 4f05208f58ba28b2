"""Samplers: which indices a DataLoader reads, in which order, grouped into which batches.

Random samplers own a base seed (given, or drawn from ``shrew_core``'s global generator at
construction, so ``shrew_core.manual_seed`` makes them reproducible). Every ``iter()`` is one
epoch: the epoch number is mixed into the seed, so each epoch reshuffles, and the sequence
of epochs is the same for the same seed. ``set_epoch(e)`` jumps to epoch ``e``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence, Sized

import numpy as np

from shrew_core.random import next_seed

from .errors import DataError


def epoch_generator(seed: int, epoch: int, *extra: int) -> np.random.Generator:
    """A NumPy generator for ``(seed, epoch, *extra)``: independent streams per epoch/batch."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, epoch, *extra])))


def resolve_seed(seed: int | None) -> int:
    """``seed`` itself, or a fresh one from shrew_core's global generator."""
    if seed is None:
        return next_seed()
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DataError(f"seed must be a non-negative integer or None, got {seed!r}")
    return int(seed)


class Sampler:
    """Base class: ``__iter__`` yields dataset indices; ``__len__`` counts them."""

    def __iter__(self) -> Iterator[int]:
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError


class SequentialSampler(Sampler):
    """0, 1, ..., len(data_source) - 1."""

    def __init__(self, data_source: Sized) -> None:
        self.data_source = data_source

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class _EpochSampler(Sampler):
    """Shared seed/epoch bookkeeping of the random samplers."""

    def __init__(self, seed: int | None) -> None:
        self.seed = resolve_seed(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """The next ``iter()`` produces epoch ``epoch``'s order."""
        self.epoch = int(epoch)

    def _next_generator(self) -> np.random.Generator:
        rng = epoch_generator(self.seed, self.epoch)
        self.epoch += 1
        return rng


class RandomSampler(_EpochSampler):
    """A fresh permutation each epoch (or ``num_samples`` draws with replacement)."""

    def __init__(
        self,
        data_source: Sized,
        replacement: bool = False,
        num_samples: int | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__(seed)
        self.data_source = data_source
        self.replacement = bool(replacement)
        if num_samples is not None and (not isinstance(num_samples, int) or num_samples <= 0):
            raise DataError(
                f"RandomSampler: num_samples must be a positive int, got {num_samples!r}"
            )
        if num_samples is not None and not replacement:
            raise DataError("RandomSampler: num_samples needs replacement=True")
        self._num_samples = num_samples

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self) -> Iterator[int]:
        rng = self._next_generator()
        n = len(self.data_source)
        if self.replacement:
            return iter(rng.integers(0, n, size=self.num_samples).tolist())
        return iter(rng.permutation(n).tolist())

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(_EpochSampler):
    """The given indices in a fresh random order each epoch."""

    def __init__(self, indices: Sequence[int], seed: int | None = None) -> None:
        super().__init__(seed)
        self.indices = [int(i) for i in indices]

    def __iter__(self) -> Iterator[int]:
        perm = self._next_generator().permutation(len(self.indices))
        return iter([self.indices[i] for i in perm])

    def __len__(self) -> int:
        return len(self.indices)


class WeightedRandomSampler(_EpochSampler):
    """``num_samples`` indices drawn with probability proportional to ``weights``."""

    def __init__(
        self,
        weights: Sequence[float],
        num_samples: int,
        replacement: bool = True,
        seed: int | None = None,
    ) -> None:
        super().__init__(seed)
        w = np.asarray(weights, dtype=np.float64).reshape(-1)
        if w.size == 0 or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise DataError("WeightedRandomSampler: weights must be finite, >= 0, not all zero")
        if not isinstance(num_samples, int) or num_samples <= 0:
            raise DataError(
                f"WeightedRandomSampler: num_samples must be a positive int, got {num_samples!r}"
            )
        if not replacement and num_samples > np.count_nonzero(w):
            raise DataError(
                f"WeightedRandomSampler: cannot draw {num_samples} samples without replacement "
                f"from {np.count_nonzero(w)} non-zero weights"
            )
        self.weights = w / w.sum()
        self.num_samples = num_samples
        self.replacement = bool(replacement)

    def __iter__(self) -> Iterator[int]:
        rng = self._next_generator()
        idx = rng.choice(len(self.weights), self.num_samples, self.replacement, p=self.weights)
        return iter(idx.tolist())

    def __len__(self) -> int:
        return self.num_samples


class BatchSampler(Sampler):
    """Groups a sampler's indices into lists of ``batch_size`` (the last may be short unless
    ``drop_last``)."""

    def __init__(self, sampler: Iterable[int], batch_size: int, drop_last: bool = False) -> None:
        self.sampler = sampler
        self.batch_size = check_batch_size(batch_size)
        self.drop_last = bool(drop_last)

    def __iter__(self) -> Iterator[list[int]]:
        batch: list[int] = []
        for idx in self.sampler:
            batch.append(idx)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self) -> int:
        n = len(self.sampler)  # type: ignore[arg-type]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)


def check_batch_size(batch_size: object) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise DataError(f"batch_size must be a positive integer, got {batch_size!r}")
    if batch_size <= 0:
        raise DataError(f"batch_size must be a positive integer, got {batch_size}")
    return int(batch_size)
