"""shrew.profiler: events of every backend call (names, counts, shapes, threads, nesting),
key averages, the Chrome trace against the Trace Event Format, memory fed by real
allocations and frees, the hook removed outside a profile, and the seed's timers."""

from __future__ import annotations

import gc
import json
import os
import threading

import numpy as np
import pytest

import shrew_core as sc
from shrew.profiler import (
    MemoryTracker,
    Profiler,
    ScopedTimer,
    Stopwatch,
    format_bytes,
    profile,
    record_function,
)
from shrew_core import hooks
from shrew_core.registry import get_backend


def _names(prof) -> list[str]:
    return [e.name for e in prof.events()]


def test_events_name_the_ops():
    a, b = sc.randn(8, 16), sc.randn(16, 4)
    with profile() as prof:
        c = (a @ b).relu()
        d = (c + 1.0).sum()
        e = c.exp().softmax(-1)
    assert _names(prof) == ["matmul", "relu", "full", "add", "sum", "exp", "softmax"]
    ev = prof.events()
    assert [e.method for e in ev] == ["matmul", "unary", "full", "binary", "reduce", "unary",
                                      "softmax"]  # fmt: skip
    assert all(x.category == "backend" and x.shapes == () and x.bytes_allocated == 0 for x in ev)
    starts = [x.start_us for x in ev]
    assert starts == sorted(starts) and starts[0] >= 0
    assert all(x.duration_us >= 0 for x in ev)
    assert d.shape == () and e.shape == (8, 4)


def test_fused_default_calls_nest_inside_their_op():
    """The reference backend composes softmax from primitives: they are events too, inside
    the softmax's time range."""
    x = sc.randn(4, 5, device="reference")
    with profile() as prof:
        x.softmax(-1)
    ev = prof.events()
    soft = [e for e in ev if e.name == "softmax"]
    assert len(soft) == 1 and len(ev) > 1
    inner = [e for e in ev if e is not soft[0]]
    assert {"max", "sub", "exp", "sum", "div"} <= {e.name for e in inner}
    s = soft[0]
    assert all(s.start_us <= e.start_us and e.start_us + e.duration_us
               <= s.start_us + s.duration_us + 1e-3 for e in inner)  # fmt: skip
    rows = prof.key_averages()
    assert rows["softmax"].total_us == pytest.approx(s.duration_us)
    assert 0 <= rows["softmax"].self_us < rows["softmax"].total_us
    # self times partition the outer call: they add up to its duration
    assert sum(r.self_us for r in rows) == pytest.approx(s.duration_us, rel=1e-6, abs=1e-3)
    assert str(rows).splitlines()[0].split()[:3] == ["Name", "Count", "Total"]
    assert rows.table(sort_by="self_cpu_time_total", row_limit=2).count("\n") == 4
    with pytest.raises(ValueError, match="cannot sort by"):
        rows.table(sort_by="flops")


def test_record_shapes():
    a = sc.randn(3, 5)
    with profile(record_shapes=True) as prof:
        a @ a.t()
        sc.zeros(2, 7)
    ev = prof.events()
    assert (ev[0].name, ev[0].shapes) == ("matmul", ((3, 5), (5, 3)))
    assert (ev[1].name, ev[1].shapes) == ("full", ((2, 7),))


def test_empty_block_records_nothing():
    with profile(profile_memory=True) as prof:
        pass
    assert prof.events() == [] and prof.key_averages().rows == []
    assert prof.peak_memory == 0
    assert "Name" in str(prof.key_averages())
    assert [e["ph"] for e in prof.chrome_trace()["traceEvents"]] == ["M"]


def test_key_averages():
    x = sc.randn(16, 16)
    with profile() as prof:
        for _ in range(5):
            x.relu()
        x.exp()
    table = prof.key_averages()
    rows = {r.name: r for r in table.rows}
    assert set(rows) == {"relu", "exp"}
    relu = rows["relu"]
    durs = [e.duration_us for e in prof.events() if e.name == "relu"]
    assert relu.count == 5 and relu.total_us == pytest.approx(sum(durs))
    assert relu.avg_us == pytest.approx(sum(durs) / 5)
    assert relu.min_us == min(durs) and relu.max_us == max(durs)
    assert table.rows == sorted(table.rows, key=lambda r: -r.total_us)
    text = str(table)
    assert "relu" in text and "exp" in text and "Count" in text
    assert table["relu"] is relu


def test_chrome_trace_format(tmp_path):
    x = sc.randn(8, 8)
    with profile(record_shapes=True, profile_memory=True) as prof:
        with record_function("step"):
            (x @ x).tanh()
    path = tmp_path / "trace.json"
    prof.export_chrome_trace(path)
    assert os.listdir(tmp_path) == ["trace.json"]  # written atomically, no temp file left
    trace = json.loads(path.read_text())
    assert isinstance(trace, dict) and isinstance(trace["traceEvents"], list)
    complete = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    meta = [e for e in trace["traceEvents"] if e["ph"] == "M"]
    assert [e["name"] for e in complete] == ["step", "matmul", "tanh"]
    for e in complete:
        assert set(e) >= {"name", "cat", "ph", "ts", "dur", "pid", "tid", "args"}
        assert isinstance(e["ts"], (int, float)) and isinstance(e["dur"], (int, float))
        assert e["dur"] >= 0 and e["pid"] == os.getpid() and isinstance(e["tid"], int)
    assert complete[1]["args"]["shapes"] == [[8, 8], [8, 8]]
    assert complete[1]["args"]["bytes_allocated"] == 8 * 8 * 4
    step, mm = complete[0], complete[1]
    assert step["ts"] <= mm["ts"] and mm["ts"] + mm["dur"] <= step["ts"] + step["dur"] + 1e-3
    assert {m["name"] for m in meta} == {"process_name", "thread_name"}
    assert all(isinstance(m["args"]["name"], str) for m in meta)
    ev = {e.name: e for e in prof.events()}  # ts/dur are the events' µs
    assert mm["ts"] == ev["matmul"].start_us and mm["dur"] == ev["matmul"].duration_us


def test_hook_only_while_profiling():
    """The backend classes carry the timing wrappers only inside a profile, and get their
    exact attributes back afterwards (instances are never touched)."""
    backend = get_backend("cpu")
    cls = type(backend)
    before = dict(vars(cls))
    x = sc.randn(4)
    assert not hooks.is_observed()
    with profile():
        assert getattr(vars(cls)["unary"], "__shrew_observed__", False)
        assert getattr(vars(cls)["masked_softmax"], "__shrew_observed__", False)  # inherited
        x.relu()
    assert dict(vars(cls)) == before
    assert "masked_softmax" not in vars(cls) and "unary" not in backend.__dict__
    assert not hooks.is_observed()


def test_backend_created_while_profiling():
    """A backend class first instantiated inside a profile is observed too."""
    from shrew_core import registry
    from shrew_reference_backend import ReferenceBackend

    class Fresh(ReferenceBackend):
        name = "fresh-test"

    registry.register_backend("fresh-test", Fresh)
    try:
        with profile() as prof:
            sc.ones(3, device="fresh-test").exp()
        assert _names(prof) == ["full", "exp"]
        assert "exp" not in vars(Fresh) and "unary" not in vars(Fresh)
    finally:
        registry._classes.pop("fresh-test", None)
        for dev in [d for d in registry._instances if d.type == "fresh-test"]:
            del registry._instances[dev]


def test_nested_profiles():
    x = sc.randn(4, 4)
    with profile() as outer:
        x.relu()
        with profile() as inner:
            x.exp()
        x.tanh()
    assert _names(inner) == ["exp"]
    assert _names(outer) == ["relu", "exp", "tanh"]
    assert not hooks.is_observed()


def test_threads():
    x = sc.randn(32, 32)
    barrier = threading.Barrier(2, timeout=10)

    def work():
        barrier.wait()
        for _ in range(3):
            x.sigmoid()

    with profile() as prof:
        threads = [threading.Thread(target=work) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=10)
    ids = {t.ident for t in threads}
    by_thread = {}
    for e in prof.events():
        by_thread.setdefault(e.thread_id, []).append(e.name)
    assert set(by_thread) == ids
    assert all(names == ["sigmoid"] * 3 for names in by_thread.values())


# ------------------------------------------------------------------ memory
def test_peak_memory_and_frees():
    with profile(profile_memory=True) as prof:
        big = sc.zeros(128, 1024)  # 512 KiB (below the parallel-kernel threshold)
        small = sc.ones(10)
        after_alloc = prof.current_memory
        y = big * 2.0  # as much again (+ the scalar operand)
        del y
        gc.collect()
        after_free = prof.current_memory
    size = 128 * 1024 * 4
    assert after_alloc == size + 40
    assert after_free == after_alloc  # the product and the scalar operand were freed
    assert prof.peak_memory == 2 * size + 40 + 4  # big, small, the scalar 2.0, the product
    assert [(e.name, e.bytes_allocated) for e in prof.events()] == [
        ("full", size), ("full", 40), ("full", 4), ("mul", size)]  # fmt: skip
    assert prof.total_allocated == 2 * size + 44
    del big, small


def test_views_and_zero_copy_are_not_allocations():
    arr = np.ones((64, 64), np.float32)
    with MemoryTracker() as mem:
        t = sc.from_numpy(arr)  # shares arr's memory
        v = t.t()  # a view: no backend call at all
        assert mem.total_allocated == 0 and mem.alloc_count == 0
        c = v.contiguous()
    assert mem.total_allocated == 64 * 64 * 4 and mem.alloc_count == 1
    assert mem.peak == mem.current == 64 * 64 * 4
    del c


def test_memory_tracker_seed_api():
    mem = MemoryTracker()
    mem.alloc("weights", 1000)
    mem.alloc("acts", 500)
    mem.alloc("weights", 2000)  # replaces the earlier entry
    assert (mem.current, mem.peak, mem.total_allocated, mem.alloc_count) == (2500, 2500, 3500, 3)
    assert mem.dealloc("acts") and not mem.dealloc("nope")
    assert (mem.current, mem.dealloc_count, mem.live_count) == (2000, 1, 1)
    assert mem.summary() == ("Memory: current=1.95 KB, peak=2.44 KB, total_allocated=3.42 KB, "
                             "allocs=3, deallocs=1, live=1")  # fmt: skip
    mem.reset()
    assert (mem.current, mem.peak, mem.alloc_count) == (0, 0, 0)
    assert [format_bytes(n) for n in (512, 1536, 3 << 20, 5 << 30)] == \
        ["512 B", "1.50 KB", "3.00 MB", "5.00 GB"]  # fmt: skip


# ------------------------------------------------------------------ seed timers
def test_profiler_events_and_report():
    prof = Profiler()
    start = prof.start_event("load", "io")
    ev = prof.end_event(start)
    assert (ev.name, ev.category) == ("load", "io") and ev.duration >= 0
    assert prof.measure("square", lambda: 7 * 7) == 49
    assert prof.measure("cube", "math", lambda: 2**3) == 8
    with prof.scope("block"):
        pass
    with ScopedTimer(prof, "block"):
        pass
    report = prof.report()
    rows = {r.name: r for r in report.rows}
    assert set(rows) == {"load", "square", "cube", "block"} and rows["block"].count == 2
    assert rows["block"].avg == pytest.approx(rows["block"].total / 2)
    assert rows["block"].min <= rows["block"].max
    assert report.rows == sorted(report.rows, key=lambda r: -r.total)
    assert prof.total_time() == pytest.approx(sum(e.duration for e in prof.events()))
    assert "Event" in str(report) and "Total:" in str(report)
    prof.clear()
    assert prof.events() == [] and prof.total_time() == 0


def test_stopwatch():
    sw = Stopwatch().start()
    a, b = sw.lap(), sw.lap()
    assert sw.laps == [a, b] and sw.running
    total = sw.stop()
    assert total >= a + b and not sw.running and sw.elapsed == total
    sw.start()
    assert sw.laps == []
    with pytest.raises(RuntimeError, match="not running"):
        Stopwatch().lap()
