"""``shrew train``: fit the @training model graph on bundled, file or text data."""

from __future__ import annotations

import time

import numpy as np

from ..common import (
    UsageError,
    add_dim_option,
    add_runtime_options,
    context_length,
    load_module,
    runtime_config,
)
from ..data import decode, encode, load_arrays, split, take, text_corpus, text_windows

PRECISIONS = ("fp32", "bf16", "f16")
EVAL_SAMPLES = 2000


def cmd_train(args, out) -> int:
    from shrew.exec import Executor, Trainer

    module = load_module(args, 2)
    config = runtime_config(args)
    precision = "fp32" if args.fp32 else args.precision
    if precision is not None and module.training is not None:
        module.training.precision = precision
    trainer = Trainer(Executor(module, config))
    text = args.data == "text" or args.text is not None
    if text:
        block = _block_size(trainer, args)
        test_size = 0.1 if args.test_size is None else args.test_size
        (xtr, ytr), (xte, yte) = text_windows(text_corpus(args.text), block, test_size)
    else:
        if args.data is None:
            raise UsageError("train needs --data (a bundled set, text, .npz or .csv) or --text")
        x, y = load_arrays(args.data, trainer.executor.input_names(trainer.graph))
        test_size = 0.2 if args.test_size is None else args.test_size
        (xtr, ytr), (xte, yte) = split(x, y, test_size, args.seed or 0)
    if args.samples:
        pick = np.random.default_rng(args.seed or 0).permutation(len(ytr))[: args.samples]
        xtr, ytr = take(xtr, pick), ytr[pick]
    epochs = args.epochs or trainer.epochs
    out.note(
        f"training graph {trainer.graph!r} on {len(ytr)} samples ({len(yte)} held out): "
        f"{trainer.optimizer.__class__.__name__}, loss {trainer.loss_name}, {epochs} epochs"
        + (f", {trainer.precision} mixed precision" if trainer.amp_dtype is not None else "")
    )
    progress = out.progress(epochs, "epoch")
    logs = []

    def report(log):
        logs.append({"epoch": log.epoch, "loss": log.loss, "lr": log.lr, "seconds": log.seconds})
        progress.update(log.epoch + 1, f"loss {log.loss:.4f}  lr {log.lr:.3g}  {log.seconds:.2f}s")

    start = time.perf_counter()
    trainer.fit(
        xtr,
        ytr,
        epochs=epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        on_epoch=report,
        checkpoint_dir=args.checkpoint,
        resume_from=args.resume,
        print_fn=out.note,
    )
    progress.close()
    seconds = time.perf_counter() - start
    # the training split's metrics on at most EVAL_SAMPLES samples (a text corpus has many)
    sub = np.random.default_rng(0).permutation(len(ytr))[:EVAL_SAMPLES]
    metrics = {"train": trainer.evaluate(take(xtr, sub), ytr[sub])}
    if len(yte):
        metrics["test"] = trainer.evaluate(xte, yte)
    out.table(
        ["split", "loss", "accuracy"],
        [[split_, m["loss"], m.get("accuracy", "-")] for split_, m in metrics.items()],
    )
    out.line(f"trained in {seconds:.1f} s")
    out.set(epochs=logs, metrics=metrics, seconds=seconds)
    if text and args.sample_tokens:
        sample = _sample(trainer.executor, trainer.graph, args)
        out.line(f"\nsample:\n{sample}")
        out.set(sample=sample)
    if args.save:
        _save_params(trainer.executor, args.save)
        out.line(f"saved {len(trainer.executor.named_params())} parameters to {args.save}")
    if args.checkpoint:
        out.line(f"checkpoints: {args.checkpoint}/last.shrew and best.shrew (--resume to continue)")
    return 0


def _block_size(trainer, args) -> int:
    block = context_length(trainer.executor.module, runtime_config(args).dims)
    if block:
        return block
    raise UsageError(
        "text training needs a context length: @config { block_size: N; } or --dim SeqLen=N"
    )


def _sample(ex, graph: str, args) -> str:
    """A sample from the trained model with the ``@inference generation`` settings."""
    prompt = encode(args.prompt)
    block = context_length(ex.module, ex.config.dims)
    tokens = ex.generate(
        prompt, args.sample_tokens, seed=args.seed or 0, graph=graph, max_context=block
    )
    return args.prompt + decode(tokens.numpy().reshape(-1)[len(prompt) :])


def _save_params(ex, path: str) -> None:
    if path.endswith(".npz"):
        from shrew._atomic import atomic_write

        with atomic_write(path) as f:
            np.savez(f, **ex.state_dict())
        return
    import shrew.io

    shrew.io.save(ex, path)


def register(sub) -> None:
    c = sub.add_parser("train", help="train the @training model graph on data")
    c.add_argument("file", help="the .sw program")
    add_dim_option(c)
    add_runtime_options(c)
    c.add_argument(
        "--data",
        default=None,
        help="iris, wine, digits, breast_cancer, text (a built-in corpus), or a .npz/.csv file",
    )
    c.add_argument("--text", metavar="FILE", help="train a character model on this UTF-8 file")
    c.add_argument("--epochs", type=int, default=None)
    c.add_argument("--batch-size", type=int, default=None)
    c.add_argument("--samples", type=int, default=None, help="train on at most N samples")
    c.add_argument(
        "--test-size", type=float, default=None, help="held-out fraction (0.2; text: 0.1)"
    )
    c.add_argument("--precision", choices=PRECISIONS, default=None, help="override @training")
    c.add_argument("--fp32", action="store_true", help="same as --precision fp32")
    c.add_argument("--checkpoint", metavar="DIR", help="write last/best checkpoints here")
    c.add_argument("--resume", metavar="CKPT", help="continue from a training checkpoint")
    c.add_argument("--save", metavar="PARAMS", help="write trained parameters (.shrew/.npz/...)")
    c.add_argument("--prompt", default="The ", help="text models: prompt of the sample printed")
    c.add_argument("--sample-tokens", type=int, default=200, help="text models: sample length")
    c.set_defaults(func=cmd_train)
