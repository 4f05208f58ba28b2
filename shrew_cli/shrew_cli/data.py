"""Training data for ``shrew train``: scikit-learn's bundled sets by name, .npz/.csv files, or
text for character-level language models (``--data text``: the Python standard library's
pydoc topics, ~465k characters, no download; ``--text FILE`` for any UTF-8 file)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import shrew_data

from .common import UsageError, existing_file

BUNDLED = ("iris", "wine", "digits", "breast_cancer")
TEXT_VOCAB = 128  # byte-level ASCII; other characters become '?'


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
        raise UsageError(
            f"--data {spec!r}: no such file; use one of {', '.join(BUNDLED)}, text, a .npz with "
            "arrays 'x' (or one per input name) and 'y', or a .csv whose last column is the target"
        )
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            target_key = "y" if "y" in z else "target" if "target" in z else None
            if target_key is None:
                raise UsageError(
                    f"{path}: no 'y' (or 'target') array; arrays: {', '.join(z.files)}"
                )
            if all(n in z for n in input_names) and input_names != ["x"]:
                return {n: z[n] for n in input_names}, z[target_key]
            if "x" not in z:
                raise UsageError(f"{path}: no 'x' array; arrays: {', '.join(z.files)}")
            return z["x"], z[target_key]
    if path.suffix != ".csv":
        raise UsageError(f"--data {spec!r}: expected a .npz or .csv file, got {path.suffix!r}")
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
    return (take(x, tr), y[tr]), (take(x, te), y[te])


def take(v, idx):
    return {k: a[idx] for k, a in v.items()} if isinstance(v, dict) else v[idx]


# ------------------------------------------------------------------ text
def text_corpus(path: str | None = None) -> str:
    """The text of ``path``, or the standard library's pydoc topics (~465k characters)."""
    if path:
        return existing_file(path).read_text(encoding="utf-8", errors="replace")
    import pydoc_data.topics

    return "\n".join(pydoc_data.topics.topics.values())


def encode(text: str) -> np.ndarray:
    """Characters -> int64 token ids in [0, 128): ASCII codes, '?' for anything else."""
    data = np.frombuffer(text.encode("ascii", errors="replace"), dtype=np.uint8)
    return data.astype(np.int64)


def decode(tokens) -> str:
    return bytes(int(t) if 0 <= int(t) < TEXT_VOCAB else ord("?") for t in tokens).decode("ascii")


def text_windows(text: str, block: int, test_size: float):
    """Next-character prediction pairs: ``x[i]`` is ``block`` characters, ``y[i]`` the same
    shifted by one. The last ``test_size`` of the text is held out (no overlap with training)."""
    tokens = encode(text)
    cut = int(len(tokens) * (1 - test_size)) if test_size > 0 else len(tokens)

    def windows(t):
        n = (len(t) - 1) // block
        if n < 1:
            raise UsageError(f"the text is too short for {block}-character windows")
        x = t[: n * block].reshape(n, block)
        y = t[1 : n * block + 1].reshape(n, block)
        return x, y

    train = windows(tokens[:cut])
    test = windows(tokens[cut:]) if cut < len(tokens) - block else (train[0][:0], train[1][:0])
    return train, test
