"""Sequence modelling with an LSTM: forecast the next value of noisy sine waves of random
frequency and phase, compared with the naive forecast "the next value equals the last one".

shrew_nn's LSTM has PyTorch's layout (``batch_first``, gates i, f, g, o) and runs fused
cell kernels on the CPU backend. Run: ``python examples/rnn_sequence.py``.
"""

from __future__ import annotations

import numpy as np

import shrew_core as sc
import shrew_nn as nn
import shrew_optim as optim


def make_waves(n: int, length: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``x[i]`` is a wave of ``length`` steps, ``y[i]`` the same wave one step later."""
    t = np.arange(length + 1)
    freq = rng.uniform(0.05, 0.25, (n, 1))
    phase = rng.uniform(0, 2 * np.pi, (n, 1))
    waves = np.sin(2 * np.pi * freq * t + phase) + 0.02 * rng.standard_normal((n, length + 1))
    waves = waves.astype(np.float32)[..., None]  # [n, length + 1, 1]
    return waves[:, :-1], waves[:, 1:]


class Forecaster(nn.Module):
    def __init__(self, hidden: int = 32):
        super().__init__()
        self.lstm = nn.LSTM(1, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: sc.Tensor) -> sc.Tensor:
        out, _ = self.lstm(x)  # [B, T, hidden]
        return self.head(out)  # [B, T, 1]


def main(steps: int = 300) -> tuple[float, float]:
    sc.manual_seed(0)
    rng = np.random.default_rng(0)
    x_train, y_train = make_waves(512, 40, rng)
    x_test, y_test = make_waves(128, 40, rng)
    model = Forecaster()
    opt = optim.Adam(model.parameters(), lr=1e-2)
    sched = optim.CosineAnnealingLR(opt, T_max=steps)
    for step in range(steps):
        idx = rng.integers(0, len(x_train), 32)
        pred = model(sc.tensor(x_train[idx]))
        loss = nn.functional.mse_loss(pred, sc.tensor(y_train[idx]))
        opt.step(loss.backward())
        sched.step()
        if step % 50 == 0:
            print(f"step {step:3d}  train mse {loss.item():.5f}")
    model.eval()
    with sc.no_grad():
        pred = model(sc.tensor(x_test)).numpy()
    warm = 5  # the first steps carry too little history to know the frequency
    mse = float(np.mean((pred[:, warm:] - y_test[:, warm:]) ** 2))
    naive = float(np.mean((x_test[:, warm:] - y_test[:, warm:]) ** 2))
    print(f"test mse {mse:.5f}  vs  naive last-value forecast {naive:.5f}")
    return mse, naive


if __name__ == "__main__":
    main()
