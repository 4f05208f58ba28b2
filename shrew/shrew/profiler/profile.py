"""``profile()``: automatic op-level profiling of every backend call, like
``torch.profiler.profile``.

Inside ``with profile() as prof:`` each call into a backend becomes one ``ProfilerEvent``
(through ``shrew_core.hooks``, the one dispatch hook: no cost once the block exits),
named after the op (``"matmul"``, ``"relu"``, ``"sum"``), with its start and duration in
microseconds, the calling thread, the input shapes (``record_shapes=True``) and the bytes
it allocated (``profile_memory=True``). Calls that a fused default makes while composing
primitives are events too, nested inside their caller's time range. ``record_function``
adds user-named ranges. Times are host times: an asynchronous backend's kernels are timed
at launch.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from time import perf_counter_ns

from shrew_core.hooks import BackendCall, add_backend_observer, remove_backend_observer
from shrew_core.layout import Layout

from .._atomic import atomic_write_bytes
from .memory import AllocationCounter

_active_profiles: list[profile] = []  # for record_function


@dataclass(frozen=True, slots=True)
class ProfilerEvent:
    """One backend call (or ``record_function`` range).

    Attributes:
        name: the op, e.g. ``"matmul"``, ``"relu"`` (the ``op`` argument of generic backend
            methods), or the ``record_function`` name.
        start_us: start, in µs since the profile began.
        duration_us: wall time of the call in µs (including nested calls).
        thread_id: ``threading.get_ident()`` of the calling thread.
        shapes: the shapes of the call's tensor operands (``record_shapes=True``), else ().
        bytes_allocated: bytes of new buffers it returned (``profile_memory=True``), else 0.
        category: ``"backend"`` or ``"user"``.
        method: the Backend method (``"unary"`` for ``"relu"``).
    """

    name: str
    start_us: float
    duration_us: float
    thread_id: int
    shapes: tuple = ()
    bytes_allocated: int = 0
    category: str = "backend"
    method: str = ""


@dataclass(frozen=True, slots=True)
class KeyAverage:
    """Aggregate of the events sharing one name: ``total_us`` includes the backend calls
    made inside each event (a fused default's primitives), ``self_us`` excludes them."""

    name: str
    count: int
    total_us: float
    avg_us: float
    min_us: float
    max_us: float
    self_us: float
    bytes_allocated: int


class KeyAverages:
    """``profile.key_averages()``: one row per event name, sorted by total time (descending).

    ``rows`` is a list of ``KeyAverage`` (name, count, total_us, avg_us, min_us, max_us,
    self_us, bytes_allocated); ``str()`` / ``table()`` render it.
    """

    def __init__(self, rows: list[KeyAverage]):
        self.rows = rows

    def __iter__(self) -> Iterator[KeyAverage]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, name: str) -> KeyAverage:
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(f"no event named {name!r}; names: {', '.join(r.name for r in self.rows)}")

    def table(self, sort_by: str = "total_us", row_limit: int = -1) -> str:
        """The rows as text, sorted by a KeyAverage field (torch's ``"cpu_time_total"`` /
        ``"self_cpu_time_total"`` / ``"cpu_time"`` / ``"count"`` also work); ``%`` is
        each name's share of the summed self time."""
        key = _TORCH_SORT_KEYS.get(sort_by, sort_by)
        if key not in KeyAverage.__slots__:
            raise ValueError(f"table: cannot sort by {sort_by!r}; use one of "
                             f"{', '.join(KeyAverage.__slots__[1:])}")  # fmt: skip
        rows = sorted(self.rows, key=lambda r: getattr(r, key), reverse=True)
        rows = rows if row_limit < 0 else rows[:row_limit]
        total = sum(r.self_us for r in self.rows) or 1.0
        head = ("Name", "Count", "Total (us)", "Self (us)", "Avg (us)", "Min (us)", "Max (us)",
                "Self %", "Alloc")  # fmt: skip
        body = [
            (r.name, str(r.count), f"{r.total_us:.1f}", f"{r.self_us:.1f}", f"{r.avg_us:.2f}",
             f"{r.min_us:.2f}", f"{r.max_us:.2f}", f"{100 * r.self_us / total:.1f}",
             _fmt_bytes(r.bytes_allocated))
            for r in rows
        ]  # fmt: skip
        widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h)
                  for i, h in enumerate(head)]  # fmt: skip
        line = "  ".join("-" * w for w in widths)

        def fmt(cells):
            return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                             for i, (c, w) in enumerate(zip(cells, widths)))  # fmt: skip

        return "\n".join([fmt(head), line, *(fmt(b) for b in body), line])

    __str__ = table


_TORCH_SORT_KEYS = {"cpu_time_total": "total_us", "self_cpu_time_total": "self_us",
                    "cpu_time": "avg_us"}  # fmt: skip


def _self_times(events: list[ProfilerEvent]) -> list[float]:
    """Each event's duration minus that of the events directly nested in it (same thread,
    inside its time range)."""
    self_us = [e.duration_us for e in events]
    order = sorted(range(len(events)), key=lambda i: (events[i].thread_id, events[i].start_us,
                                                      -events[i].duration_us))  # fmt: skip
    stack: list[int] = []
    for i in order:
        e = events[i]
        while stack and (events[stack[-1]].thread_id != e.thread_id or
                         events[stack[-1]].start_us + events[stack[-1]].duration_us
                         <= e.start_us):  # fmt: skip
            stack.pop()
        if stack:
            self_us[stack[-1]] -= e.duration_us
        stack.append(i)
    return [max(0.0, t) for t in self_us]


def _fmt_bytes(n: int) -> str:
    from .memory import format_bytes

    return format_bytes(n) if n else ""


class profile:  # noqa: N801 - torch's spelling
    """Record every backend call made while the block runs (any thread).

    Args:
        record_shapes: store the shapes of each call's operands.
        profile_memory: count the bytes each call allocates; ``peak_memory`` /
            ``current_memory`` follow real allocations and frees during the block.
        enabled: False makes the block a no-op.

    Examples:
        >>> import shrew_core as sc
        >>> x = sc.randn(64, 64)
        >>> with profile() as prof:
        ...     y = (x @ x).relu()
        >>> [e.name for e in prof.events()]
        ['matmul', 'relu']
    """

    def __init__(self, record_shapes: bool = False, profile_memory: bool = False,
                 enabled: bool = True) -> None:  # fmt: skip
        self.record_shapes = record_shapes
        self.profile_memory = profile_memory
        self.enabled = enabled
        self._raw: list[tuple] = []
        self._built: list[ProfilerEvent] = []
        self._memory = AllocationCounter()
        self._t0 = 0
        self._running = False

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> profile:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        if not self.enabled or self._running:
            return
        self._running = True
        self._t0 = perf_counter_ns()
        _active_profiles.append(self)
        add_backend_observer(self)

    def stop(self) -> None:
        if not self._running:
            return
        remove_backend_observer(self)
        _active_profiles.remove(self)
        self._memory.stop_following_frees()
        self._running = False

    # ------------------------------------------------------------------ recording
    def on_backend_call(self, call: BackendCall) -> None:
        shapes = _shapes(call.args) if self.record_shapes else ()
        nbytes = self._memory.track_call(call) if self.profile_memory else 0
        # raw tuples while recording (cheap); ProfilerEvents are built when asked for
        self._raw.append((call.name, call.start_ns, call.end_ns, call.thread_id, shapes, nbytes,
                          "backend", call.method))  # fmt: skip

    def _record_user(self, name: str, start_ns: int, end_ns: int) -> None:
        self._raw.append((name, start_ns, end_ns, threading.get_ident(), (), 0, "user", ""))

    # ------------------------------------------------------------------ results
    @property
    def _events(self) -> list[ProfilerEvent]:
        if len(self._built) < len(self._raw):
            t0 = self._t0
            self._built.extend(
                ProfilerEvent(name, (start - t0) / 1000.0, (end - start) / 1000.0, tid, shapes,
                              nbytes, cat, method)
                for name, start, end, tid, shapes, nbytes, cat, method
                in self._raw[len(self._built):]
            )  # fmt: skip
        return self._built

    def events(self) -> list[ProfilerEvent]:
        """Every event, in start order."""
        return sorted(self._events, key=lambda e: e.start_us)

    def key_averages(self) -> KeyAverages:
        events = list(self._events)
        groups: dict[str, list[tuple[ProfilerEvent, float]]] = {}
        for e, self_us in zip(events, _self_times(events)):
            groups.setdefault(e.name, []).append((e, self_us))
        rows = []
        for name, evs in groups.items():
            durs = [e.duration_us for e, _ in evs]
            total = sum(durs)
            rows.append(KeyAverage(name, len(evs), total, total / len(evs), min(durs), max(durs),
                                   sum(s for _, s in evs),
                                   sum(e.bytes_allocated for e, _ in evs)))  # fmt: skip
        rows.sort(key=lambda r: r.total_us, reverse=True)
        return KeyAverages(rows)

    @property
    def peak_memory(self) -> int:
        """Most bytes of tracked buffers live at once during the block (profile_memory)."""
        return self._memory.peak

    @property
    def current_memory(self) -> int:
        """Bytes of tracked buffers still live (at the end of the block, once it exits)."""
        return self._memory.current

    @property
    def total_allocated(self) -> int:
        return self._memory.total_allocated

    def chrome_trace(self) -> dict:
        """The events as a Chrome Trace Event Format object (``"X"`` complete events, ts/dur
        in µs, plus process/thread name metadata)."""
        pid = os.getpid()
        names = {t.ident: t.name for t in threading.enumerate()}
        trace: list[dict] = [{"name": "process_name", "ph": "M", "pid": pid, "tid": 0,
                              "args": {"name": "shrew"}}]  # fmt: skip
        for tid in sorted({e.thread_id for e in self._events}):
            trace.append({"name": "thread_name", "ph": "M", "pid": pid, "tid": tid,
                          "args": {"name": names.get(tid, f"thread {tid}")}})  # fmt: skip
        for e in self.events():
            args: dict = {"method": e.method} if e.method else {}
            if e.shapes:
                args["shapes"] = [list(s) for s in e.shapes]
            if self.profile_memory and e.category == "backend":
                args["bytes_allocated"] = e.bytes_allocated
            trace.append({"name": e.name, "cat": e.category, "ph": "X", "ts": e.start_us,
                          "dur": e.duration_us, "pid": pid, "tid": e.thread_id, "args": args})
        return {"traceEvents": trace, "displayTimeUnit": "ms"}

    def export_chrome_trace(self, path: str | os.PathLike) -> None:
        """Write the Chrome trace JSON (opens in Perfetto / chrome://tracing), atomically."""
        atomic_write_bytes(path, json.dumps(self.chrome_trace()).encode())

    def __repr__(self) -> str:
        return f"<profile: {len(self._events)} events>"


def _shapes(args) -> tuple:
    shapes = []
    for a in args:
        if isinstance(a, Layout):
            shapes.append(a.shape)
        elif isinstance(a, (list, tuple)) and a and isinstance(a[0], tuple) and len(a[0]) == 3 \
                and isinstance(a[0][1], Layout):  # fused_elementwise inputs  # fmt: skip
            shapes.extend(x[1].shape for x in a)
    if not shapes:  # creation calls (full, rand_*) carry a shape tuple instead
        shapes = [a for a in args if isinstance(a, tuple) and all(isinstance(d, int) for d in a)]
    return tuple(tuple(s) for s in shapes)


@contextmanager
def record_function(name: str) -> Iterator[None]:
    """A named range in every active profile (like ``torch.profiler.record_function``)."""
    start = perf_counter_ns()
    try:
        yield
    finally:
        end = perf_counter_ns()
        for prof in list(_active_profiles):
            prof._record_user(name, start, end)
