"""DistributedSampler: each of ``num_replicas`` ranks reads a disjoint shard of the dataset,
with torch.utils.data.DistributedSampler's exact semantics and indices.

With ``shuffle`` the order of epoch ``e`` is ``torch.randperm(len(dataset))`` under a
generator seeded with ``seed + e``, reproduced without torch: the same MT19937 stream
(NumPy's legacy ``RandomState`` seeding is torch's ``mt19937(seed)``, the seed truncated to
32 bits like torch's) and the same Fisher-Yates swaps (``z = draw % (n - i)``). Then the list
is padded by repeating its beginning up to a multiple of ``num_replicas`` (or, with
``drop_last``, cut to one), and rank ``r`` takes every ``num_replicas``-th index from ``r``.
Unlike shrew_data's other samplers the epoch does not advance by itself: call
``set_epoch(e)`` before each epoch, as with torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sized

import numpy as np

from .errors import DataError
from .sampler import Sampler

#: Set by shrew.distributed at import: returns (world_size, rank) of the default group.
_world_provider: Callable[[], tuple[int, int]] | None = None

#: torch switches randperm algorithms at this size; above it the order is NumPy's own.
_TORCH_SMALL_N = (2**32 - 1) // 20


def register_world_provider(provider: Callable[[], tuple[int, int]]) -> None:
    """Let ``num_replicas=None`` / ``rank=None`` come from a process group (shrew.distributed
    calls this; shrew_data does not depend on it)."""
    global _world_provider
    _world_provider = provider


def torch_randperm(n: int, seed: int) -> list[int]:
    """``torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()``."""
    if n >= _TORCH_SMALL_N:  # torch's 64-bit inside-out variant is not reproduced
        return np.random.Generator(np.random.MT19937(seed)).permutation(n).tolist()
    draws = np.random.RandomState(seed & 0xFFFFFFFF).randint(
        0, 2**32, size=max(n - 1, 0), dtype=np.uint64
    )
    offsets = (draws % np.arange(n, 1, -1, dtype=np.uint64)).tolist()
    perm = list(range(n))
    for i, z in enumerate(offsets):  # sequential swaps: each depends on the previous ones
        k = i + z
        perm[i], perm[k] = perm[k], perm[i]
    return perm


class DistributedSampler(Sampler):
    """Indices of this rank's shard of ``dataset`` (torch.utils.data.DistributedSampler).

    Args:
        dataset: any sized dataset.
        num_replicas: number of ranks (default: the world size of the default
            shrew.distributed process group).
        rank: this rank (default: the default group's rank).
        shuffle: a fresh seeded permutation each epoch (``seed + epoch``).
        seed: the base seed; must be the same on every rank.
        drop_last: drop the tail so every rank gets the same number of distinct samples,
            instead of padding with repeated ones.

    Example:
        >>> from shrew_data import DataLoader, DistributedSampler
        >>> sampler = DistributedSampler(range(10), num_replicas=3, rank=0, shuffle=False)
        >>> list(sampler)
        [0, 3, 6, 9]
    """

    def __init__(
        self,
        dataset: Sized,
        num_replicas: int | None = None,
        rank: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        if num_replicas is None or rank is None:
            if _world_provider is None:
                raise DataError(
                    "DistributedSampler: num_replicas and rank were not given and no process "
                    "group is available; pass them, or import shrew.distributed and call "
                    "init_process_group() first"
                )
            world, me = _world_provider()
            num_replicas = world if num_replicas is None else num_replicas
            rank = me if rank is None else rank
        if isinstance(num_replicas, bool) or not isinstance(num_replicas, int) or num_replicas < 1:
            raise DataError(f"DistributedSampler: num_replicas must be a positive int, got "
                            f"{num_replicas!r}")  # fmt: skip
        if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank < num_replicas:
            raise DataError(f"Invalid rank {rank}, rank should be in the interval "
                            f"[0, {num_replicas - 1}]")  # fmt: skip
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise DataError(f"DistributedSampler: seed must be a non-negative int, got {seed!r}")
        self.dataset = dataset
        self.num_replicas = num_replicas
        self.rank = rank
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.epoch = 0
        n = len(dataset)
        if self.drop_last and n % num_replicas:
            self.num_samples = math.ceil((n - num_replicas) / num_replicas)
        else:
            self.num_samples = math.ceil(n / num_replicas)
        self.total_size = self.num_samples * num_replicas

    def __iter__(self) -> Iterator[int]:
        n = len(self.dataset)
        if self.shuffle:
            indices = torch_randperm(n, self.seed + self.epoch)
        else:
            indices = list(range(n))
        if not self.drop_last:
            padding = self.total_size - len(indices)
            if padding <= len(indices):
                indices += indices[:padding]
            elif indices:
                indices += (indices * math.ceil(padding / len(indices)))[:padding]
        else:
            indices = indices[: self.total_size]
        return iter(indices[self.rank : self.total_size : self.num_replicas])

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Use epoch ``epoch``'s permutation on the next ``iter()`` (same on every rank)."""
        self.epoch = int(epoch)
