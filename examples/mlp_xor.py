"""XOR with a two-layer MLP, twice: in Python with shrew_nn + shrew_optim, and as the `.sw`
program ``examples/sw/demo_mlp.sw`` trained through ``shrew.exec`` -- the same model both
ways. XOR is the classic problem a linear model cannot solve.

Run: ``python examples/mlp_xor.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import shrew_core as sc
import shrew_nn as nn
import shrew_optim as optim
from shrew.exec import RuntimeConfig, load_trainer

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
Y = np.array([0, 1, 1, 0])


def python_api(steps: int = 300) -> list[int]:
    sc.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 8, dtype="f64"), nn.Tanh(), nn.Linear(8, 2, dtype="f64"))
    opt = optim.Adam(model.parameters(), lr=0.05)
    x, y = sc.tensor(X), sc.tensor(Y)
    for step in range(steps):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.step(loss.backward())
        if step % 100 == 0:
            print(f"  step {step:3d}  loss {loss.item():.4f}")
    with sc.no_grad():
        return model(x).argmax(1).tolist()


TRAINING = """
@training {
    model: Forward;
    loss: bce;
    optimizer: { type: "Adam"; lr: 0.05; }
    epochs: 300;
    batch_size: 4;
}
"""


def sw_program(epochs: int = 300) -> list[int]:
    # demo_mlp.sw (one of the original's examples) ends in a sigmoid; add a @training block
    source = (Path(__file__).parent / "sw" / "demo_mlp.sw").read_text() + TRAINING
    trainer = load_trainer(source, RuntimeConfig(seed=0))
    result = trainer.fit(X, Y[:, None].astype(np.float64), epochs=epochs, shuffle=False)
    print(f"  final loss {result.final_loss:.4f} after {epochs} epochs")
    return (trainer.predict(X).numpy()[:, 0] > 0.5).astype(int).tolist()


def main() -> tuple[list[int], list[int]]:
    print("Python API (shrew_nn + shrew_optim):")
    a = python_api()
    print("  predictions", a, "targets", Y.tolist())
    print(".sw program (examples/sw/demo_mlp.sw through shrew.exec):")
    b = sw_program()
    print("  predictions", b, "targets", Y.tolist())
    return a, b


if __name__ == "__main__":
    main()
