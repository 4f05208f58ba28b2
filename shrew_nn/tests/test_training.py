"""End-to-end training: the layers, losses and autograd learn real tasks."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import shrew_core as sc
import shrew_nn as nn
import shrew_nn.functional as F

pytestmark = pytest.mark.slow


def _digits():
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    return train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)


def _fit_digits(model, device, nnt, epochs: int, lr: float, shape=(-1, 64)):
    xtr, xte, ytr, yte = _digits()
    opt = nnt.Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(0)
    for _ in range(epochs):
        model.train()
        order = rng.permutation(len(xtr))
        for i in range(0, len(order), 64):
            idx = order[i : i + 64]
            xb = sc.tensor(xtr[idx].reshape(shape), device=device)
            loss = F.cross_entropy(model(xb), sc.tensor(ytr[idx], device=device))
            opt.step(loss.backward())
    model.eval()
    with sc.no_grad():
        logits = model(sc.tensor(xte.reshape(shape), device=device))
    return float((logits.argmax(dim=1).numpy() == yte).mean())


def test_mlp_digits(device, nnt):
    sc.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 128, device=device), nn.ReLU(), nn.Dropout(0.1),
                          nn.Linear(128, 10, device=device))
    acc = _fit_digits(model, device, nnt, epochs=12, lr=3e-3)
    assert acc >= 0.95, f"test accuracy {acc:.3f}"


def test_cnn_digits(device, nnt):
    sc.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1, device=device), nn.BatchNorm2d(8, device=device),
        nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding="same", device=device), nn.ReLU(), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(64, 10, device=device),
    )  # fmt: skip
    acc = _fit_digits(model, device, nnt, epochs=8, lr=1e-2, shape=(-1, 1, 8, 8))
    assert acc >= 0.95, f"test accuracy {acc:.3f}"


class CharLSTM(nn.Module):
    def __init__(self, vocab: int, device):
        super().__init__()
        self.emb = nn.Embedding(vocab, 16, device=device)
        self.lstm = nn.LSTM(16, 48, batch_first=True, device=device)
        self.head = nn.Linear(48, vocab, device=device)

    def forward(self, x):
        return self.head(self.lstm(self.emb(x))[0])


def test_char_lstm_learns_repeated_sequence(device, nnt):
    sc.manual_seed(0)
    text = "hello shrew, hello world! " * 8
    chars = sorted(set(text))
    ids = np.array([chars.index(c) for c in text])
    T = 16
    starts = np.arange(0, len(ids) - T - 1, 3)
    xs = np.stack([ids[s : s + T] for s in starts])
    ys = np.stack([ids[s + 1 : s + T + 1] for s in starts])
    model = CharLSTM(len(chars), device)
    opt = nnt.Adam(model.parameters(), lr=2e-2)
    x, y = sc.tensor(xs, device=device), sc.tensor(ys, device=device)
    for _ in range(120):
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, len(chars)), y.reshape(-1))
        opt.step(loss.backward())
    with sc.no_grad():
        pred = model(x).argmax(dim=-1).numpy()
    acc = (pred[:, 4:] == ys[:, 4:]).mean()  # after a few characters of context
    assert acc >= 0.98, f"next-char accuracy {acc:.3f} (loss {loss.item():.3f})"


class TinyTransformer(nn.Module):
    def __init__(self, vocab: int, length: int, device, causal=False):
        super().__init__()
        self.tok = nn.Embedding(vocab, 32, device=device)
        self.pos = nn.Embedding(length, 32, device=device)
        self.blocks = nn.ModuleList([nn.TransformerBlock(32, 4, 64, causal=causal,
                                                         device=device) for _ in range(2)])
        self.norm = nn.LayerNorm(32, device=device)
        self.head = nn.Linear(32, vocab, device=device)
        self.positions = sc.arange(length, device=device)

    def forward(self, x):
        h = self.tok(x) + self.pos(self.positions)
        for b in self.blocks:
            h = b(h)
        return self.head(self.norm(h))


def test_transformer_overfits_reversal(device, nnt):
    sc.manual_seed(0)
    rng = np.random.default_rng(0)
    vocab, L = 8, 6
    xs = rng.integers(0, vocab, size=(24, L))
    ys = xs[:, ::-1].copy()
    model = TinyTransformer(vocab, L, device)
    opt = nnt.Adam(model.parameters(), lr=5e-3)
    x, y = sc.tensor(xs, device=device), sc.tensor(ys, device=device)
    for _ in range(150):
        loss = F.cross_entropy(model(x).reshape(-1, vocab), y.reshape(-1))
        opt.step(loss.backward())
    with sc.no_grad():
        pred = model(x).argmax(dim=-1).numpy()
    acc = (pred == ys).mean()
    assert acc >= 0.98, f"train accuracy {acc:.3f} (loss {loss.item():.3f})"
