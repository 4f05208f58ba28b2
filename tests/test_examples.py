"""The seven examples stay runnable and keep learning: each runs (briefly) in the suite.

The seed's examples: linear regression, MLP XOR, MNIST MLP, MNIST CNN, char-level GPT,
RNN sequence, bench ops. The char-level GPT is a `.sw` model trained from the CLI; it is
tested in ``shrew_cli/tests`` (training) and here for the corpus it needs no download for.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from shrew_data.idx import write_idx

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture
def load(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))  # examples import their sibling `images`

    def _load(name: str):
        spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return _load


def test_linear_regression_learns_the_coefficients(load, capsys):
    load("linear_regression").main()
    out = capsys.readouterr().out
    assert "learned w = [3.0, -1.99" in out and "b = 0.5" in out


def test_mlp_xor_solves_xor_in_python_and_as_a_sw_program(load):
    python_preds, sw_preds = load("mlp_xor").main()
    assert python_preds == [0, 1, 1, 0] and sw_preds == [0, 1, 1, 0]


def test_mnist_mlp_on_the_bundled_digits(load):
    assert load("mnist_mlp").main(epochs=6) >= 0.9


def _fake_mnist(root: Path, n_train: int, n_test: int) -> None:
    """MNIST-format IDX files whose label is readable from the image (a bright row)."""
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 40, (n, 28, 28)).astype(np.uint8)
        images[np.arange(n), 2 * labels + 4, :] = 255
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(root / f"{prefix}-labels-idx1-ubyte", labels)


def test_mnist_examples_read_idx_files_when_given_a_folder(load, tmp_path, capsys):
    _fake_mnist(tmp_path, 256, 64)
    assert load("mnist_mlp").main(str(tmp_path), epochs=4) >= 0.9
    out = capsys.readouterr().out
    assert f"MNIST from {tmp_path}: 256 train / 64 test images of 28x28" in out
    accuracy = load("mnist_cnn").main(str(tmp_path), epochs=3)
    assert accuracy >= 0.3  # 12 steps on 256 images: well above chance (0.1)


@pytest.mark.slow
def test_mnist_cnn_reaches_high_accuracy_on_the_digits(load):
    assert load("mnist_cnn").main(epochs=4) >= 0.9


def test_rnn_sequence_beats_the_naive_forecast(load):
    mse, naive = load("rnn_sequence").main(steps=120)
    assert mse < 0.25 * naive


def test_bench_ops_prints_every_row(load, capsys):
    rows = load("bench_ops").main(repeat=1)
    assert [r[0] for r in rows] == ["matmul", "matmul", "add", "linear forward", "softmax"]
    assert all(r[2] > 0 and r[3] > 0 for r in rows)
    assert "vs numpy" in capsys.readouterr().out


def test_char_gpt_corpus_needs_no_download():
    from shrew_cli.data import decode, encode, text_corpus, text_windows

    text = text_corpus()
    assert len(text) > 400_000
    (x, y), (xv, yv) = text_windows(text, 64, 0.1)
    assert x.shape[1] == 64 and (x[:, 1:] == y[:, :-1]).all() and x.max() < 128
    assert len(xv) > 0 and decode(encode("Hello, shrew")) == "Hello, shrew"
