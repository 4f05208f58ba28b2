"""The per-batch random generator that random transforms draw from.

While a DataLoader builds batch ``b`` of epoch ``e`` it installs (thread-locally) a generator
seeded from ``(loader seed, e, b)``, so random augmentation is reproducible whatever thread
or process builds the batch. Outside a loader, transforms fall back to their own generator.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

_local = threading.local()


def current_generator() -> np.random.Generator | None:
    """The generator of the batch being built on this thread, or None outside a loader."""
    return getattr(_local, "rng", None)


@contextmanager
def batch_generator(rng: np.random.Generator) -> Iterator[np.random.Generator]:
    """Install ``rng`` as this thread's batch generator for the duration of the block."""
    previous = getattr(_local, "rng", None)
    _local.rng = rng
    try:
        yield rng
    finally:
        _local.rng = previous
