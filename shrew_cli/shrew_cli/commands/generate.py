"""``shrew generate``: sample text from a trained autoregressive program (@inference)."""

from __future__ import annotations

import numpy as np

from ..common import UsageError, add_runtime_options, context_length, executor
from ..data import decode, encode


def cmd_generate(args, out) -> int:
    ex = executor(args)
    if args.tokens is not None:
        try:
            prompt = [int(t) for t in args.tokens.split(",") if t.strip()]
        except ValueError:
            raise UsageError(
                f"--tokens expects comma-separated integers, got {args.tokens!r}"
            ) from None
    else:
        prompt = encode(args.prompt).tolist()
    overrides = {
        k: v
        for k, v in {
            "max_tokens": args.max_tokens,
            "temperature": args.temperature,
            "top_k": args.top_k,
            "top_p": args.top_p,
            "seed": args.seed,
            "max_context": context_length(ex.module, ex.config.dims),
        }.items()
        if v is not None
    }
    generated = ex.generate(np.asarray(prompt, dtype=np.int64), **overrides)
    tokens = generated.numpy().reshape(-1)[len(prompt) :].tolist()
    if args.tokens is not None:
        out.line(" ".join(map(str, tokens)))
        out.set(prompt=prompt, tokens=list(tokens))
    else:
        text = args.prompt + decode(tokens)
        out.line(text)
        out.set(prompt=args.prompt, text=text, tokens=list(tokens))
    return 0


def register(sub) -> None:
    c = sub.add_parser("generate", help="sample from a trained model (@inference generation)")
    c.add_argument("file", help="the .sw program")
    c.add_argument("--params", metavar="CKPT", help="trained parameters or training checkpoint")
    c.add_argument("--prompt", default="The ", help="text prompt (character models)")
    c.add_argument("--tokens", default=None, help="prompt as comma-separated token ids instead")
    c.add_argument("--max-tokens", type=int, default=None)
    c.add_argument("--temperature", type=float, default=None)
    c.add_argument("--top-k", type=int, default=None)
    c.add_argument("--top-p", type=float, default=None)
    add_runtime_options(c)
    c.set_defaults(func=cmd_generate)
