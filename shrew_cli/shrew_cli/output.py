"""What the ``shrew`` command prints: rich tables and progress bars for people, JSON for scripts.

Every command builds its result as plain data and hands it to an :class:`Output`, which
renders it as a table (stdout), a progress bar (stderr, redrawn in place on a terminal,
one line per update otherwise) or -- with ``--json`` -- one JSON document on stdout and
nothing else there.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table


class Output:
    """Tables, messages and progress for one command run."""

    def __init__(self, as_json: bool = False, stdout=None, stderr=None):
        self.as_json = as_json
        self._stdout = stdout or sys.stdout
        self._stderr = stderr or sys.stderr
        self.out = Console(file=self._stdout, soft_wrap=True, highlight=False, width=_width())
        self.err = Console(file=self._stderr, soft_wrap=True, highlight=False, width=_width())
        self.document: dict[str, Any] = {}

    # -------------------------------------------------------------- people
    def table(self, headers: Sequence[str], rows: Sequence[Sequence[object]], title=None) -> None:
        """An aligned table on stdout (numbers right-aligned); skipped under ``--json``."""
        if self.as_json:
            return
        t = Table(title=title, show_edge=False, header_style="bold", box=None, pad_edge=False)
        for i, h in enumerate(headers):
            numeric = bool(rows) and all(_is_number(r[i]) for r in rows)
            t.add_column(str(h), justify="right" if numeric else "left")
        for row in rows:
            t.add_row(*(_fmt(c) for c in row))
        self.out.print(t)

    def line(self, text: str = "") -> None:
        """A line of text on stdout; skipped under ``--json``."""
        if not self.as_json:
            self.out.print(text, markup=False)

    def note(self, text: str) -> None:
        """A side message on stderr (always shown; never part of the JSON document)."""
        self.err.print(text, markup=False)

    def progress(self, total: int, label: str) -> Progress:
        return Progress(self.err, total, label)

    # -------------------------------------------------------------- scripts
    def set(self, **fields) -> None:
        """Add fields to the JSON document printed at the end under ``--json``."""
        self.document.update(fields)

    def finish(self) -> None:
        if self.as_json:
            self._stdout.write(json.dumps(_jsonable(self.document), indent=2) + "\n")
            self._stdout.flush()


class Progress:
    """``epoch 3/20 ━━━━━━━╸━━━━ loss 0.1234``: a rich progress bar on stderr."""

    def __init__(self, console: Console, total: int, label: str):
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as RichProgress

        self.console, self.total, self.label = console, total, label
        self.live = console.is_terminal
        if self.live:
            self._bar = RichProgress(
                TextColumn(label),
                MofNCompleteColumn(),
                BarColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=console,
                transient=False,
            )
            self._task = self._bar.add_task("", total=total)
            self._bar.start()

    def update(self, done: int, text: str = "") -> None:
        if self.live:
            self._bar.update(self._task, completed=done, description=text)
            if done >= self.total:
                self.close()
        else:
            self.console.print(f"{self.label} {done}/{self.total} {text}".rstrip(), markup=False)

    def close(self) -> None:
        if self.live:
            self._bar.stop()
            self.live = False


def _width() -> int | None:
    return None if sys.stdout.isatty() else 200


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _fmt(v) -> str:
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return str(v)
        return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.3e}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        return value.item()  # NumPy scalars
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return str(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
