"""Shared helpers for the shrew_data tests: tiny IDX/MNIST directories written on the fly,
a loopback HTTP server for the download path, and a check that no worker thread leaks."""

from __future__ import annotations

import functools
import http.server
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from shrew_data.idx import write_idx

MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def write_mnist(root: Path, n_train: int = 12, n_test: int = 5, gz: bool = False,
                size: int = 28, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Write a small MNIST-format split pair into ``root``; returns the arrays written."""
    rng = np.random.default_rng(seed)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        images = rng.integers(0, 256, (n, size, size), dtype=np.uint8)
        labels = rng.integers(0, 10, n).astype(np.uint8)
        img_name, lbl_name = MNIST_FILES[split]
        suffix = ".gz" if gz else ""
        write_idx(root / (img_name + suffix), images)
        write_idx(root / (lbl_name + suffix), labels)
        out[split] = (images, labels)
    return out


def worker_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("shrew-data")]


def assert_no_worker_threads(timeout: float = 2.0) -> None:
    """Every loader thread is gone (allowing ``timeout`` for finalisers to run)."""
    deadline = time.monotonic() + timeout
    while worker_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert worker_threads() == [], f"leaked threads: {worker_threads()}"


@pytest.fixture
def http_dir(tmp_path):
    """(directory, base URL) of a quiet HTTP server on 127.0.0.1 serving that directory."""
    served = tmp_path / "mirror"
    served.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # keep test output clean
            pass

    handler = functools.partial(Quiet, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join()


# Test modules import these helpers with `from data_testkit import ...` (the name
# `conftest` is ambiguous in a monorepo with a root conftest.py).
sys.modules.setdefault("data_testkit", sys.modules[__name__])
