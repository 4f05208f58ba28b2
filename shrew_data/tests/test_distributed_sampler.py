"""DistributedSampler against torch.utils.data.DistributedSampler: the same indices for every
combination of size, replicas, rank, shuffle, seed, drop_last and epoch."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from shrew_data import DataError, DataLoader, DistributedSampler, TensorDataset
from shrew_data import distributed_sampler as ds

torch = pytest.importorskip("torch")
from torch.utils.data import DistributedSampler as TorchSampler  # noqa: E402


@pytest.mark.parametrize("n", [1, 7, 10, 13, 100])
@pytest.mark.parametrize("replicas", [1, 2, 3, 4])
@pytest.mark.parametrize("shuffle,drop_last", list(itertools.product([True, False], repeat=2)))
def test_indices_match_torch(n, replicas, shuffle, drop_last):
    for rank, seed, epoch in itertools.product(range(replicas), [0, 5], [0, 3]):
        ours = DistributedSampler(range(n), replicas, rank, shuffle, seed, drop_last)
        ref = TorchSampler(range(n), replicas, rank, shuffle, seed, drop_last)
        ours.set_epoch(epoch)
        ref.set_epoch(epoch)
        assert len(ours) == len(ref), (n, replicas, rank, seed, epoch)
        assert list(ours) == list(ref), (n, replicas, rank, seed, epoch)


def test_padding_when_dataset_smaller_than_replicas():
    for rank in range(5):
        ours = DistributedSampler(range(2), 5, rank, shuffle=False)
        assert list(ours) == list(TorchSampler(range(2), 5, rank, shuffle=False))


@pytest.mark.parametrize("n,seed", [(0, 1), (1, 3), (2, 99), (1000, 5), (12345, 2**32 + 7)])
def test_randperm_matches_torch(n, seed):
    g = torch.Generator()
    g.manual_seed(seed)
    assert ds.torch_randperm(n, seed) == torch.randperm(n, generator=g).tolist()


def test_shards_are_disjoint_and_cover_the_dataset():
    shards = [set(DistributedSampler(range(12), 4, r, seed=2)) for r in range(4)]
    assert set().union(*shards) == set(range(12))
    assert sum(len(s) for s in shards) == 12


def test_epoch_only_changes_with_set_epoch():
    s = DistributedSampler(range(20), 2, 0, seed=1)
    first = list(s)
    assert list(s) == first  # like torch: iterating does not advance the epoch
    s.set_epoch(1)
    assert list(s) != first


def test_errors_and_default_world(monkeypatch):
    with pytest.raises(DataError, match=r"Invalid rank 2, rank should be in the interval \[0, 1\]"):
        DistributedSampler(range(4), num_replicas=2, rank=2)
    with pytest.raises(DataError, match="num_replicas must be a positive int"):
        DistributedSampler(range(4), num_replicas=0, rank=0)
    monkeypatch.setattr(ds, "_world_provider", None)
    with pytest.raises(DataError, match="no process group is available"):
        DistributedSampler(range(4))
    monkeypatch.setattr(ds, "_world_provider", lambda: (3, 1))
    s = DistributedSampler(range(9), shuffle=False)
    assert (s.num_replicas, s.rank, list(s)) == (3, 1, [1, 4, 7])


def test_with_data_loader():
    data = TensorDataset(np.arange(10, dtype=np.float32))
    sampler = DistributedSampler(data, num_replicas=2, rank=1, shuffle=False)
    batches = [b[0].numpy().tolist() for b in DataLoader(data, batch_size=2, sampler=sampler)]
    assert batches == [[1.0, 3.0], [5.0, 7.0], [9.0]]
