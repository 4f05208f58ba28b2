"""The run log of a Trainer: step and epoch records as JSON lines or CSV, and the console.

``@logging`` fields read here:

* ``log_dir`` (folder for the log, plots and report; ``Trainer.fit(output_dir=...)``
  overrides it), ``log_file`` (default ``metrics.jsonl`` / ``metrics.csv`` in ``log_dir``),
  ``format`` (``jsonl`` or ``csv``; default from the file suffix, else jsonl);
* ``backend``: ``jsonl``, ``csv`` or ``console``; ``tensorboard`` is not built: a warning
  says so and the JSONL file is written instead;
* ``console`` (bool, default true) prints one line per epoch; ``console_every: N`` also
  prints every N steps; ``flush_secs`` (default 10) bounds how long a record may sit in
  the OS buffer before an fsync.

Records are appended one ``os.write`` per line on a file opened with ``O_APPEND``, so a
crash loses at most the line being written and a resumed run appends to the same file.
CSV uses a fixed long format (``time,kind,epoch,step,metric,value``) so the header never
changes when later records carry other metrics.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path

_CSV_HEADER = "time,kind,epoch,step,metric,value\n"


class RunLogger:
    def __init__(self, spec: dict, output_dir: str | os.PathLike | None,
                 print_fn: Callable[[str], None] = print):  # fmt: skip
        spec = dict(spec or {})
        self.print_fn = print_fn
        self.console = bool(spec.get("console", bool(spec)))
        self.console_every = int(spec.get("console_every", 0) or 0)
        self.flush_secs = float(spec.get("flush_secs", 10.0))
        backend = str(spec.get("backend", "jsonl")).lower()
        folder = output_dir or spec.get("log_dir")
        self.folder = Path(folder) if folder else None
        name = spec.get("log_file") or spec.get("file")
        fmt = str(spec.get("format", "")).lower()
        if backend == "tensorboard":
            warnings.warn(
                "@logging backend 'tensorboard' is not built; writing JSON lines "
                "(metrics.jsonl) instead",
                stacklevel=3,
            )
            backend = "jsonl"
        if backend not in ("jsonl", "csv", "console"):
            from .errors import ExecutionError

            raise ExecutionError(
                f"@logging backend {backend!r} is not supported; use jsonl, csv or console"
            )
        if not fmt:
            fmt = "csv" if (name and str(name).endswith(".csv")) or backend == "csv" else "jsonl"
        self.format = fmt
        self.path: Path | None = None
        if backend != "console" and (name or self.folder):
            path = Path(name) if name else Path(f"metrics.{fmt}")
            if not path.is_absolute() and self.folder is not None:
                path = self.folder / path
            self.path = path
        self._fd: int | None = None
        self._last_sync = time.monotonic()

    # ------------------------------------------------------------------ records
    def _open(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            if self.format == "csv" and os.fstat(self._fd).st_size == 0:
                os.write(self._fd, _CSV_HEADER.encode())
        return self._fd

    def write(self, kind: str, epoch: int, step: int, values: dict) -> None:
        """Append one record (``kind`` is "step" or "epoch")."""
        if self.path is None:
            return
        now = time.time()
        clean = {k: _number(v) for k, v in values.items()}
        if self.format == "csv":
            text = "".join(
                f"{now:.3f},{kind},{epoch},{step},{_csv(k)},{'' if v is None else repr(v)}\n"
                for k, v in clean.items()
            )
        else:
            text = json.dumps({"time": round(now, 3), "kind": kind, "epoch": epoch,
                               "step": step, **clean}) + "\n"  # fmt: skip
        fd = self._open()
        os.write(fd, text.encode())
        if time.monotonic() - self._last_sync >= self.flush_secs:
            os.fsync(fd)
            self._last_sync = time.monotonic()

    def step(self, epoch: int, step: int, values: dict, to_file: bool) -> None:
        if to_file:
            self.write("step", epoch, step, values)
        if self.console_every and step % self.console_every == 0:
            self.print_fn(f"step {step} (epoch {epoch}): {_fmt(values)}")

    def epoch(self, epoch: int, step: int, values: dict) -> None:
        self.write("epoch", epoch, step, values)
        if self.console:
            self.print_fn(f"epoch {epoch}: {_fmt(values)}")

    def close(self) -> None:
        if self._fd is not None:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None


def _number(v):
    v = float(v)
    return None if math.isnan(v) else v


def _csv(text: str) -> str:
    return f'"{text}"' if ("," in text or '"' in text) else text


def _fmt(values: dict) -> str:
    return "  ".join(
        f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in values.items()
    )


def read_log(path: str | os.PathLike) -> list[dict]:
    """The records of a JSONL or CSV run log (CSV rows regrouped per record)."""
    path = Path(path)
    lines = path.read_text().splitlines()
    if path.suffix != ".csv":
        return [json.loads(line) for line in lines if line.strip()]
    import csv

    records: dict[tuple, dict] = {}
    for row in csv.DictReader(lines):
        key = (row["time"], row["kind"], row["epoch"], row["step"])
        rec = records.setdefault(key, {"kind": row["kind"], "epoch": int(row["epoch"]),
                                       "step": int(row["step"])})  # fmt: skip
        rec[row["metric"]] = float(row["value"]) if row["value"] else None
    return list(records.values())
