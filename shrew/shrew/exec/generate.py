"""Autoregressive generation for language models such as ``tiny_gpt.sw``.

``Executor.generate(prompt_tokens)`` runs the model on the tokens so far, takes the last
position's logits, picks the next token and repeats. Settings come from the call, else the
program's ``@inference { generation: { ... } }``: ``max_tokens`` (default 16),
``temperature`` (default 1.0; 0 means greedy), ``top_k``, ``top_p``, ``seed``,
``strategy`` (``greedy``, or ``sample`` / ``top_k`` / ``top_p``: sampling with whichever
filters are set), ``eos_token``. The context is cropped to the last ``max_context`` tokens
(default ``@config max_seq_len``) so position tables are never overrun.

Filtering follows Hugging Face's logits warpers, in their order: temperature, then top-k
(keep logits >= the k-th largest), then top-p (keep the smallest set of most likely tokens
whose probability reaches p; the most likely token always stays). Sampling draws from a
NumPy generator seeded with ``seed``, so a seed gives the same tokens on every run and does
not touch Shrew's global RNG.
"""

from __future__ import annotations

import numpy as np

import shrew_core as sc

from .errors import ExecutionError


def filter_logits(logits: np.ndarray, top_k: int | None = None,
                  top_p: float | None = None) -> np.ndarray:  # fmt: skip
    """``logits`` [B, V] with the filtered-out tokens set to -inf."""
    out = np.array(logits, dtype=np.float64)
    if top_k is not None and 0 < top_k < out.shape[-1]:
        kth = np.sort(out, axis=-1)[:, -top_k][:, None]
        out[out < kth] = -np.inf
    if top_p is not None and top_p < 1.0:
        order = np.argsort(-out, axis=-1, kind="stable")
        sorted_logits = np.take_along_axis(out, order, axis=-1)
        probs = _softmax(sorted_logits)
        before = np.cumsum(probs, axis=-1) - probs  # mass of the tokens ranked above
        remove_sorted = before >= top_p
        remove_sorted[:, 0] = False
        remove = np.zeros_like(remove_sorted)
        np.put_along_axis(remove, order, remove_sorted, axis=-1)
        out[remove] = -np.inf
    return out


def _softmax(z: np.ndarray) -> np.ndarray:
    m = np.max(z, axis=-1, keepdims=True)
    e = np.exp(z - np.where(np.isfinite(m), m, 0.0))
    return e / e.sum(axis=-1, keepdims=True)


def next_tokens(logits: np.ndarray, *, temperature: float = 1.0, top_k: int | None = None,
                top_p: float | None = None, rng: np.random.Generator | None = None,
                greedy: bool = False) -> np.ndarray:  # fmt: skip
    """One token per row of ``logits`` [B, V]."""
    if greedy or temperature == 0:
        return np.asarray(logits).argmax(-1).astype(np.int64)
    if temperature < 0:
        raise ValueError(f"generate: temperature must be >= 0, got {temperature}")
    probs = _softmax(filter_logits(np.asarray(logits, np.float64) / temperature, top_k, top_p))
    rng = rng if rng is not None else np.random.default_rng()
    u = 1.0 - rng.random(probs.shape[0])[:, None]  # in (0, 1]: never a zero-probability token
    cdf = np.cumsum(probs, axis=-1)
    idx = (cdf < u * cdf[:, -1:]).sum(axis=-1)
    return np.minimum(idx, probs.shape[-1] - 1).astype(np.int64)


_KEYS = ("max_tokens", "temperature", "top_k", "top_p", "seed", "strategy", "eos_token")


def generate(executor, prompt_tokens, max_tokens=None, *, temperature=None, top_k=None,
             top_p=None, seed=None, strategy=None, eos_token=None, graph=None,
             max_context=None) -> sc.Tensor:  # fmt: skip
    """The prompt followed by the generated tokens, [B, S + max_tokens] i64 (see module)."""
    module = executor.module
    inference = module.inference
    settings = dict(inference.generation) if inference is not None else {}
    given = dict(max_tokens=max_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
                 seed=seed, strategy=strategy, eos_token=eos_token)  # fmt: skip
    for k in _KEYS:
        if given[k] is not None:
            settings[k] = given[k]
    unknown = set(settings) - set(_KEYS)
    if unknown:
        raise ExecutionError(
            f"@inference generation: unknown field(s) {', '.join(sorted(unknown))}; "
            f"supported: {', '.join(_KEYS)}"
        )
    strategy = str(settings.get("strategy", "sample")).lower()
    if strategy not in ("greedy", "sample", "top_k", "top_p", "multinomial"):
        raise ExecutionError(
            f"@inference generation: unknown strategy {strategy!r}; supported: greedy, "
            "sample, top_k, top_p"
        )
    n_new = int(settings.get("max_tokens", 16))
    temp = float(settings.get("temperature", 1.0))
    k = settings.get("top_k")
    p = settings.get("top_p")
    eos = settings.get("eos_token")
    rng = np.random.default_rng(settings.get("seed"))
    graph = graph or (inference.model if inference is not None and inference.model else None)
    graph = graph or (module.training.model if module.training is not None else None)
    name, g = executor._graph(graph or None)
    inputs = executor.input_names(name)
    if len(inputs) != 1:
        raise ExecutionError(f"generate: graph {name!r} must have one token input, has {inputs}")
    if max_context is None and isinstance(module.config.get("max_seq_len"), int):
        max_context = module.config["max_seq_len"]
    tokens = np.asarray(
        prompt_tokens.numpy() if isinstance(prompt_tokens, sc.Tensor) else prompt_tokens,
        dtype=np.int64,
    )
    if tokens.ndim == 1:
        tokens = tokens[None, :]
    if tokens.ndim != 2 or tokens.shape[1] == 0:
        raise ExecutionError(f"generate: prompt must be [batch, seq] with seq >= 1, got "
                             f"{tokens.shape}")  # fmt: skip
    was_training = executor.training
    executor.eval()
    done = np.zeros(tokens.shape[0], bool)
    try:
        with sc.no_grad():
            for _ in range(n_new):
                ctx = tokens if not max_context else tokens[:, -int(max_context) :]
                out = executor.run(name, {inputs[0]: sc.tensor(ctx, device=executor.device)})
                logits = next(iter(out.values())).numpy()
                if logits.ndim == 3:
                    logits = logits[:, -1, :]
                nxt = next_tokens(logits, temperature=temp, top_k=None if k is None else int(k),
                                  top_p=None if p is None else float(p), rng=rng,
                                  greedy=strategy == "greedy")  # fmt: skip
                if eos is not None:
                    nxt = np.where(done, int(eos), nxt)
                    done |= nxt == int(eos)
                tokens = np.concatenate([tokens, nxt[:, None]], axis=1)
                if eos is not None and done.all():
                    break
    finally:
        executor.train(was_training)
    return sc.tensor(tokens, device=executor.device)
