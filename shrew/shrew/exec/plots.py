"""``@visualizations``: each ``plot name { x: ...; y: ...; title: ...; }`` as a PNG, and the
HTML report (``@logging { report: "report.html"; }``), from a finished TrainResult.

``x`` is ``"epoch"`` (default) or ``"step"``; ``y`` one series name or a list of them:
epoch series are the keys of ``TrainResult.history`` (``loss``, ``lr``, each track,
``val_*``), step series the keys of the step records (``loss``, ``lr``, ``grad_norm`` and
the step-logged tracks). Optional: ``xlabel``, ``ylabel``, ``yscale`` ("linear"/"log"),
``file`` (default ``<plot name>.png``; ``.svg`` also works).

Plots need matplotlib, the optional extra ``shrew[plot]``. It is drawn with the Agg canvas
directly (no pyplot, no change to the process's matplotlib backend) and every file is
written atomically.
"""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path

from .._atomic import atomic_write_bytes
from .errors import ExecutionError


def _matplotlib():
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError("@visualizations plots need matplotlib: pip install 'shrew[plot]'") from e
    return Figure, FigureCanvasAgg


def series(result, x: str) -> dict[str, tuple[list, list]]:
    """name -> (xs, ys) for the epoch or step records of ``result``."""
    out: dict[str, tuple[list, list]] = {}
    if x == "step":
        for rec in result.steps:
            for k, v in rec.items():
                if k in ("step", "batch", "epoch") or v is None:
                    continue
                xs, ys = out.setdefault(k, ([], []))
                xs.append(rec["step"])
                ys.append(v)
    elif x == "epoch":
        for k, values in result.history.items():
            pts = [(i + 1, v) for i, v in enumerate(values) if v is not None and not math.isnan(v)]
            out[k] = ([p[0] for p in pts], [p[1] for p in pts])
    else:
        raise ExecutionError(f"@visualizations: x must be 'epoch' or 'step', got {x!r}")
    return out


def render(name: str, spec: dict, result) -> tuple[bytes, str]:
    """One plot as (file bytes, file name)."""
    Figure, FigureCanvasAgg = _matplotlib()
    x = str(spec.get("x", "epoch"))
    ys = spec.get("y", "loss")
    ys = [ys] if isinstance(ys, str) else list(ys)
    data = series(result, x)
    missing = [y for y in ys if y not in data]
    if missing:
        raise ExecutionError(
            f"@visualizations plot {name!r}: no series {', '.join(map(repr, missing))} over "
            f"{x}s; available: {', '.join(sorted(data)) or 'none'}"
        )
    fig = Figure(figsize=(6.4, 4.0), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for y in ys:
        xs, vs = data[y]
        ax.plot(xs, vs, marker="o" if len(xs) < 30 else None, label=y)
    ax.set_title(str(spec.get("title", name)))
    ax.set_xlabel(str(spec.get("xlabel", x)))
    ax.set_ylabel(str(spec.get("ylabel", ys[0] if len(ys) == 1 else "value")))
    if spec.get("yscale"):
        ax.set_yscale(str(spec["yscale"]))
    if len(ys) > 1:
        ax.legend()
    ax.grid(True, alpha=0.3)
    file = str(spec.get("file", f"{name}.png"))
    buf = io.BytesIO()
    fig.savefig(buf, format=Path(file).suffix.lstrip(".") or "png")
    return buf.getvalue(), file


def write_plots(plots: dict, result, folder: Path) -> dict[str, Path]:
    """Every plot of ``@visualizations`` into ``folder``; returns name -> path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, spec in (plots or {}).items():
        data, file = render(name, dict(spec or {}), result)
        path = folder / file
        atomic_write_bytes(path, data)
        written[name] = path
    return written


def write_report(path: Path, result, plots: dict[str, Path], title: str, config: dict) -> Path:
    """A self-contained HTML report: settings, the per-epoch table and the plots."""
    history = result.history
    cols = list(history)
    rows = "".join(
        "<tr><td>{}</td>{}</tr>".format(
            i + 1, "".join(f"<td>{_cell(history[c][i])}</td>" for c in cols)
        )
        for i in range(len(result.epochs))
    )
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    settings = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in config.items()
    )
    images = "".join(
        f"<h2>{html.escape(name)}</h2><img alt='{html.escape(name)}' "
        f"src='data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}'/>"
        for name, p in plots.items()
        if p.suffix == ".png"
    )
    page = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>body{{font-family:sans-serif}}"
        "td,th{padding:2px 8px;text-align:right}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><table>{settings}</table>"
        f"<h2>Epochs</h2><table><tr><th>epoch</th>{head}</tr>{rows}</table>{images}"
        "</body></html>"
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, page.encode())
    return path


def _cell(v) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.6g}"
