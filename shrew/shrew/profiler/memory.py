"""Memory accounting fed by real backend allocations: ``MemoryTracker`` (a context manager)
and the counter that ``profile(profile_memory=True)`` shares with it.

While active, every storage a backend call returns is traced to the buffer that owns its
memory (a NumPy / CuPy array's ``.base`` chain) and counted once with its ``nbytes``; a
``weakref.finalize`` on that buffer subtracts it again when the last tensor, view or
storage using it is freed. Results that alias an argument's buffer (a zero-copy
``from_numpy``, a view) are not allocations. Memory allocated before the tracker started is
not counted, and frees are only followed while it is active.
"""

from __future__ import annotations

import threading
import weakref

from shrew_core.hooks import BackendCall, add_backend_observer, remove_backend_observer

_NOT_ALLOCATING = frozenset({"to_numpy", "synchronize"})


def format_bytes(n: float) -> str:
    """``512 B``, ``1.50 KB``, ``3.00 MB``, ``1.25 GB`` (1024 steps), like the seed."""
    if abs(n) < 1024:
        return f"{int(n)} B"
    for unit in ("KB", "MB", "GB"):
        n /= 1024.0
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.2f} {unit}"
    raise AssertionError("unreachable")


def _owner(storage):
    """The object that owns ``storage``'s memory (follows ``.base`` of array views)."""
    root = storage
    base = getattr(root, "base", None)
    while base is not None and hasattr(base, "nbytes"):
        root = base
        base = getattr(root, "base", None)
    return root


def _storages(obj):
    if isinstance(obj, (tuple, list)):
        for o in obj:
            yield from _storages(o)
    elif obj is not None and hasattr(obj, "nbytes"):
        yield obj


class AllocationCounter:
    """Current / peak / total bytes of tracked buffers (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: dict[int, weakref.finalize] = {}
        self.reset()

    def reset(self) -> None:
        with self._lock:
            for fin in self._live.values():
                fin.detach()
            self._live.clear()
            self._manual: dict[str, int] = {}
            self.current = self.peak = self.total_allocated = 0
            self.alloc_count = self.dealloc_count = 0

    @property
    def live_count(self) -> int:
        return len(self._live) + len(self._manual)

    def _add(self, nbytes: int) -> None:
        self.current += nbytes
        self.total_allocated += nbytes
        self.alloc_count += 1
        self.peak = max(self.peak, self.current)

    def _freed(self, key: int, nbytes: int) -> None:
        with self._lock:
            if self._live.pop(key, None) is not None:
                self.current -= nbytes
                self.dealloc_count += 1

    def track_call(self, call: BackendCall) -> int:
        """Count the new buffers among ``call``'s results; returns their bytes."""
        if call.method in _NOT_ALLOCATING or call.result is None:
            return 0
        inputs = {id(_owner(a)) for a in _storages(call.args)}
        added = 0
        for storage in _storages(call.result):
            root = _owner(storage)
            key = id(root)
            if key in inputs or key in self._live:
                continue
            nbytes = int(getattr(root, "nbytes", 0))
            try:
                fin = weakref.finalize(root, self._freed, key, nbytes)
            except TypeError:  # not weak-referenceable: count the allocation, not its free
                fin = None
            with self._lock:
                if fin is not None:
                    fin.atexit = False
                    self._live[key] = fin
                self._add(nbytes)
            added += nbytes
        return added

    def alloc(self, name: str, nbytes: int) -> None:
        """The seed's manual API: record ``nbytes`` under ``name`` (replacing an entry)."""
        with self._lock:
            old = self._manual.pop(name, None)
            if old is not None:
                self.current -= old
            self._manual[name] = int(nbytes)
            self._add(int(nbytes))

    def dealloc(self, name: str) -> bool:
        """Free the manual entry ``name``; False when it is unknown."""
        with self._lock:
            nbytes = self._manual.pop(name, None)
            if nbytes is None:
                return False
            self.current -= nbytes
            self.dealloc_count += 1
            return True

    def stop_following_frees(self) -> None:
        """Detach the finalizers (the counters keep their values)."""
        with self._lock:
            for fin in self._live.values():
                fin.detach()
            self._live.clear()


class MemoryTracker:
    """Bytes allocated by backends while the block runs: ``current``, ``peak``,
    ``total_allocated``, ``alloc_count``, ``dealloc_count``, ``live_count``.

    Examples:
        >>> import shrew_core as sc
        >>> with MemoryTracker() as mem:
        ...     x = sc.zeros(1024, 256)           # 1 MiB of f32
        >>> mem.peak >= 1024 * 256 * 4
        True

    ``alloc(name, nbytes)`` / ``dealloc(name)`` add manual entries (the seed's API) to the
    same counters; ``summary()`` prints them.
    """

    def __init__(self) -> None:
        self._counter = AllocationCounter()
        self._active = False

    def __enter__(self) -> MemoryTracker:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        if not self._active:
            self._active = True
            add_backend_observer(self)

    def stop(self) -> None:
        if self._active:
            remove_backend_observer(self)
            self._active = False
            self._counter.stop_following_frees()

    def on_backend_call(self, call: BackendCall) -> None:
        self._counter.track_call(call)

    def alloc(self, name: str, nbytes: int) -> None:
        self._counter.alloc(name, nbytes)

    def dealloc(self, name: str) -> bool:
        return self._counter.dealloc(name)

    def reset(self) -> None:
        self._counter.reset()

    current = property(lambda self: self._counter.current, doc="Bytes live now.")
    peak = property(lambda self: self._counter.peak, doc="Most bytes live at once.")
    total_allocated = property(lambda self: self._counter.total_allocated)
    alloc_count = property(lambda self: self._counter.alloc_count)
    dealloc_count = property(lambda self: self._counter.dealloc_count)
    live_count = property(lambda self: self._counter.live_count)

    def summary(self) -> str:
        return (
            f"Memory: current={format_bytes(self.current)}, peak={format_bytes(self.peak)}, "
            f"total_allocated={format_bytes(self.total_allocated)}, allocs={self.alloc_count}, "
            f"deallocs={self.dealloc_count}, live={self.live_count}"
        )

    __str__ = summary
