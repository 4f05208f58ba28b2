"""A small CNN on handwritten digits with every Shrew package: shrew_data (IDX files or the
bundled digits, prefetching loader), shrew_nn (Conv2d, MaxPool2d, Dropout, Linear),
shrew_optim (AdamW + cosine schedule + gradient clipping) on the Numba CPU backend.

Run: ``python examples/mnist_cnn.py`` (scikit-learn's 8x8 digits: ~97% in about ten
seconds), or ``python examples/mnist_cnn.py --data DIR`` with MNIST's IDX files in DIR.
"""

from __future__ import annotations

import time

from images import command_line, load_images
from mnist_mlp import accuracy

import shrew_core as sc
import shrew_nn as nn
import shrew_optim as optim
from shrew_data import DataLoader


def build_model(h: int, w: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),                 # [B, 16, H, W]
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),                # [B, 32, H, W]
        nn.MaxPool2d(2),                                           # [B, 32, H/2, W/2]
        nn.Flatten(), nn.Dropout(0.1),
        nn.Linear(32 * (h // 2) * (w // 2), 64), nn.ReLU(),
        nn.Linear(64, 10),
    )  # fmt: skip


def main(data_dir: str | None = None, epochs: int = 8, limit: int | None = None) -> float:
    sc.manual_seed(0)
    train, test, source = load_images(data_dir, limit)
    _, h, w = train[0][0].shape
    train_loader = DataLoader(train, batch_size=64, shuffle=True, seed=0, num_workers=2)
    test_loader = DataLoader(test, batch_size=256)

    model = build_model(h, w)
    opt = optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    sched = optim.CosineAnnealingLR(opt, T_max=epochs * len(train_loader))
    print(f"{source}: {sum(p.numel for p in model.parameters()):,} parameters, "
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
    command_line(main, __doc__, epochs=8)
