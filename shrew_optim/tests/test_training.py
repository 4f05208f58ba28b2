"""A real training run: a 13-16-3 MLP on scikit-learn's wine data with each optimizer.

Stated target: at least 95% accuracy on a held-out stratified 30% split after 100
full-batch steps (every optimizer reaches 100% here; chance is 40%).
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_wine
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import shrew_core as sc
import shrew_optim as so

TARGET_ACCURACY = 0.95
STEPS = 100

OPTIMIZERS = {
    "SGD": lambda p: so.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
    "Adam": lambda p: so.Adam(p, lr=0.02, amsgrad=True),
    "AdamW": lambda p: so.AdamW(p, lr=0.02, weight_decay=0.01),
    "RAdam": lambda p: so.RAdam(p, lr=0.05),
    "RMSprop": lambda p: so.RMSprop(p, lr=0.01, centered=True),
}


@pytest.fixture(scope="module")
def wine():
    x, y = load_wine(return_X_y=True)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.3, stratify=y, random_state=0)
    scaler = StandardScaler().fit(xtr)
    return scaler.transform(xtr), np.eye(3)[ytr], scaler.transform(xte), yte


def _mlp(device):
    rng = np.random.default_rng(0)
    shapes = [(13, 16), (16,), (16, 3), (3,)]
    return [sc.tensor(rng.uniform(-0.3, 0.3, s), dtype="f32", device=device).requires_grad_()
            for s in shapes]  # fmt: skip


def _logits(params, x):
    w1, b1, w2, b2 = params
    return ((x @ w1 + b1).tanh()) @ w2 + b2


@pytest.mark.slow
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_mlp_on_wine_reaches_target(name, device, wine):
    xtr, ytr, xte, yte = wine
    x = sc.tensor(xtr, dtype="f32", device=device)
    onehot = sc.tensor(ytr, dtype="f32", device=device)
    params = _mlp(device)
    opt = OPTIMIZERS[name](params)
    sched = so.CosineAnnealingLR(opt, T_max=STEPS, eta_min=opt.lr * 0.1)
    ema = so.EMA(params, decay=0.9, warmup=True)
    first = None
    for _ in range(STEPS):
        loss = -(_logits(params, x).log_softmax(-1) * onehot).sum(-1).mean()
        first = float(loss) if first is None else first
        grads = loss.backward()
        so.clip_grad_norm(grads, 5.0)
        opt.step(grads)
        ema.update()
        sched.step()
    assert float(loss) < 0.5 * first
    with sc.no_grad():
        pred = _logits(params, sc.tensor(xte, dtype="f32", device=device)).numpy().argmax(1)
        with ema.average_parameters():
            ema_pred = _logits(params, sc.tensor(xte, dtype="f32", device=device))
            ema_pred = ema_pred.numpy().argmax(1)
    print(f"{name}: test accuracy {(pred == yte).mean():.3f} (EMA {(ema_pred == yte).mean():.3f})")
    assert (pred == yte).mean() >= TARGET_ACCURACY, f"{name}: {(pred == yte).mean():.3f}"
    assert (ema_pred == yte).mean() >= TARGET_ACCURACY
