import numpy as np
import pytest
from numpy.testing import assert_array_equal

import shrew_core as sc
from shrew_data import (
    ConcatDataset,
    DataError,
    Subset,
    TensorDataset,
    random_split,
)


def test_tensor_dataset_mixes_tensors_and_arrays(device):
    x = sc.from_numpy(np.arange(12, dtype=np.float32).reshape(6, 2), device=device)
    ds = TensorDataset(x, np.arange(6))
    assert len(ds) == 6
    feat, label = ds[-1]
    assert_array_equal(feat.numpy(), [10.0, 11.0])
    assert label == 5
    assert ds.get(0)[1] == 0  # the seed's alias


def test_tensor_dataset_errors():
    with pytest.raises(DataError, match="same size in dim 0, got sizes 3, 4"):
        TensorDataset(np.zeros(3), np.zeros(4))
    with pytest.raises(DataError, match="at least one"):
        TensorDataset()
    with pytest.raises(IndexError, match="index 3 out of range for 3 samples"):
        TensorDataset(np.zeros(3))[3]


def test_subset_and_concat():
    a, b = TensorDataset(np.arange(3)), TensorDataset(np.arange(10, 14))
    cat = a + b
    assert isinstance(cat, ConcatDataset)
    assert [int(cat[i][0]) for i in range(len(cat))] == [0, 1, 2, 10, 11, 12, 13]
    assert int(cat[-1][0]) == 13
    sub = Subset(cat, [6, 0])
    assert [int(s[0]) for s in (sub[0], sub[1])] == [13, 0]
    with pytest.raises(DataError, match="index 9 out of range"):
        Subset(a, [0, 9])


def test_random_split_is_seeded_and_partitions():
    ds = TensorDataset(np.arange(10))
    parts = random_split(ds, [7, 3], seed=4)
    again = random_split(ds, [7, 3], seed=4)
    assert [p.indices for p in parts] == [p.indices for p in again]
    assert sorted(parts[0].indices + parts[1].indices) == list(range(10))
    fr = random_split(ds, [0.5, 0.3, 0.2], seed=1)
    assert [len(p) for p in fr] == [5, 3, 2]
    sc.manual_seed(3)
    g1 = random_split(ds, [5, 5])[0].indices
    sc.manual_seed(3)
    assert random_split(ds, [5, 5])[0].indices == g1
    with pytest.raises(DataError, match="do not add up to the dataset size 10"):
        random_split(ds, [4, 4])
