"""Linear regression from scratch -- a first tour of shrew_core: tensors, broadcasting,
autograd, and gradient descent written by hand (no nn, no optim).

Run: ``python examples/linear_regression.py``."""

from __future__ import annotations

import shrew_core as sc


def main() -> None:
    sc.manual_seed(0)
    a = sc.tensor([[1.0], [2.0], [3.0]])
    b = sc.tensor([[10.0, 20.0]])
    print("broadcast [3,1] + [1,2] ->", (a + b).tolist())

    # Data: y = 3 x0 - 2 x1 + 0.5 + noise
    x = sc.randn(256, 2)
    y = x @ sc.tensor([[3.0], [-2.0]]) + 0.5 + 0.01 * sc.randn(256, 1)

    w = sc.zeros(2, 1).requires_grad_()
    bias = sc.zeros(1).requires_grad_()
    for step in range(200):
        loss = ((x @ w + bias - y) ** 2).mean()
        grads = loss.backward()
        with sc.no_grad():
            w.copy_(w - 0.1 * grads[w])
            bias.copy_(bias - 0.1 * grads[bias])
        if step % 50 == 0:
            print(f"step {step:3d}  loss {loss.item():.5f}")
    print("learned w =", [round(v, 3) for v in w.to_list()], " b =", round(bias.item(), 3))


if __name__ == "__main__":
    main()
