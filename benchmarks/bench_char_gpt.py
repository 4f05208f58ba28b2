"""Char-level GPT training, Shrew vs PyTorch, side by side in one run.

Shrew trains ``examples/sw/char_gpt.sw`` through its Trainer (what ``shrew train`` runs);
PyTorch trains the same architecture (pre-norm ``TransformerEncoderLayer`` blocks with
GELU, causal mask, tied sizes), the same optimizer (AdamW lr 1e-3, betas (0.9, 0.99),
weight decay 0.1, cosine schedule with 100 warm-up steps, clipping at 1.0) on the same
batches in the same order. Reported: tokens/s and training/validation loss after equal
steps. nanoGPT's anchor for this recipe (4 layers, 4 heads, 128 wide, context 64, batch
12) is a validation loss near 1.9 after about 2,000 steps.

Run: ``python benchmarks/bench_char_gpt.py [--steps 2000]``. Set ``OMP_WAIT_POLICY=PASSIVE``
before starting when comparing threads fairly (see shrew_cpu's README).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BLOCK, BATCH, VOCAB, D, HEADS, LAYERS = 64, 12, 128, 128, 4, 4


def batches(steps: int, seed: int = 0):
    from shrew_cli.data import text_corpus, text_windows

    (x, y), (xv, yv) = text_windows(text_corpus(), BLOCK, 0.1)
    order = np.random.default_rng(seed).integers(0, len(x), steps * BATCH)
    return x[order], y[order], xv[:240], yv[:240]


def shrew_run(x, y, xv, yv) -> tuple[float, float, float]:
    from shrew.exec import RuntimeConfig, load_trainer

    trainer = load_trainer(ROOT / "examples/sw/char_gpt.sw", RuntimeConfig(seed=0))
    warm = trainer.fit(x[: 2 * BATCH], y[: 2 * BATCH], epochs=1, batch_size=BATCH, shuffle=False)
    del warm  # compile kernels outside the timed run, then start from fresh weights
    trainer = load_trainer(ROOT / "examples/sw/char_gpt.sw", RuntimeConfig(seed=0))
    start = time.perf_counter()
    result = trainer.fit(x, y, epochs=1, batch_size=BATCH, shuffle=False)
    seconds = time.perf_counter() - start
    val = trainer.evaluate(xv, yv)["loss"]
    return seconds, result.final_loss, val


def torch_run(x, y, xv, yv) -> tuple[float, float, float]:
    import torch
    from torch import nn

    torch.manual_seed(0)

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte = nn.Embedding(VOCAB, D)
            self.wpe = nn.Embedding(BLOCK, D)
            layer = nn.TransformerEncoderLayer(D, HEADS, 4 * D, dropout=0.0, activation="gelu",
                                               batch_first=True, norm_first=True)  # fmt: skip
            self.blocks = nn.TransformerEncoder(layer, LAYERS, enable_nested_tensor=False)
            self.ln = nn.LayerNorm(D)
            self.head = nn.Linear(D, VOCAB, bias=False)
            mask = torch.triu(torch.full((BLOCK, BLOCK), float("-inf")), 1)
            self.register_buffer("mask", mask)

        def forward(self, tokens):
            t = tokens.shape[1]
            h = self.wte(tokens) + self.wpe(torch.arange(t))
            h = self.blocks(h, mask=self.mask[:t, :t], is_causal=True)
            return self.head(self.ln(h))

    model = GPT()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1)
    steps = len(x) // BATCH
    warmup, min_lr = 100, 1e-4

    def lr_at(step):  # linear warm-up, then cosine to min_lr (Shrew's CosineWarmupLR)
        if step < warmup:
            return 1e-3 * (step + 1) / warmup
        p = (step - warmup) / max(1, steps - warmup)
        return min_lr + (1e-3 - min_lr) * 0.5 * (1 + math.cos(math.pi * p))

    def step_fn(i):
        for g in opt.param_groups:
            g["lr"] = lr_at(i)
        xb, yb = (
            torch.from_numpy(x[i * BATCH : (i + 1) * BATCH]),
            torch.from_numpy(y[i * BATCH : (i + 1) * BATCH]),
        )
        loss = nn.functional.cross_entropy(model(xb).reshape(-1, VOCAB), yb.reshape(-1))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    start = time.perf_counter()
    losses = [step_fn(i) for i in range(steps)]
    seconds = time.perf_counter() - start
    with torch.no_grad():
        logits = model(torch.from_numpy(xv))
        val = nn.functional.cross_entropy(
            logits.reshape(-1, VOCAB), torch.from_numpy(yv).reshape(-1)
        )
    per_epoch = float(np.mean(losses))
    return seconds, per_epoch, float(val)


def main(steps: int = 300) -> dict:
    x, y, xv, yv = batches(steps)
    tokens = steps * BATCH * BLOCK
    rows = {"shrew": shrew_run(x, y, xv, yv), "torch": torch_run(x, y, xv, yv)}
    print(f"char-GPT, {steps} steps of {BATCH}x{BLOCK} tokens ({LAYERS} layers, {HEADS} heads, "
          f"{D} wide)")  # fmt: skip
    print(f"{'library':<8} {'tokens/s':>10} {'s/step ms':>10} {'train loss':>11} {'val loss':>9}")
    for name, (seconds, train_loss, val) in rows.items():
        print(f"{name:<8} {tokens / seconds:10.0f} {1e3 * seconds / steps:10.1f} "
              f"{train_loss:11.4f} {val:9.4f}")  # fmt: skip
    ratio = rows["torch"][0] / rows["shrew"][0]
    print(f"shrew speed = {ratio:.2f}x torch (tokens/s ratio; >1 is faster)")
    return rows


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=300)
    main(p.parse_args().steps)
