"""Plain-text output helpers: aligned tables and a one-line progress display."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Columns padded to their widest cell; numbers right-aligned."""
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    numeric = [all(_is_number(row[i]) for row in rows) and rows for i in range(len(headers))]

    def line(row):
        return "  ".join(
            c.rjust(w) if numeric[i] else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule] + [line(r) for r in cells[1:]])


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.3e}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


class Progress:
    """``epoch 3/20 [#####     ] loss 0.1234``, redrawn in place on a terminal."""

    def __init__(self, total: int, label: str = "epoch", stream=None):
        self.total, self.label = total, label
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def update(self, done: int, text: str = "") -> None:
        width = 24
        filled = int(width * done / max(self.total, 1))
        bar = "#" * filled + " " * (width - filled)
        msg = f"{self.label} {done}/{self.total} [{bar}] {text}"
        if self.tty:
            self.stream.write("\r" + msg + ("\n" if done >= self.total else ""))
        else:
            self.stream.write(msg + "\n")
        self.stream.flush()
