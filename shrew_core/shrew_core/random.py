"""Seeding: one global generator that hands each random op a fresh 64-bit seed.

Backends fill tensors from the seed they are given, so ``manual_seed(s)`` makes
every random op (rand, randn, dropout masks, initialisers) reproducible across
runs and independent of the backend's threading.
"""

from __future__ import annotations

import numpy as np

_DEFAULT_SEED = 67280421310721  # PyTorch's default initial seed
_state = {"seed": _DEFAULT_SEED, "gen": np.random.Generator(np.random.PCG64(_DEFAULT_SEED))}


def manual_seed(seed: int) -> None:
    """Reset the global generator; the same seed gives the same sequence of random ops."""
    _state["seed"] = int(seed)
    _state["gen"] = np.random.Generator(np.random.PCG64(int(seed)))


def initial_seed() -> int:
    return _state["seed"]


def next_seed() -> int:
    """A fresh seed for one random op."""
    return int(_state["gen"].integers(0, 2**63 - 1))


def get_rng_state() -> dict:
    return {"seed": _state["seed"], "bit_generator": _state["gen"].bit_generator.state}


def set_rng_state(state: dict) -> None:
    gen = np.random.Generator(np.random.PCG64())
    gen.bit_generator.state = state["bit_generator"]
    _state["seed"] = state["seed"]
    _state["gen"] = gen
