import threading
import time
from collections import namedtuple

import numpy as np
import pytest
from data_testkit import assert_no_worker_threads
from numpy.testing import assert_array_equal

import shrew_core as sc
from shrew_core import Tensor
from shrew_data import (
    BatchSampler,
    DataError,
    DataLoader,
    Dataset,
    IterableDataset,
    SequentialSampler,
    TensorDataset,
    WeightedRandomSampler,
    default_collate,
)
from shrew_data.transforms import RandomCrop, RandomHorizontalFlip

MODES = [(0, "thread"), (2, "thread"), (2, "process")]


def labels(loader) -> list[list[int]]:
    return [np.asarray(b[1].numpy()).tolist() for b in loader]


def make_ds(n: int = 23) -> TensorDataset:
    return TensorDataset(np.arange(n * 2, dtype=np.float32).reshape(n, 2), np.arange(n))


@pytest.mark.parametrize("workers,mode", MODES)
def test_same_seed_same_batches_and_epochs_reshuffle(workers, mode):
    def run():
        loader = DataLoader(make_ds(), batch_size=5, shuffle=True, seed=7,
                            num_workers=workers, worker_mode=mode)
        return labels(loader), labels(loader)

    (e0, e1), (f0, f1) = run(), run()
    assert e0 == f0 and e1 == f1
    assert e0 != e1  # each epoch reshuffles
    assert sorted(sum(e0, [])) == list(range(23)) == sorted(sum(e1, []))
    assert_no_worker_threads()


def test_seed_none_follows_manual_seed():
    sc.manual_seed(11)
    a = labels(DataLoader(make_ds(), batch_size=4, shuffle=True))
    sc.manual_seed(11)
    b = labels(DataLoader(make_ds(), batch_size=4, shuffle=True))
    assert a == b
    assert sum(a, []) != list(range(23))


def test_set_epoch_replays_an_epoch():
    loader = DataLoader(make_ds(), batch_size=4, shuffle=True, seed=3)
    first, second = labels(loader), labels(loader)
    loader.set_epoch(1)
    assert labels(loader) == second
    loader.set_epoch(0)
    assert labels(loader) == first


@pytest.mark.parametrize("drop_last,expected", [(False, [5, 5, 5, 5, 3]), (True, [5, 5, 5, 5])])
def test_drop_last_and_len(drop_last, expected):
    loader = DataLoader(make_ds(), batch_size=5, drop_last=drop_last, num_workers=2)
    sizes = [b[0].shape[0] for b in loader]
    assert sizes == expected
    assert len(loader) == len(expected)
    flat = sum(labels(loader), [])
    assert flat == list(range(len(flat)))  # sequential order kept with workers


def test_batches_are_tensors_on_the_requested_device_and_dtype(device):
    ds = TensorDataset(np.ones((6, 3), np.float32), np.arange(6, dtype=np.int32))
    loader = DataLoader(ds, batch_size=4, num_workers=1, device=device, dtype="f64")
    x, y = next(iter(loader))
    assert isinstance(x, Tensor) and x.device == sc.as_device(device)
    assert x.dtype == sc.f64 and x.shape == (4, 3)
    assert y.dtype == sc.i64 and y.device == sc.as_device(device)  # labels keep an int dtype
    assert_no_worker_threads()


def test_pin_moves_tensors_made_by_a_custom_collate(device):
    ds = TensorDataset(np.arange(4, dtype=np.float32))
    loader = DataLoader(ds, batch_size=2, collate_fn=lambda b: {"x": sc.tensor([s[0] for s in b])},
                        device=device, dtype=sc.f16)
    batch = next(iter(loader))
    assert batch["x"].device == sc.as_device(device) and batch["x"].dtype == sc.f16


Point = namedtuple("Point", "x y")


class NestedDataset(Dataset):
    def __len__(self):
        return 5

    def __getitem__(self, i):
        return {
            "image": np.full((2, 2), i, np.uint8),
            "meta": (i, float(i) / 2, f"name{i}", Point(np.int64(i), [i, -i])),
        }


def test_nested_collate():
    batch = next(iter(DataLoader(NestedDataset(), batch_size=3)))
    assert batch["image"].shape == (3, 2, 2) and batch["image"].dtype == sc.u8
    ints, halves, names, point = batch["meta"]
    assert ints.dtype == sc.i64 and ints.tolist() == [0, 1, 2]
    assert halves.dtype == sc.f32 and halves.tolist() == [0.0, 0.5, 1.0]
    assert names == ["name0", "name1", "name2"]
    assert isinstance(point, Point) and point.x.tolist() == [0, 1, 2]
    assert [t.tolist() for t in point.y] == [[0, 1, 2], [0, -1, -2]]


def test_collate_stacks_tensors_on_their_device(device):
    samples = [sc.from_numpy(np.full((2,), i, np.float32), device=device) for i in range(3)]
    out = default_collate(samples)
    assert out.device == sc.as_device(device)
    assert_array_equal(out.numpy(), [[0, 0], [1, 1], [2, 2]])


def test_collate_errors_name_the_sample():
    with pytest.raises(sc.ShapeError, match=r"sample 1 has shape \(3,\) but sample 0 has \(2,\)"):
        default_collate([np.zeros(2), np.zeros(3)])
    with pytest.raises(DataError, match="sample 1 has 1 fields but sample 0 has 2"):
        default_collate([(1, 2), (1,)])
    with pytest.raises(DataError, match="sample 1 has keys"):
        default_collate([{"a": 1}, {"b": 1}])
    with pytest.raises(DataError, match="cannot batch samples of type object"):
        default_collate([object()])


class Exploding(Dataset):
    def __init__(self, bad: int = 13):
        self.bad = bad

    def __len__(self):
        return 40

    def __getitem__(self, i):
        if i == self.bad:
            raise KeyError(f"broken sample {i}")
        return np.float32(i)


@pytest.mark.parametrize("workers,mode", MODES)
def test_worker_exception_reaches_caller_with_traceback(workers, mode):
    loader = DataLoader(Exploding(), batch_size=4, num_workers=workers, worker_mode=mode)
    seen = []
    with pytest.raises(KeyError, match="broken sample 13") as info:
        for batch in loader:
            seen.append(batch)
    assert len(seen) == 3  # batches before the failing one arrive in order
    text = "".join(info.value.__notes__) if hasattr(info.value, "__notes__") else ""
    assert "batch 3" in text and "13" in text
    if mode == "thread":
        frames = [f.name for f in __import__("traceback").extract_tb(info.tb)]
        assert "__getitem__" in frames  # the worker's own frames are kept
    else:
        assert "__getitem__" in str(info.value.__cause__)  # the remote traceback
    assert_no_worker_threads()


@pytest.mark.parametrize("workers", [1, 3])
def test_early_break_leaves_no_threads(workers):
    calls = []

    class Slow(Dataset):
        def __len__(self):
            return 200

        def __getitem__(self, i):
            calls.append(i)
            time.sleep(0.001)
            return i

    loader = DataLoader(Slow(), batch_size=2, num_workers=workers, prefetch_factor=2)
    for k, _ in enumerate(loader):
        if k == 2:
            break
    assert_no_worker_threads()
    # prefetching is bounded: at most num_workers * prefetch_factor batches beyond the 3 used
    assert len(calls) <= 2 * (3 + workers * 2)
    with DataLoader(Slow(), batch_size=2, num_workers=workers).__iter__() as it:
        next(it)
    assert_no_worker_threads()


def test_loading_overlaps_with_the_consumer():
    """Batch 1 is loaded while the consumer still holds batch 0 (no timing assertions: the
    dataset signals an event that the consumer waits for before asking for more)."""
    second_requested = threading.Event()

    class Signalling(Dataset):
        def __len__(self):
            return 6

        def __getitem__(self, i):
            if i == 1:
                second_requested.set()
            return i

    it = iter(DataLoader(Signalling(), batch_size=1, num_workers=2, prefetch_factor=2))
    first = next(it)
    assert int(first[0]) == 0
    assert second_requested.wait(timeout=10.0), "batch 1 was not prefetched in the background"
    assert [int(b[0]) for b in it] == [1, 2, 3, 4, 5]


class Stream(IterableDataset):
    def __init__(self, n, fail_at=None):
        self.n, self.fail_at = n, fail_at
        self.closed = threading.Event()

    def __iter__(self):
        try:
            for i in range(self.n):
                if i == self.fail_at:
                    raise RuntimeError(f"stream failed at {i}")
                yield np.int64(i)
        finally:
            self.closed.set()

    def __len__(self):
        return self.n


@pytest.mark.parametrize("workers", [0, 2])
def test_iterable_dataset(workers):
    ds = Stream(10)
    loader = DataLoader(ds, batch_size=4, num_workers=workers)
    assert [b.tolist() for b in loader] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert len(loader) == 3
    assert len(DataLoader(ds, batch_size=4, drop_last=True)) == 2
    assert [len(b) for b in DataLoader(ds, batch_size=4, drop_last=True)] == [4, 4]
    big = Stream(10_000)
    for _ in DataLoader(big, batch_size=2, num_workers=workers):
        break
    assert big.closed.wait(2.0)  # the source iterator is closed on early exit
    with pytest.raises(RuntimeError, match="stream failed at 5"):
        list(DataLoader(Stream(10, fail_at=5), batch_size=2, num_workers=workers))
    assert_no_worker_threads()


def test_iterable_without_len_has_no_loader_len():
    class NoLen(IterableDataset):
        def __iter__(self):
            return iter(range(3))

    with pytest.raises(TypeError, match="has no __len__"):
        len(DataLoader(NoLen()))


def test_sampler_and_batch_sampler():
    ds = make_ds(10)
    loader = DataLoader(ds, batch_size=3, sampler=[9, 8, 7, 6])
    assert labels(loader) == [[9, 8, 7], [6]]
    bs = BatchSampler(SequentialSampler(ds), 4, drop_last=True)
    loader = DataLoader(ds, batch_sampler=bs)
    assert labels(loader) == [[0, 1, 2, 3], [4, 5, 6, 7]] and len(loader) == 2
    w = WeightedRandomSampler([0, 0, 1, 0, 0, 0, 0, 0, 0, 1], num_samples=6, seed=0)
    drawn = sum(labels(DataLoader(ds, batch_size=6, sampler=w)), [])
    assert set(drawn) <= {2, 9} and len(drawn) == 6


def test_augmentation_is_reproducible_across_workers():
    images = np.arange(16 * 1 * 6 * 6, dtype=np.float32).reshape(16, 1, 6, 6)
    aug = RandomCrop(4, padding=1)
    flip = RandomHorizontalFlip()

    def run(workers):
        ds = TensorDataset(images)
        loader = DataLoader(ds, batch_size=4, seed=5, num_workers=workers,
                            collate_fn=lambda b: flip(aug(np.stack([s[0] for s in b]))))
        return [b for b in loader]

    a, b = run(0), run(3)
    for x, y in zip(a, b):
        assert_array_equal(x, y)
    assert not all(np.array_equal(x, images[4 * k : 4 * k + 4, :, 1:5, 1:5])
                   for k, x in enumerate(a))


@pytest.mark.parametrize("kwargs,match", [
    ({"batch_size": 0}, "batch_size must be a positive integer, got 0"),
    ({"batch_size": -3}, "batch_size must be a positive integer, got -3"),
    ({"batch_size": 2.5}, "batch_size must be a positive integer"),
    ({"num_workers": -1}, "num_workers must be an int >= 0"),
    ({"prefetch_factor": 0}, "prefetch_factor must be an int >= 1"),
    ({"worker_mode": "fiber"}, "worker_mode must be one of"),
    ({"sampler": [0], "shuffle": True}, "mutually exclusive with shuffle"),
    ({"batch_sampler": [[0]], "batch_size": 2}, "batch_sampler is mutually exclusive"),
    ({"seed": -1}, "seed must be a non-negative integer"),
])  # fmt: skip
def test_bad_arguments(kwargs, match):
    with pytest.raises(DataError, match=match):
        DataLoader(make_ds(4), **kwargs)


def test_not_a_dataset_and_iterable_shuffle():
    with pytest.raises(DataError, match="int is not a dataset"):
        DataLoader(3)
    with pytest.raises(DataError, match="IterableDataset decides its own order"):
        DataLoader(Stream(3), shuffle=True)


def test_timeout():
    class Stuck(Dataset):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            time.sleep(0.3)
            return i

    with pytest.raises(DataError, match="not ready after timeout=0.05s"):
        next(iter(DataLoader(Stuck(), num_workers=1, timeout=0.05)))
    assert_no_worker_threads()
