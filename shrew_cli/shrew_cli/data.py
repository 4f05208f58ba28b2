"""Training data for ``shrew train``: scikit-learn's bundled sets by name, or .npz/.csv files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import shrew_data

BUNDLED = ("iris", "wine", "digits", "breast_cancer")


def load_arrays(spec: str, input_names: list[str]):
    """(inputs, targets): inputs is one array, or a dict by input name for .npz files that
    hold one array per graph input. Bundled tabular sets are standardised."""
    if spec in BUNDLED:
        ds = getattr(shrew_data, f"load_{spec}")(**({"images": False} if spec == "digits" else {}))
        x, y = np.asarray(ds.features, np.float32), np.asarray(ds.targets)
        if spec != "digits":
            x = (x - x.mean(0)) / np.maximum(x.std(0), 1e-8)
        return x, y
    path = Path(spec)
    if not path.exists():
        raise FileNotFoundError(
            f"--data {spec!r}: no such file; use one of {', '.join(BUNDLED)}, a .npz with "
            "arrays 'x' (or one per input name) and 'y', or a .csv whose last column is the target"
        )
    if path.suffix == ".npz":
        with np.load(path) as z:
            target_key = "y" if "y" in z else "target" if "target" in z else None
            if target_key is None:
                raise KeyError(f"{path}: no 'y' (or 'target') array; arrays: {', '.join(z.files)}")
            if all(n in z for n in input_names) and input_names != ["x"]:
                return {n: z[n] for n in input_names}, z[target_key]
            if "x" not in z:
                raise KeyError(f"{path}: no 'x' array; arrays: {', '.join(z.files)}")
            return z["x"], z[target_key]
    table = np.loadtxt(path, delimiter=",", skiprows=1 if _has_header(path) else 0, ndmin=2)
    y = table[:, -1]
    return table[:, :-1].astype(np.float32), y.astype(np.int64) if np.all(y == y.round()) else y


def _has_header(path: Path) -> bool:
    first = path.open().readline()
    try:
        [float(v) for v in first.strip().split(",")]
        return False
    except ValueError:
        return True


def split(x, y, test_size: float, seed: int):
    """A seeded shuffle split of arrays (dict inputs split alike)."""
    n = len(y)
    order = np.random.default_rng(seed).permutation(n)
    cut = n - max(1, int(round(n * test_size))) if test_size > 0 else n
    tr, te = order[:cut], order[cut:]

    def take(v, idx):
        return {k: a[idx] for k, a in v.items()} if isinstance(v, dict) else v[idx]

    return (take(x, tr), y[tr]), (take(x, te), y[te])
