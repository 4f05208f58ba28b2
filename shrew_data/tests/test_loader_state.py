"""DataLoader.state_dict / load_state_dict: a loader restored mid-epoch yields exactly the
batches the uninterrupted loader would have (order, random augmentation, later epochs)."""

import json

import numpy as np
import pytest
from data_testkit import assert_no_worker_threads

import shrew_core as sc
from shrew_data import DataError, DataLoader, IterableDataset, TensorDataset
from shrew_data.transforms import RandomHorizontalFlip

MODES = [(0, "thread"), (2, "thread"), (2, "process")]


def make_ds(n: int = 23) -> TensorDataset:
    return TensorDataset(np.arange(n * 2, dtype=np.float32).reshape(n, 2), np.arange(n))


def as_lists(batches) -> list:
    return [[np.asarray(t.numpy()).tolist() for t in b] for b in batches]


def take(it, n: int) -> list:
    return as_lists([next(it) for _ in range(n)])


def fresh_loader(**kw) -> DataLoader:
    # seed=None: drawn from shrew_core's generator, so a resumed run gets another one
    # unless load_state_dict restores it
    return DataLoader(make_ds(), batch_size=4, shuffle=True, **kw)


@pytest.mark.parametrize("workers,mode", MODES)
def test_resume_mid_epoch_gives_the_uninterrupted_batches(workers, mode):
    sc.manual_seed(1)
    full = fresh_loader(num_workers=workers, worker_mode=mode)
    expected = [as_lists(full) for _ in range(3)]

    sc.manual_seed(1)
    first = fresh_loader(num_workers=workers, worker_mode=mode)
    assert as_lists(first) == expected[0]
    it = iter(first)
    assert take(it, 2) == expected[1][:2]
    state = json.loads(json.dumps(first.state_dict()))  # JSON-serialisable
    it.close()
    assert state["epoch"] == 1 and state["batches_yielded"] == 2

    sc.manual_seed(99)  # a different run: another seed unless restored
    resumed = fresh_loader(num_workers=workers, worker_mode=mode)
    resumed.load_state_dict(state)
    assert resumed.state_dict() == state
    assert as_lists(resumed) == expected[1][2:]
    assert as_lists(resumed) == expected[2]
    assert_no_worker_threads()


def test_resume_reproduces_random_augmentation():
    images = np.arange(6 * 1 * 2 * 3, dtype=np.float32).reshape(6, 1, 2, 3)
    ds = TensorDataset(images, np.arange(6))

    def loader():
        return DataLoader(ds, batch_size=2, shuffle=True, seed=5,
                          batch_transform=lambda b: [RandomHorizontalFlip()(b[0]), b[1]])

    expected = as_lists(loader())
    first = loader()
    it = iter(first)
    take(it, 1)
    state = first.state_dict()
    resumed = loader()
    resumed.load_state_dict(state)
    assert as_lists(resumed) == expected[1:]


def test_state_between_epochs_points_at_the_next_epoch():
    loader = fresh_loader(seed=3)
    epoch0 = as_lists(loader)
    state = loader.state_dict()
    assert (state["epoch"], state["batches_yielded"]) == (1, 0)
    epoch1 = as_lists(loader)
    again = fresh_loader(seed=3)
    again.load_state_dict(state)
    assert as_lists(again) == epoch1 != epoch0


def test_after_the_last_batch_the_epoch_is_resumed_empty():
    loader = DataLoader(make_ds(8), batch_size=4, shuffle=True, seed=2)
    it = iter(loader)
    take(it, 2)  # every batch, StopIteration not yet seen (checkpoint in the loop body)
    state = loader.state_dict()
    assert (state["epoch"], state["batches_yielded"]) == (0, 2)
    resumed = DataLoader(make_ds(8), batch_size=4, shuffle=True, seed=2)
    resumed.load_state_dict(state)
    assert as_lists(resumed) == []
    assert as_lists(resumed) == as_lists(loader)  # both now produce epoch 1


class Stream(IterableDataset):
    def __iter__(self):
        return iter([(np.float32(i), i) for i in range(10)])


@pytest.mark.parametrize("workers", [0, 1])
def test_iterable_dataset_resume_skips_the_yielded_samples(workers):
    expected = as_lists(DataLoader(Stream(), batch_size=3, seed=0, num_workers=workers))
    first = DataLoader(Stream(), batch_size=3, seed=0, num_workers=workers)
    it = iter(first)
    take(it, 1)
    state = first.state_dict()
    it.close()
    resumed = DataLoader(Stream(), batch_size=3, seed=0, num_workers=workers)
    resumed.load_state_dict(state)
    assert as_lists(resumed) == expected[1:]
    assert state["sampler_epoch"] is None
    assert_no_worker_threads()


@pytest.mark.parametrize("bad", [
    None,
    {"epoch": 1},
    {"epoch": -1, "batches_yielded": 0, "seed": 0, "sampler_seed": 0, "sampler_epoch": 0},
    {"epoch": 1, "batches_yielded": 1.5, "seed": 0, "sampler_seed": 0, "sampler_epoch": 0},
    {"epoch": 0, "batches_yielded": 0, "seed": 0, "sampler_seed": None, "sampler_epoch": None},
])  # fmt: skip
def test_malformed_state_raises_and_changes_nothing(bad):
    loader = fresh_loader(seed=4)
    before = loader.state_dict()
    with pytest.raises(DataError, match="load_state_dict"):
        loader.load_state_dict(bad)
    assert loader.state_dict() == before
