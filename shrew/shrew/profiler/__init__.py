"""shrew.profiler: automatic op-level profiling, memory tracking, model summaries and
step benchmarks.

>>> import shrew_core as sc
>>> from shrew.profiler import profile
>>> a = sc.randn(32, 32)
>>> with profile(record_shapes=True, profile_memory=True) as prof:
...     b = (a @ a).relu()
>>> [(e.name, e.shapes) for e in prof.events()]
[('matmul', ((32, 32), (32, 32))), ('relu', ((32, 32),))]
>>> prof.peak_memory >= 32 * 32 * 4
True

``profile`` hooks the backends only while it runs (``shrew_core.hooks``): outside a profile
block backend dispatch is untouched. ``Profiler`` / ``ScopedTimer`` / ``Stopwatch`` are the
seed's manual timers, ``MemoryTracker`` counts real allocations, ``ModelSummary`` lists
layers with output shapes, ``benchmark_forward(_backward)`` times steps excluding input
creation.
"""

from .bench import BenchmarkResult, benchmark_forward, benchmark_forward_backward
from .memory import MemoryTracker, format_bytes
from .profile import KeyAverage, KeyAverages, ProfilerEvent, profile, record_function
from .summary import LayerSummary, ModelSummary
from .timers import (
    EventStart,
    Profiler,
    ProfileReport,
    ReportRow,
    ScopedTimer,
    Stopwatch,
    TimedEvent,
)

__all__ = [
    "BenchmarkResult",
    "EventStart",
    "KeyAverage",
    "KeyAverages",
    "LayerSummary",
    "MemoryTracker",
    "ModelSummary",
    "ProfileReport",
    "Profiler",
    "ProfilerEvent",
    "ReportRow",
    "ScopedTimer",
    "Stopwatch",
    "TimedEvent",
    "benchmark_forward",
    "benchmark_forward_backward",
    "format_bytes",
    "profile",
    "record_function",
]
