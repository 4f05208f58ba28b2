"""An MLP classifier on handwritten digits: shrew_data (IDX files or the bundled digits,
a prefetching DataLoader), shrew_nn (Linear, ReLU, Dropout, cross-entropy) and shrew_optim
(Adam with a step schedule).

Run: ``python examples/mnist_mlp.py`` (scikit-learn's 8x8 digits, seconds), or
``python examples/mnist_mlp.py --data DIR`` with MNIST's IDX files in DIR (raw or .gz,
e.g. ``train-images-idx3-ubyte.gz``) for the real 28x28 MNIST (~98% after 5 epochs).
"""

from __future__ import annotations

import time

from images import command_line, load_images

import shrew_core as sc
import shrew_nn as nn
import shrew_optim as optim
from shrew_data import DataLoader


def accuracy(model: nn.Module, loader: DataLoader) -> float:
    model.eval()
    correct = total = 0
    with sc.no_grad():
        for x, y in loader:
            correct += int((model(x).argmax(1) == y).sum().item())
            total += y.shape[0]
    model.train()
    return correct / total


def main(data_dir: str | None = None, epochs: int = 10, limit: int | None = None) -> float:
    sc.manual_seed(0)
    train, test, source = load_images(data_dir, limit)
    _, h, w = train[0][0].shape
    model = nn.Sequential(
        nn.Flatten(),
        nn.Linear(h * w, 256), nn.ReLU(), nn.Dropout(0.1),
        nn.Linear(256, 128), nn.ReLU(),
        nn.Linear(128, 10),
    )  # fmt: skip
    train_loader = DataLoader(train, batch_size=64, shuffle=True, seed=0, num_workers=2)
    test_loader = DataLoader(test, batch_size=512)
    opt = optim.Adam(model.parameters(), lr=2e-3)
    sched = optim.StepLR(opt, step_size=max(epochs // 2, 1), gamma=0.3)
    print(f"{source}: {len(train)} train / {len(test)} test images of {h}x{w}")
    for epoch in range(epochs):
        start, total = time.perf_counter(), 0.0
        for x, y in train_loader:
            loss = nn.functional.cross_entropy(model(x), y)
            opt.step(loss.backward())
            total += loss.item()
        sched.step()
        print(f"epoch {epoch + 1}: loss {total / len(train_loader):.4f}  "
              f"test accuracy {accuracy(model, test_loader):.3f}  "
              f"({time.perf_counter() - start:.1f} s)")  # fmt: skip
    return accuracy(model, test_loader)


if __name__ == "__main__":
    command_line(main, __doc__, epochs=10)
