"""The runnable examples stay runnable: each is executed (briefly) as part of the suite."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quickstart_learns_the_regression(capsys):
    _load("quickstart").main()
    out = capsys.readouterr().out
    assert "learned w = [3.0, -1.99" in out and "b = 0.5" in out


@pytest.mark.slow
def test_train_digits_reaches_high_accuracy():
    assert _load("train_digits").main(epochs=4) >= 0.9
