"""Train a small CNN on scikit-learn's bundled handwritten digits with every Shrew package:
shrew_data (dataset, split, prefetching loader), shrew_nn (layers, loss), shrew_optim
(AdamW + cosine schedule + gradient clipping) on the Numba CPU backend.

Run: ``python examples/train_digits.py`` (needs scikit-learn for the dataset).
"""

from __future__ import annotations

import time

import shrew_core as sc
import shrew_nn as nn
import shrew_optim as optim
from shrew_data import DataLoader, load_digits, train_test_split


def build_model() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),                 # [B, 16, 8, 8]
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),                # [B, 32, 8, 8]
        nn.MaxPool2d(2),                                           # [B, 32, 4, 4]
        nn.Flatten(), nn.Dropout(0.1),
        nn.Linear(32 * 4 * 4, 64), nn.ReLU(),
        nn.Linear(64, 10),
    )  # fmt: skip


def accuracy(model: nn.Module, loader: DataLoader) -> float:
    model.eval()
    correct = total = 0
    with sc.no_grad():
        for x, y in loader:
            correct += int((model(x).argmax(1) == y).sum().item())
            total += y.shape[0]
    model.train()
    return correct / total


def main(epochs: int = 8) -> float:
    sc.manual_seed(0)
    train, test = train_test_split(load_digits(), test_size=0.25, seed=0)
    train_loader = DataLoader(train, batch_size=64, shuffle=True, seed=0, num_workers=2)
    test_loader = DataLoader(test, batch_size=256)

    model = build_model()
    opt = optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    sched = optim.CosineAnnealingLR(opt, T_max=epochs * len(train_loader))
    print(f"{sum(p.numel for p in model.parameters()):,} parameters, "
          f"{len(train)} train / {len(test)} test images")  # fmt: skip

    for epoch in range(epochs):
        start, total = time.perf_counter(), 0.0
        for x, y in train_loader:
            loss = nn.functional.cross_entropy(model(x), y)
            grads = loss.backward()
            optim.clip_grad_norm(grads, 1.0)
            opt.step(grads)
            sched.step()
            total += loss.item()
        print(f"epoch {epoch + 1}: loss {total / len(train_loader):.4f}  "
              f"test accuracy {accuracy(model, test_loader):.3f}  "
              f"({time.perf_counter() - start:.1f} s)")  # fmt: skip
    return accuracy(model, test_loader)


if __name__ == "__main__":
    main()
