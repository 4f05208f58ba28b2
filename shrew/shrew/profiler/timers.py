"""The seed's manual timing tools: ``Profiler`` (named events: start_event / end_event /
measure / report), ``ScopedTimer`` and ``Stopwatch``. Times are seconds
(``time.perf_counter``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class TimedEvent:
    name: str
    category: str
    start: float
    duration: float


@dataclass(frozen=True, slots=True)
class EventStart:
    """What ``Profiler.start_event`` returns; hand it to ``end_event``."""

    name: str
    category: str
    start: float


@dataclass(frozen=True, slots=True)
class ReportRow:
    name: str
    count: int
    total: float
    min: float
    max: float
    avg: float


class ProfileReport:
    """``Profiler.report()``: events aggregated by name, by total time descending."""

    def __init__(self, rows: list[ReportRow], total: float):
        self.rows = rows
        self.total = total

    def __str__(self) -> str:
        head = f"| {'Event':<20} | {'Count':>6} | {'Total':>10} | {'Avg':>10} | " \
               f"{'Min/Max':>21} | {'%':>6} |"  # fmt: skip
        bar = "+" + "-" * (len(head) - 2) + "+"
        lines = [bar, head, bar]
        for r in self.rows:
            pct = 100.0 * r.total / self.total if self.total else 0.0
            lines.append(
                f"| {r.name[:20]:<20} | {r.count:>6} | {_ms(r.total):>10} | {_ms(r.avg):>10} | "
                f"{_ms(r.min) + '/' + _ms(r.max):>21} | {pct:>5.1f}% |"
            )
        lines += [bar, f"Total: {_ms(self.total)}"]
        return "\n".join(lines)


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f}ms"


class Profiler:
    """Named timing events recorded by hand.

    Examples:
        >>> prof = Profiler()
        >>> t = prof.start_event("load", "io")
        >>> ev = prof.end_event(t)
        >>> prof.measure("square", lambda: 3 * 3)
        9
        >>> sorted(r.name for r in prof.report().rows)
        ['load', 'square']
    """

    def __init__(self) -> None:
        self._events: list[TimedEvent] = []
        self._lock = threading.Lock()

    def start_event(self, name: str, cat: str = "default") -> EventStart:
        return EventStart(name, cat, time.perf_counter())

    def end_event(self, start: EventStart | float, name: str | None = None,
                  cat: str | None = None) -> TimedEvent:  # fmt: skip
        """Record the time since ``start`` (a ``start_event`` result or a perf_counter value)."""
        now = time.perf_counter()
        if isinstance(start, EventStart):
            name, cat, t0 = name or start.name, cat or start.category, start.start
        else:
            t0 = float(start)
        event = TimedEvent(name or "event", cat or "default", t0, now - t0)
        with self._lock:
            self._events.append(event)
        return event

    def measure(self, name: str, cat_or_fn: str | Callable[[], Any],
                fn: Callable[[], Any] | None = None) -> Any:  # fmt: skip
        """Time ``fn()`` and return its result: ``measure(name, fn)`` or the seed's
        ``measure(name, cat, fn)``."""
        if fn is None:
            if not callable(cat_or_fn):
                raise TypeError("measure(name, fn) or measure(name, cat, fn): fn is missing")
            cat, fn = "default", cat_or_fn
        else:
            cat = str(cat_or_fn)
        start = self.start_event(name, cat)
        try:
            return fn()
        finally:
            self.end_event(start)

    def scope(self, name: str, cat: str = "default") -> ScopedTimer:
        """``with prof.scope("step"): ...`` records the block."""
        return ScopedTimer(self, name, cat)

    def events(self) -> list[TimedEvent]:
        with self._lock:
            return list(self._events)

    def clear(self) -> None:
        with self._lock:
            self._events.clear()

    def total_time(self) -> float:
        """Sum of every event's duration, in seconds."""
        return sum(e.duration for e in self.events())

    def report(self) -> ProfileReport:
        groups: dict[str, list[float]] = {}
        for e in self.events():
            groups.setdefault(e.name, []).append(e.duration)
        rows = [ReportRow(n, len(d), sum(d), min(d), max(d), sum(d) / len(d))
                for n, d in groups.items()]  # fmt: skip
        rows.sort(key=lambda r: r.total, reverse=True)
        return ProfileReport(rows, self.total_time())


class ScopedTimer:
    """Records one event on ``profiler`` when the ``with`` block (or ``stop()``) ends."""

    def __init__(self, profiler: Profiler, name: str, cat: str = "default") -> None:
        self.profiler, self.name, self.cat = profiler, name, cat
        self._start: EventStart | None = None
        self.event: TimedEvent | None = None

    def __enter__(self) -> ScopedTimer:
        self._start = self.profiler.start_event(self.name, self.cat)
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> TimedEvent | None:
        if self._start is not None:
            self.event = self.profiler.end_event(self._start)
            self._start = None
        return self.event


class Stopwatch:
    """``start()`` (clears the laps), ``lap()`` (seconds since the previous lap),
    ``stop()`` (total seconds, and stops), ``laps``, ``elapsed``."""

    def __init__(self) -> None:
        self.laps: list[float] = []
        self._start: float | None = None
        self._last = 0.0
        self._elapsed = 0.0

    def start(self) -> Stopwatch:
        self.laps = []
        self._start = self._last = time.perf_counter()
        self._elapsed = 0.0
        return self

    @property
    def running(self) -> bool:
        return self._start is not None

    def lap(self) -> float:
        if self._start is None:
            raise RuntimeError("Stopwatch.lap(): the stopwatch is not running (call start())")
        now = time.perf_counter()
        lap, self._last = now - self._last, now
        self.laps.append(lap)
        return lap

    def stop(self) -> float:
        if self._start is not None:
            self._elapsed = time.perf_counter() - self._start
            self._start = None
        return self._elapsed

    @property
    def elapsed(self) -> float:
        """Seconds since ``start()`` (frozen once stopped)."""
        return time.perf_counter() - self._start if self._start is not None else self._elapsed
