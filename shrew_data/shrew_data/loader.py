"""``DataLoader``: batches from a dataset, loaded in the background while the caller computes.

Map-style datasets: the main thread walks the batch sampler; each batch (fetch samples ->
collate -> ``batch_transform`` -> pin to ``device``/``dtype``) is one task for a pool of
``num_workers`` threads (or processes with ``worker_mode="process"``). Up to
``num_workers * prefetch_factor`` batches are in flight; they are returned in sampler order.
Iterable datasets are read by one background thread into a queue of the same depth.

Resuming: ``state_dict()`` is the loader's position (epoch, batches already yielded in it,
seeds, the sampler's epoch); after ``load_state_dict`` the next ``iter()`` continues that
epoch with the next batch (the skipped batches' indices are drawn, their samples are not
loaded; an IterableDataset reads and drops the skipped samples), so a training run restored
from a checkpoint sees the same batches as the uninterrupted one.

Shutdown: leaving a ``for`` loop early, an exception in a worker (re-raised in the caller
with its traceback and a note naming the batch), or ``close()`` cancels pending work and
joins every worker, so no thread is left running.
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from functools import partial
from typing import Any, Generic, TypeVar

import numpy as np

from ._rng import batch_generator
from .collate import array_to_tensor, default_collate, map_tensors, pin_batch
from .dataset import IterableDataset
from .errors import DataError
from .sampler import (
    BatchSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
    check_batch_size,
    epoch_generator,
    resolve_seed,
)  # fmt: skip

T = TypeVar("T")
WORKER_MODES = ("thread", "process")


class DataLoader(Generic[T]):
    """Iterate over ``dataset`` in batches.

    Args:
        dataset: a map-style dataset (``len`` + ``getitem``) or an ``IterableDataset``.
        batch_size: samples per batch (a positive int).
        shuffle: a fresh seeded permutation every epoch.
        seed: base seed of shuffling and of random transforms; ``None`` draws one from
            ``shrew_core``'s global generator (so ``shrew_core.manual_seed`` fixes it).
        drop_last: drop the last batch when it is smaller than ``batch_size``.
        num_workers: 0 loads in the caller's thread; N > 0 loads in N background workers.
        collate_fn: list of samples -> batch; default ``default_collate``.
        prefetch_factor: batches in flight per worker.
        sampler / batch_sampler: custom index order / index batches (exclusive with shuffle).
        worker_mode: ``"thread"`` (default) or ``"process"`` (dataset must be picklable when
            the multiprocessing start method is not fork).
        device / dtype: every tensor of a produced batch is moved to ``device``;
            floating-point tensors are cast to ``dtype`` (labels keep theirs).
        batch_transform: applied to each collated batch in the worker (vectorised transforms).
        timeout: seconds to wait for one batch before raising ``DataError``.
        mp_context: multiprocessing start method for ``worker_mode="process"``.

    >>> import numpy as np
    >>> from shrew_data import DataLoader, TensorDataset
    >>> loader = DataLoader(TensorDataset(np.arange(10.0)), batch_size=4, shuffle=True, seed=0)
    >>> len(loader), [b[0].shape for b in loader]
    (3, [(4,), (4,), (2,)])
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int = 1,
        shuffle: bool = False,
        seed: int | None = None,
        drop_last: bool = False,
        num_workers: int = 0,
        collate_fn: Callable[[list], T] | None = None,
        prefetch_factor: int = 2,
        *,
        sampler: Sampler | Sequence[int] | None = None,
        batch_sampler: Any = None,
        worker_mode: str = "thread",
        device: Any = None,
        dtype: Any = None,
        batch_transform: Callable[[Any], Any] | None = None,
        timeout: float | None = None,
        mp_context: str | None = None,
    ) -> None:
        self.dataset = dataset
        self.is_iterable = isinstance(dataset, IterableDataset) or (
            not hasattr(dataset, "__getitem__") and hasattr(dataset, "__iter__")
        )
        if not self.is_iterable and not (
            hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")
        ):
            raise DataError(
                f"DataLoader: {type(dataset).__name__} is not a dataset; it needs __len__ and "
                "__getitem__ (map-style) or __iter__ (IterableDataset)"
            )
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise DataError(f"DataLoader: num_workers must be an int >= 0, got {num_workers!r}")
        if not isinstance(prefetch_factor, int) or prefetch_factor < 1:
            raise DataError(
                f"DataLoader: prefetch_factor must be an int >= 1, got {prefetch_factor!r}"
            )
        if worker_mode not in WORKER_MODES:
            raise DataError(
                f"DataLoader: worker_mode must be one of {WORKER_MODES}, got {worker_mode!r}"
            )
        if timeout is not None and timeout <= 0:
            raise DataError(f"DataLoader: timeout must be > 0 seconds, got {timeout!r}")
        self.num_workers = num_workers
        self.prefetch_factor = prefetch_factor
        self.worker_mode = worker_mode
        self.mp_context = mp_context
        self.timeout = timeout
        self.device = device
        self.dtype = dtype
        self.batch_transform = batch_transform
        self.seed = resolve_seed(seed)
        self._epoch = 0
        self._position: _Position | None = None  # of the latest iterator
        self._resume: _Position | None = None  # set by load_state_dict for the next iter()
        if collate_fn is None:
            collate_fn = partial(default_collate, device=device) if device else default_collate
        self.collate_fn = collate_fn

        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise DataError(
                    "DataLoader: batch_sampler is mutually exclusive with batch_size, shuffle, "
                    "sampler and drop_last"
                )
            self.batch_size: int | None = None
            self.drop_last = False
        else:
            self.batch_size = check_batch_size(batch_size)
            self.drop_last = bool(drop_last)

        if self.is_iterable:
            if shuffle or sampler is not None or batch_sampler is not None:
                raise DataError(
                    "DataLoader: an IterableDataset decides its own order; shuffle, sampler and "
                    "batch_sampler are not allowed"
                )
            if worker_mode == "process" and num_workers > 0:
                raise DataError(
                    "DataLoader: worker_mode='process' needs a map-style dataset; an "
                    "IterableDataset is read by one background thread"
                )
            self.sampler = None
            self.batch_sampler = None
            return
        if sampler is not None and shuffle:
            raise DataError("DataLoader: sampler is mutually exclusive with shuffle")
        if sampler is None:
            sampler = (
                RandomSampler(dataset, seed=self.seed) if shuffle else SequentialSampler(dataset)
            )
        self.sampler = sampler
        if batch_sampler is None:
            batch_sampler = BatchSampler(sampler, self.batch_size, self.drop_last)
        self.batch_sampler = batch_sampler

    # -- epochs and length -------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """The next ``iter()`` produces epoch ``epoch`` (its shuffle and augmentation)."""
        self._epoch = int(epoch)
        for s in (self.batch_sampler, self.sampler):
            if hasattr(s, "set_epoch"):
                s.set_epoch(epoch)
                break

    def __len__(self) -> int:
        """Number of batches per epoch (for progress bars)."""
        if not self.is_iterable:
            return len(self.batch_sampler)
        if not hasattr(self.dataset, "__len__"):
            raise TypeError(
                f"DataLoader: {type(self.dataset).__name__} has no __len__, so the number of "
                "batches is unknown"
            )
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> LoaderIterator:
        pos, self._resume = self._resume, None
        if pos is None:
            pos = _Position(self._epoch, 0, _sampler_epoch(self))
        elif pos.sampler_epoch is not None:
            _epoch_sampler(self).set_epoch(pos.sampler_epoch)
        self._epoch = pos.epoch + 1
        self._position = pos
        if self.is_iterable:
            return _IterableIterator(self, pos)
        return _MapIterator(self, pos)

    # -- checkpointing -----------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The position to resume from (JSON-serialisable): ``epoch`` in progress (or next),
        ``batches_yielded`` in it, the loader's ``seed`` and the sampler's ``sampler_seed`` /
        ``sampler_epoch`` (None when the sampler has none)."""
        pos = self._resume or self._position
        if pos is None or pos.finished:
            pos = _Position(self._epoch, 0, _sampler_epoch(self))
        sampler = _epoch_sampler(self)
        return {
            "epoch": pos.epoch,
            "batches_yielded": pos.batches,
            "seed": self.seed,
            "sampler_seed": getattr(sampler, "seed", None),
            "sampler_epoch": pos.sampler_epoch,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume from ``state_dict()``: the next ``iter()`` continues its epoch after the
        batches already yielded. Raises ``DataError`` (changing nothing) for a malformed dict
        or one that does not fit this loader's sampler."""
        keys = ("epoch", "batches_yielded", "seed", "sampler_seed", "sampler_epoch")
        if not isinstance(state, dict) or any(k not in state for k in keys):
            raise DataError(f"DataLoader.load_state_dict: expected a dict with keys {keys}, "
                            f"got {state!r}")  # fmt: skip
        epoch, done = state["epoch"], state["batches_yielded"]
        if not all(isinstance(v, int) and v >= 0 for v in (epoch, done)):
            raise DataError(f"DataLoader.load_state_dict: epoch and batches_yielded must be "
                            f"ints >= 0, got {epoch!r} and {done!r}")  # fmt: skip
        sampler = _epoch_sampler(self)
        if (state["sampler_epoch"] is None) != (sampler is None):
            raise DataError("DataLoader.load_state_dict: the state was saved with "
                            f"{'no' if state['sampler_epoch'] is None else 'a'} seeded sampler, "
                            f"this loader has {'none' if sampler is None else 'one'}")  # fmt: skip
        self.seed = resolve_seed(state["seed"])
        if sampler is not None and state["sampler_seed"] is not None:
            sampler.seed = resolve_seed(state["sampler_seed"])
        self._epoch = epoch
        self._resume = _Position(epoch, done, state["sampler_epoch"])

    # -- building one batch (runs in a worker) -----------------------------------------
    def _finish(self, samples: list) -> Any:
        batch = self.collate_fn(samples)
        if self.batch_transform is not None:
            batch = self.batch_transform(batch)
        return batch

    def _load(self, indices: list[int], epoch: int, index: int) -> Any:
        with batch_generator(epoch_generator(self.seed, epoch, index)):
            batch = self._finish([self.dataset[i] for i in indices])
        return pin_batch(batch, self.device, self.dtype)


class _Position:
    """Where one epoch's iteration is: its number, batches handed out, the sampler's epoch."""

    __slots__ = ("epoch", "batches", "sampler_epoch", "finished")

    def __init__(self, epoch: int, batches: int, sampler_epoch: int | None) -> None:
        self.epoch, self.batches, self.sampler_epoch = epoch, batches, sampler_epoch
        self.finished = False


def _epoch_sampler(loader: DataLoader) -> Any:
    """The sampler whose ``epoch``/``set_epoch`` decide the order (None: a fixed order)."""
    for s in (loader.sampler, getattr(loader.batch_sampler, "sampler", None)):
        if hasattr(s, "set_epoch") and isinstance(getattr(s, "epoch", None), int):
            return s
    return None


def _sampler_epoch(loader: DataLoader) -> int | None:
    sampler = _epoch_sampler(loader)
    return None if sampler is None else sampler.epoch


class LoaderIterator:
    """One epoch of a DataLoader; ``close()`` (or a ``with`` block) stops its workers."""

    def __iter__(self) -> LoaderIterator:
        return self

    def __next__(self) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> LoaderIterator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - never raise from a finaliser
            pass


def _annotate(exc: BaseException, where: str, index: int, indices: Sequence[int] | None) -> None:
    if not hasattr(exc, "add_note"):
        return
    shown = ""
    if indices is not None:
        head = list(indices[:8])
        shown = f" (dataset indices {head}{' ...' if len(indices) > 8 else ''})"
    exc.add_note(f"raised in DataLoader {where} while loading batch {index}{shown}")


class _MapIterator(LoaderIterator):
    def __init__(self, loader: DataLoader, pos: _Position) -> None:
        self._loader = loader
        self._epoch = pos.epoch
        self._pos = pos
        self._closed = False
        self._pending: deque[tuple[int, list[int], Future]] = deque()
        self._pool: Executor | None = None
        self._batches = enumerate(iter(loader.batch_sampler))
        for _ in range(pos.batches):  # resuming: skip the batches already yielded
            next(self._batches, None)
        self._len = len(loader.batch_sampler) if hasattr(loader.batch_sampler, "__len__") else None
        if loader.num_workers > 0:
            self._capacity = loader.num_workers * loader.prefetch_factor
            if loader.worker_mode == "process":
                ctx = multiprocessing.get_context(loader.mp_context)
                state = (loader.dataset, loader.collate_fn, loader.batch_transform, loader.seed)
                self._pool = ProcessPoolExecutor(
                    loader.num_workers, ctx, _init_process_worker, (state,)
                )
            else:
                self._pool = ThreadPoolExecutor(
                    loader.num_workers, thread_name_prefix="shrew-data-worker"
                )
            self._fill()

    def __len__(self) -> int:
        if self._len is None:
            raise TypeError("DataLoader: the batch_sampler has no __len__")
        return self._len

    def _fill(self) -> None:
        loader = self._loader
        while len(self._pending) < self._capacity:
            try:
                index, indices = next(self._batches)
            except StopIteration:
                return
            indices = list(indices)
            if loader.worker_mode == "process":
                fut = self._pool.submit(_process_load, indices, self._epoch, index)
            else:
                fut = self._pool.submit(loader._load, indices, self._epoch, index)
            self._pending.append((index, indices, fut))

    def __next__(self) -> Any:
        batch = self._next()
        self._pos.batches += 1
        return batch

    def _next(self) -> Any:
        if self._closed:
            raise StopIteration
        loader = self._loader
        if self._pool is None:
            try:
                index, indices = next(self._batches)
            except StopIteration:
                self.close()
                raise
            try:
                return loader._load(list(indices), self._epoch, index)
            except Exception as exc:
                _annotate(exc, "(main thread)", index, indices)
                raise
        if not self._pending:
            self.close()
            raise StopIteration
        index, indices, fut = self._pending.popleft()
        try:
            batch = fut.result(timeout=loader.timeout)
        except FutureTimeout:
            self.close()
            raise DataError(
                f"DataLoader: batch {index} was not ready after timeout={loader.timeout}s"
            ) from None
        except BaseException as exc:
            self.close()
            _annotate(exc, f"{loader.worker_mode} worker", index, indices)
            raise
        self._fill()
        if loader.worker_mode == "process":
            batch = pin_batch(_unship(batch), loader.device, loader.dtype)
        return batch

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if next(self._batches, None) is None and not self._pending:
            self._pos.finished = True
        for _, _, fut in self._pending:
            fut.cancel()
        self._pending.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


# -- process workers ---------------------------------------------------------------------
_worker_state: tuple | None = None


class _Shipped:
    """A tensor crossing the process boundary as a NumPy array (rebuilt in the parent)."""

    __slots__ = ("array",)

    def __init__(self, array: np.ndarray) -> None:
        self.array = array


def _init_process_worker(state: tuple) -> None:
    global _worker_state
    _worker_state = state


def _process_load(indices: list[int], epoch: int, index: int) -> Any:
    dataset, collate_fn, batch_transform, seed = _worker_state
    with batch_generator(epoch_generator(seed, epoch, index)):
        batch = collate_fn([dataset[i] for i in indices])
        if batch_transform is not None:
            batch = batch_transform(batch)
    return map_tensors(batch, lambda t: _Shipped(np.ascontiguousarray(t.numpy())))


def _unship(batch: Any) -> Any:
    return map_tensors(batch, lambda s: array_to_tensor(s.array), kind=_Shipped)


# -- iterable datasets -------------------------------------------------------------------
_END = object()


class _Failure:
    def __init__(self, exc: BaseException, index: int) -> None:
        self.exc = exc
        self.index = index


class _Stream:
    """Reads batches from an IterableDataset; shared by the consumer and the producer
    thread (which must not reference the iterator, so an abandoned iterator is collected
    and its finaliser stops the thread)."""

    def __init__(self, loader: DataLoader, epoch: int, skip: int) -> None:
        self.loader = loader
        self.epoch = epoch
        self.source = iter(loader.dataset)
        self.index = skip
        for _ in range(skip * loader.batch_size):  # resuming: drop the batches already yielded
            if next(self.source, _END) is _END:
                break

    def next_batch(self) -> Any:
        """The next pinned batch, or _END."""
        loader = self.loader
        with batch_generator(epoch_generator(loader.seed, self.epoch, self.index)):
            samples: list = []
            for sample in self.source:
                samples.append(sample)
                if len(samples) == loader.batch_size:
                    break
            if not samples or (loader.drop_last and len(samples) < loader.batch_size):
                return _END
            batch = loader._finish(samples)
        self.index += 1
        return pin_batch(batch, loader.device, loader.dtype)

    def close_source(self) -> None:
        close = getattr(self.source, "close", None)
        if close is not None:
            close()


def _produce(stream: _Stream, out: queue.Queue, stop: threading.Event) -> None:
    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    try:
        while not stop.is_set():
            item = stream.next_batch()
            if not put(item) or item is _END:
                return
    except BaseException as exc:  # noqa: BLE001 - handed to the consumer
        put(_Failure(exc, stream.index))
    finally:
        stream.close_source()


class _IterableIterator(LoaderIterator):
    def __init__(self, loader: DataLoader, pos: _Position) -> None:
        self._loader = loader
        self._pos = pos
        self._closed = False
        self._stream = _Stream(loader, pos.epoch, pos.batches)
        self._thread: threading.Thread | None = None
        if loader.num_workers > 0:
            self._queue: queue.Queue = queue.Queue(loader.num_workers * loader.prefetch_factor)
            self._stop = threading.Event()
            self._thread = threading.Thread(
                target=_produce,
                args=(self._stream, self._queue, self._stop),
                name="shrew-data-iterable",
                daemon=True,
            )
            self._thread.start()

    def __len__(self) -> int:
        return len(self._loader)

    def __next__(self) -> Any:
        if self._closed:
            raise StopIteration
        if self._thread is None:
            try:
                item = self._stream.next_batch()
            except Exception as exc:
                _annotate(exc, "(main thread)", self._stream.index, None)
                self.close()
                raise
        else:
            try:
                item = self._queue.get(timeout=self._loader.timeout)
            except queue.Empty:
                self.close()
                raise DataError(
                    f"DataLoader: batch {self._stream.index} was not ready after "
                    f"timeout={self._loader.timeout}s"
                ) from None
            if isinstance(item, _Failure):
                self.close()
                _annotate(item.exc, "background thread", item.index, None)
                raise item.exc
        if item is _END:
            self._pos.finished = True
            self.close()
            raise StopIteration
        self._pos.batches += 1
        return item

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._thread is None:
            self._stream.close_source()
            return
        self._stop.set()
        while self._thread.is_alive():
            try:  # unblock a producer waiting on a full queue
                self._queue.get_nowait()
            except queue.Empty:
                self._thread.join(0.01)
        self._thread.join()
