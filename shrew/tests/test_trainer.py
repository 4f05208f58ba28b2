"""The Trainer honours every @training, @metrics, @logging, @visualizations and @inference
field: each test's program sets a field, and its assertion fails if the field is ignored.

Numerics are compared with torch (optimizers, clipping, schedulers, accumulation) on a
linear model trained on fixed batches; f32 tolerances rtol 1e-5 / atol 1e-6 unless stated.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import shrew_core as sc
from shrew.exec import RuntimeConfig, load_trainer
from shrew.exec.callbacks import Callback, EarlyStopping, LambdaCallback
from shrew.exec.generate import filter_logits
from shrew.exec.logger import read_log

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "sw"

LINEAR = """
@config { seed: 3; }
@graph model {
    input x: Tensor<[Batch, 4], f32>;
    param w: Tensor<[2, 4], f32> { init: "normal(0, 0.5)"; };
    param b: Tensor<[2], f32> { init: "normal(0, 0.5)"; };
    output y: linear(x, w, b);
}
"""
CLASSIFIER = """
@config { seed: 1; }
@graph net {
    input x: Tensor<[Batch, 4], f32>;
    param w1: Tensor<[8, 4], f32> { init: "xavier_uniform"; };
    param b1: Tensor<[8], f32> { init: "zeros"; };
    param w2: Tensor<[5, 8], f32> { init: "xavier_uniform"; };
    node h { op: relu(linear(x, w1, b1)); };
    output logits: linear(h, w2);
}
"""


def linear_data(n=48, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4)).astype(np.float32)
    y = (x @ rng.standard_normal((4, 2)) + 0.3).astype(np.float32)
    return x, y


def class_data(n=60, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4)).astype(np.float32)
    y = (np.abs(x).argmax(1) + (x.sum(1) > 0)).astype(np.int64)
    return x, y


def trainer_for(training: str, graph: str = LINEAR, extra: str = "", **kw):
    return load_trainer(graph + f"@training {{ {training} }}" + extra, RuntimeConfig(), **kw)


def torch_linear(trainer):
    sd = trainer.executor.state_dict()
    m = torch.nn.Linear(4, 2)
    with torch.no_grad():
        m.weight.copy_(torch.from_numpy(sd["model/w"]))
        m.bias.copy_(torch.from_numpy(sd["model/b"]))
    return m


def torch_fit(model, opt, x, y, epochs, batch, clip=None, sched=None, accum=1):
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    lrs = []
    for _ in range(epochs):
        starts = list(range(0, len(x), batch))
        for i, s in enumerate(starts):
            lrs.append(opt.param_groups[0]["lr"])  # the rate this step uses
            loss = torch.nn.functional.mse_loss(model(xt[s : s + batch]), yt[s : s + batch])
            (loss / accum).backward()
            if (i + 1) % accum == 0 or i == len(starts) - 1:
                if clip is not None:
                    clip(model.parameters())
                opt.step()
                opt.zero_grad()
                if sched is not None:
                    sched.step()
    return lrs


def assert_params_match(trainer, model, **tol):
    sd = trainer.executor.state_dict()
    np.testing.assert_allclose(sd["model/w"], model.weight.detach().numpy(), **tol)
    np.testing.assert_allclose(sd["model/b"], model.bias.detach().numpy(), **tol)


# ------------------------------------------------------------------ @training
@pytest.mark.parametrize(
    "spec, make",
    [
        ('type: SGD; lr: 0.05; momentum: 0.9; nesterov: true; weight_decay: 0.01;',
         lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
        ("type: SGD; lr: 0.05; momentum: 0.5; dampening: 0.3;",
         lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.5, dampening=0.3)),
        ("type: Adam; lr: 0.01; beta1: 0.8; beta2: 0.9; eps: 1e-6; amsgrad: true;",
         lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.9), eps=1e-6, amsgrad=True)),
        ("type: AdamW; lr: 0.01; weight_decay: 0.2; betas: [0.85, 0.95];",
         lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.2, betas=(0.85, 0.95))),
        ("type: RAdam; lr: 0.02; weight_decay: 0.1;",
         lambda p: torch.optim.RAdam(p, lr=0.02, weight_decay=0.1)),
        ("type: RMSprop; lr: 0.01; alpha: 0.9; centered: true; momentum: 0.5;",
         lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9, centered=True, momentum=0.5)),
    ],
)  # fmt: skip
def test_optimizer_type_and_extras_match_torch(spec, make):
    t = trainer_for(f"loss: mse; optimizer: {{ {spec} }} epochs: 3; batch_size: 16;"
                    " shuffle: false;")  # fmt: skip
    m = torch_linear(t)
    x, y = linear_data()
    t.fit(x, y)
    torch_fit(m, make(m.parameters()), x, y, 3, 16)
    assert_params_match(t, m, rtol=2e-5, atol=2e-6)


def test_loss_field_is_the_training_objective():
    x, y = linear_data()
    losses = {}
    for loss in ("mse", "l1_loss"):
        t = trainer_for(f"loss: {loss}; optimizer: {{ type: SGD; lr: 0.0; }} epochs: 1; "
                        "batch_size: 48;")  # fmt: skip
        pred = t.predict(x).numpy()
        losses[loss] = t.fit(x, y).epochs[0].loss
        want = np.mean((pred - y) ** 2) if loss == "mse" else np.mean(np.abs(pred - y))
        np.testing.assert_allclose(losses[loss], want, rtol=1e-5)
    assert losses["mse"] != losses["l1_loss"]


SCHEDULES = [
    ("type: step; step_size: 3; gamma: 0.5;",
     lambda o, n: torch.optim.lr_scheduler.StepLR(o, 3, 0.5)),
    ("type: multistep; milestones: [2, 5]; gamma: 0.1;",
     lambda o, n: torch.optim.lr_scheduler.MultiStepLR(o, [2, 5], 0.1)),
    ("type: exponential; gamma: 0.8;",
     lambda o, n: torch.optim.lr_scheduler.ExponentialLR(o, 0.8)),
    ("type: linear; start_factor: 0.5; end_factor: 0.1; total_iters: 6;",
     lambda o, n: torch.optim.lr_scheduler.LinearLR(o, 0.5, 0.1, 6)),
    ("type: cosine; min_lr: 0.01;",
     lambda o, n: torch.optim.lr_scheduler.CosineAnnealingLR(o, n, 0.01)),
    ("type: cosine; warmup_steps: 3; min_lr: 0.0;",
     lambda o, n: torch.optim.lr_scheduler.LambdaLR(o, lambda e: e / 3 if e < 3 else
                                                    0.5 * (1 + math.cos(math.pi * (e - 3) / 6)))),
    ("type: step; step_size: 2; gamma: 0.5; warmup_steps: 2;",
     lambda o, n: torch.optim.lr_scheduler.LambdaLR(o, lambda e: e / 2 if e < 2 else
                                                    0.5 ** ((e - 2) // 2))),
    ("type: constant;", lambda o, n: None),
]  # fmt: skip


@pytest.mark.parametrize("spec, make", SCHEDULES, ids=[s[0].split(";")[0] + s[0][-8:]
                                                       for s in SCHEDULES])  # fmt: skip
def test_every_lr_schedule_matches_torch_per_step(spec, make):
    t = trainer_for("loss: mse; optimizer: { type: SGD; lr: 0.1; } epochs: 3; batch_size: 16;"
                    f" shuffle: false; lr_schedule: {{ {spec} }}")  # fmt: skip
    m = torch_linear(t)
    x, y = linear_data()
    result = t.fit(x, y)
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    lrs = torch_fit(m, opt, x, y, 3, 16, sched=make(opt, 9))
    np.testing.assert_allclose([s["lr"] for s in result.steps], lrs, rtol=1e-9)
    assert_params_match(t, m, rtol=2e-5, atol=2e-6)


def test_plateau_schedule_and_epoch_interval():
    t = trainer_for("loss: mse; optimizer: { type: SGD; lr: 0.5; } epochs: 4; batch_size: 48;"
                    " lr_schedule: { type: plateau; factor: 0.5; patience: 0; threshold: 10.0; }"
                    " validation_split: 0.25;")  # fmt: skip
    result = t.fit(*linear_data(64))
    # threshold 10 (relative) means no epoch counts as an improvement: halve after each
    assert result.history["lr"] == [0.5, 0.25, 0.125, 0.0625]
    t = trainer_for(
        "loss: mse; optimizer: { type: SGD; lr: 0.5; } epochs: 3; batch_size: 8;"
        " lr_schedule: { type: exponential; gamma: 0.5; interval: epoch; }"
    )
    result = t.fit(*linear_data(32))
    assert result.history["lr"] == [0.5, 0.25, 0.125]  # the lr each epoch ran with
    assert {s["lr"] for s in result.steps[:4]} == {0.5}
    assert {s["lr"] for s in result.steps[4:8]} == {0.25}
    assert [s["lr"] for s in result.steps[:2]] == [0.5, 0.5]


@pytest.mark.parametrize("clip, torch_clip", [
    ("type: norm; max_norm: 0.05;", lambda p: torch.nn.utils.clip_grad_norm_(p, 0.05)),
    ("type: value; value: 0.01;", lambda p: torch.nn.utils.clip_grad_value_(p, 0.01)),
])  # fmt: skip
def test_grad_clip_norm_and_value_match_torch(clip, torch_clip):
    t = trainer_for("loss: mse; optimizer: { type: SGD; lr: 0.5; } epochs: 2; batch_size: 16;"
                    f" shuffle: false; grad_clip: {{ {clip} }}")  # fmt: skip
    m = torch_linear(t)
    x, y = linear_data()
    t.fit(x, y)
    torch_fit(m, torch.optim.SGD(m.parameters(), lr=0.5), x, y, 2, 16, clip=torch_clip)
    assert_params_match(t, m, rtol=2e-5, atol=2e-6)


def test_accumulation_steps_average_micro_batches():
    t = trainer_for("loss: mse; optimizer: { type: SGD; lr: 0.1; momentum: 0.9; } epochs: 2;"
                    " batch_size: 8; shuffle: false; accumulation_steps: 2;")  # fmt: skip
    m = torch_linear(t)
    x, y = linear_data(40)  # 5 batches: 2 full groups and a partial one per epoch
    t.fit(x, y)
    torch_fit(m, torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9), x, y, 2, 8, accum=2)
    assert_params_match(t, m, rtol=2e-5, atol=2e-6)
    assert t.optimizer_steps == 6


def test_epochs_batch_size_shuffle_seed_and_validation_split():
    x, y = linear_data(50)
    base = "loss: mse; optimizer: { type: SGD; lr: 0.05; } epochs: 3; batch_size: 7;"
    r = trainer_for(base + " shuffle: false;").fit(x, y)
    assert len(r.epochs) == 3 and len(r.steps) == 3 * math.ceil(50 / 7)

    def weights(spec):
        t = trainer_for(base + spec)
        t.fit(x, y)
        return t.executor.state_dict()["model/w"]

    same, again, other = weights(" seed: 5;"), weights(" seed: 5;"), weights(" seed: 6;")
    ordered = weights(" shuffle: false;")
    np.testing.assert_array_equal(same, again)
    assert not np.array_equal(same, other) and not np.array_equal(same, ordered)
    r = trainer_for(base + " validation_split: 0.2;").fit(x, y)
    assert len(r.steps) == 3 * math.ceil(40 / 7)
    assert len(r.history["val_loss"]) == 3 and all(v > 0 for v in r.history["val_loss"])


def test_unknown_training_field_and_precision_are_errors_naming_them():
    with pytest.raises(Exception, match="unknown field.*shufle"):
        trainer_for("loss: mse; optimizer: { type: SGD; lr: 0.1; } shufle: false;")
    with pytest.raises(Exception, match="precision 'int3': expected fp32, bf16 or f16"):
        trainer_for('loss: mse; optimizer: { type: SGD; lr: 0.1; } precision: "int3";')


@pytest.mark.parametrize("precision", ["bf16", "f16"])
def test_precision_trains_under_autocast(precision, monkeypatch):
    """precision: bf16/f16 runs the forward under shrew.amp.autocast (the matmuls see low
    precision inputs), f16 with a GradScaler; fp32_fallback keeps f32."""
    import shrew.amp

    spec = "loss: cross_entropy; optimizer: { type: Adam; lr: 0.02; } epochs: 30;"
    x, y = class_data(120)
    seen = []
    real_linear = sc.linear

    def spy(a, w, b=None):
        seen.append(shrew.amp.is_autocast_enabled())
        return real_linear(a, w, b)

    monkeypatch.setattr(sc, "linear", spy)
    mixed = trainer_for(spec + f' precision: "{precision}";', graph=CLASSIFIER)
    assert (mixed.scaler is not None) == (precision == "f16")
    result = mixed.fit(x, y)
    assert seen and all(seen), "the forward pass did not run under autocast"
    seen.clear()
    full = trainer_for(spec + f' precision: "{precision}";', graph=CLASSIFIER, fp32_fallback=True)
    f32 = full.fit(x, y)
    assert seen and not any(seen)
    assert result.final_loss < 0.6 * result.epochs[0].loss  # it learns
    assert abs(result.final_loss - f32.final_loss) < 0.15
    if precision == "f16":
        assert mixed.scaler.get_scale() > 0


# ------------------------------------------------------------------ @metrics
METRICS = """
@metrics Run {
    track accuracy { source: accuracy; }
    track top2 { source: top_k_accuracy; k: 2; }
    track ppl { source: perplexity; }
    track lr_last { source: learning_rate; aggregate: "last"; }
    track gnorm { source: gradients; compute: norm; aggregate: "max"; log_every: 2; }
    track loss_ema { source: loss; aggregate: "ema"; decay: 0.5; }
}
"""


def test_metrics_are_computed_per_epoch_on_train_and_validation():
    t = trainer_for("loss: cross_entropy; optimizer: { type: Adam; lr: 0.01; } epochs: 2;"
                    " batch_size: 16;", CLASSIFIER, METRICS)  # fmt: skip
    x, y = class_data()
    xv, yv = class_data(30, seed=1)
    result = t.fit(x, y, validation=(xv, yv))
    last = result.epochs[-1].metrics
    logits = t.predict(xv).numpy()
    np.testing.assert_allclose(last["val_accuracy"], (logits.argmax(1) == yv).mean())
    rank = (logits > logits[np.arange(30), yv][:, None]).sum(1)
    np.testing.assert_allclose(last["val_top2"], (rank < 2).mean())
    ce = torch.nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(yv))
    np.testing.assert_allclose(last["val_loss"], ce.item(), rtol=1e-5)
    np.testing.assert_allclose(last["val_ppl"], math.exp(ce.item()), rtol=1e-5)
    steps = [s for s in result.steps if s["epoch"] == 1]
    assert last["lr_last"] == steps[-1]["lr"]
    assert last["gnorm"] == max(s["grad_norm"] for s in steps) > 0
    ema = None
    for s in result.steps:
        ema = s["loss"] if ema is None else 0.5 * ema + 0.5 * s["loss"]
    np.testing.assert_allclose(last["loss_ema"], ema, rtol=1e-12)
    assert 0 <= last["accuracy"] <= 1 and last["top2"] >= last["accuracy"]


def test_regression_metrics_and_unknown_sources():
    extra = """@metrics M { track mse { source: mse; } track mae { source: mae; }
               track rmse { source: rmse; } }"""
    t = trainer_for("loss: l1_loss; optimizer: { type: SGD; lr: 0.01; } epochs: 1; batch_size: 48;",
                    extra=extra)  # fmt: skip
    x, y = linear_data()
    xv, yv = linear_data(20, seed=2)
    m = t.fit(x, y, validation=(xv, yv)).epochs[0].metrics
    pred = t.predict(xv).numpy()
    np.testing.assert_allclose(m["val_mse"], np.mean((pred - yv) ** 2), rtol=1e-5)
    np.testing.assert_allclose(m["val_mae"], np.mean(np.abs(pred - yv)), rtol=1e-5)
    np.testing.assert_allclose(m["val_rmse"], math.sqrt(m["val_mse"]), rtol=1e-9)
    np.testing.assert_allclose(m["val_loss"], m["val_mae"], rtol=1e-5)
    with pytest.raises(Exception, match="unknown source 'f2'"):
        trainer_for("loss: mse;", extra="@metrics M { track f2 { } }")


# ------------------------------------------------------------------ @logging
def test_jsonl_log_console_frequency_and_append(tmp_path):
    extra = (f'@logging {{ log_dir: "{tmp_path}"; console_every: 3; }}'
             "@metrics M { track loss { source: loss; log_every: 2; } }")  # fmt: skip
    t = trainer_for("loss: mse; optimizer: { type: SGD; lr: 0.05; } epochs: 2; batch_size: 8;",
                    extra=extra)  # fmt: skip
    printed = []
    result = t.fit(*linear_data(32), print_fn=printed.append)
    assert result.log_file == tmp_path / "metrics.jsonl"
    records = read_log(result.log_file)
    assert [r["step"] for r in records if r["kind"] == "step"] == [2, 4, 6, 8]
    epochs = [r for r in records if r["kind"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [0, 1]
    np.testing.assert_allclose(epochs[1]["loss"], result.epochs[1].loss)
    assert [p.split()[1] for p in printed if p.startswith("step")] == ["3", "6"]
    assert sum(p.startswith("epoch") for p in printed) == 2
    t.fit(*linear_data(32), print_fn=printed.append)  # a second run appends
    lines = result.log_file.read_text().splitlines()
    assert len(lines) == 2 * len(records) and all(json.loads(line) for line in lines)


def test_csv_log_and_tensorboard_backend(tmp_path):
    log = tmp_path / "run.csv"
    t = trainer_for("loss: mse; optimizer: { type: SGD; lr: 0.05; } epochs: 2; batch_size: 16;",
                    extra=f'@logging {{ log_file: "{log}"; console: false; }}')  # fmt: skip
    result = t.fit(*linear_data(32), print_fn=lambda s: pytest.fail(s))
    assert log.read_text().splitlines()[0] == "time,kind,epoch,step,metric,value"
    epochs = [r for r in read_log(log) if r["kind"] == "epoch"]
    np.testing.assert_allclose([r["loss"] for r in epochs], result.history["loss"])
    t = trainer_for(
        "loss: mse; optimizer: { type: SGD; lr: 0.05; } epochs: 1;",
        extra=f'@logging {{ backend: "tensorboard"; log_dir: "{tmp_path / "tb"}"; }}',
    )
    with pytest.warns(UserWarning, match="tensorboard.*not built"):
        t.fit(*linear_data(8), print_fn=lambda s: None)
    assert (tmp_path / "tb" / "metrics.jsonl").exists()


RESUMABLE = (
    "loss: mse; optimizer: { type: AdamW; lr: 0.03; weight_decay: 0.01; } epochs: 5; "
    'batch_size: 8; lr_schedule: { type: "cosine"; warmup_steps: 3; }'
)


def test_checkpoints_every_n_best_and_last(tmp_path):
    import shrew.io

    t = trainer_for(
        RESUMABLE,
        extra=f'@logging {{ log_dir: "{tmp_path}"; checkpoint_every: 2; save_best: true; '
        "save_last: true; }",
    )
    result = t.fit(*linear_data(40))
    folder = tmp_path / "checkpoints"
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["best.shrew", "epoch_2.shrew", "epoch_4.shrew", "last.shrew"]
    last = shrew.io.load_checkpoint(folder / "last.shrew", model=t.executor)
    assert last["epoch"] == 4 and last["step"] == t.global_step
    best = shrew.io.load_checkpoint(folder / "best.shrew", model=t.executor)
    assert best["best"] == pytest.approx(min(e.loss for e in result.epochs))


def test_resume_from_a_checkpoint_is_bit_identical(tmp_path):
    """3 epochs, checkpoint, then 2 more from the checkpoint in a fresh trainer == 5 epochs
    uninterrupted (AdamW state, warm-up cosine schedule, shuffled data, RNG)."""
    x, y = linear_data(40)
    whole = trainer_for(RESUMABLE)
    whole.fit(x, y)
    first = trainer_for(RESUMABLE)  # "killed" after its third epoch's checkpoint
    stop = LambdaCallback(
        on_epoch_end=lambda t, epoch, logs: setattr(t, "stop_training", epoch == 2)
    )
    first.fit(x, y, checkpoint_dir=tmp_path, callbacks=[stop])
    resumed = trainer_for(RESUMABLE)
    resumed.fit(x, y, resume_from=tmp_path / "last.shrew")
    assert resumed.global_step == whole.global_step
    for key, value in whole.executor.state_dict().items():
        np.testing.assert_array_equal(resumed.executor.state_dict()[key], value, err_msg=key)


# ------------------------------------------------------------------ @visualizations
PLOTS = """
@visualizations {
    plot loss_curve { x: "epoch"; y: ["loss", "val_loss"]; title: "Loss"; }
    plot lr_steps { x: "step"; y: "lr"; title: "Learning rate"; file: "lr.png"; }
}
"""


def test_every_plot_is_a_png_and_the_report_embeds_them(tmp_path):
    extra = PLOTS + f'@logging {{ log_dir: "{tmp_path}"; report: "report.html"; console: false; }}'
    t = trainer_for("loss: mse; optimizer: { type: SGD; lr: 0.05; } epochs: 3; batch_size: 16;"
                    " validation_split: 0.25; lr_schedule: { type: exponential; gamma: 0.9; }",
                    extra=extra)  # fmt: skip
    result = t.fit(*linear_data(48))
    assert set(result.plots) == {"loss_curve", "lr_steps"}
    assert result.plots["lr_steps"] == tmp_path / "lr.png"
    for path in result.plots.values():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 1000
    page = result.report.read_text()
    assert page.count("data:image/png;base64,") == 2 and "<td>3</td>" in page
    bad = trainer_for(
        "loss: mse; optimizer: { type: SGD; lr: 0.05; } epochs: 1;",
        extra='@visualizations { plot p { y: "nope"; } }',
    )
    with pytest.raises(Exception, match="no series 'nope'.*available: loss, lr"):
        bad.fit(*linear_data(8), output_dir=tmp_path / "bad")


def test_missing_matplotlib_names_the_extra(monkeypatch, tmp_path):
    import builtins

    real = builtins.__import__

    def no_matplotlib(name, *a, **k):
        if name.startswith("matplotlib"):
            raise ImportError("No module named 'matplotlib'")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    t = trainer_for(
        "loss: mse; optimizer: { type: SGD; lr: 0.05; } epochs: 1;",
        extra='@visualizations { plot p { y: "loss"; } }',
    )
    with pytest.raises(ImportError, match=r"pip install 'shrew\[plot\]'"):
        t.fit(*linear_data(8), output_dir=tmp_path)


# ------------------------------------------------------------------ early stopping, callbacks
def test_early_stopping_from_the_training_block_and_callbacks():
    spec = ("loss: mse; optimizer: { type: SGD; lr: 0.01; } epochs: 10; batch_size: 16;"
            " validation_split: 0.25; early_stopping: { monitor: \"val_loss\", patience: 1,"
            " min_delta: 100.0, restore_best: true };")  # fmt: skip
    t = trainer_for(spec)
    seen = {"steps": 0, "epochs": []}
    cb = LambdaCallback(
        on_step_end=lambda tr, step, logs: seen.__setitem__("steps", step),
        on_epoch_end=lambda tr, e, logs: seen["epochs"].append(logs["val_loss"]),
    )
    start = t.executor.state_dict()
    result = t.fit(*linear_data(64), callbacks=[cb])
    assert len(result.epochs) == 2 and result.stopped_epoch == 1
    assert seen["steps"] == len(result.steps) == 2 * 3 and len(seen["epochs"]) == 2
    best = t.executor.state_dict()  # restored to the end of epoch 0, not the start
    assert not np.array_equal(best["model/w"], start["model/w"])

    class StopAtStep(Callback):
        def on_step_end(self, trainer, step, logs):
            if step == 5:
                trainer.stop_training = True

    result = trainer_for(
        "loss: mse; optimizer: { type: SGD; lr: 0.01; } epochs: 10; batch_size: 8;"
    ).fit(*linear_data(32), callbacks=[StopAtStep()])
    assert len(result.steps) == 5 and result.stopped_epoch == 1
    es = EarlyStopping(monitor="val_accuracy")
    assert es.mode == "max"


# ------------------------------------------------------------------ @inference
def small_gpt(tmp: Path, generation: str) -> Path:
    src = (EXAMPLES / "tiny_gpt.sw").read_text()
    for a, b in [("50257", "23"), ("256 * 4", "64"), ("256", "16"), ("n_layers: 4", "n_layers: 1"),
                 ("max_seq_len: 512", "max_seq_len: 6"), ("[512, 16]", "[6, 16]"),
                 ('precision: "bf16";', "")]:  # fmt: skip
        src = src.replace(a, b)
    start = src.index("generation: {")
    end = src.index("}", start)
    src = src[:start] + f"generation: {{ {generation} " + src[end:]
    (tmp / "layers").mkdir(exist_ok=True)
    (tmp / "layers" / "transformer.sw").write_text(
        (EXAMPLES / "layers" / "transformer.sw").read_text()
    )
    (tmp / "gpt.sw").write_text(src)
    return tmp / "gpt.sw"


def hf_filter(logits, top_k, top_p):
    """Hugging Face's TopK and TopP logits warpers, written with torch (the reference)."""
    scores = torch.from_numpy(np.array(logits, np.float64))
    if top_k:
        kth = torch.topk(scores, top_k)[0][..., -1, None]
        scores = scores.masked_fill(scores < kth, -float("inf"))
    if top_p is not None:
        sorted_logits, sorted_idx = torch.sort(scores, descending=False)
        cum = sorted_logits.softmax(-1).cumsum(-1)
        remove = cum <= (1 - top_p)
        remove[..., -1:] = 0
        scores = scores.masked_fill(remove.scatter(1, sorted_idx, remove), -float("inf"))
    return scores.numpy()


@pytest.mark.parametrize("top_k, top_p", [(3, None), (None, 0.7), (5, 0.5), (None, 0.05)])
def test_top_k_top_p_filtering_matches_the_reference(top_k, top_p):
    logits = np.random.default_rng(0).standard_normal((4, 12)) * 2
    np.testing.assert_array_equal(filter_logits(logits, top_k, top_p),
                                  hf_filter(logits, top_k, top_p))  # fmt: skip


def test_generate_uses_the_inference_generation_block(tmp_path):
    path = small_gpt(tmp_path, "strategy: top_p; temperature: 0.8; top_p: 0.9; top_k: 5;"
                               " max_tokens: 9; seed: 7;")  # fmt: skip
    trainer = load_trainer(path, RuntimeConfig(seed=0))
    ex = trainer.executor
    prompt = np.array([[1, 2, 3], [4, 5, 6]])
    a = ex.generate(prompt).numpy()
    assert a.shape == (2, 3 + 9) and a.dtype == np.int64  # max_tokens from the block
    np.testing.assert_array_equal(a[:, :3], prompt)
    np.testing.assert_array_equal(ex.generate(prompt).numpy(), a)  # seed from the block
    assert not np.array_equal(ex.generate(prompt, seed=8).numpy(), a)
    greedy = ex.generate(prompt, max_tokens=4, strategy="greedy").numpy()
    tokens = prompt
    with sc.no_grad():
        for _ in range(4):
            logits = ex.run("Forward", {"tokens": tokens[:, -6:]})["logits"].numpy()
            tokens = np.concatenate([tokens, logits[:, -1].argmax(-1)[:, None]], 1)
    np.testing.assert_array_equal(greedy, tokens)
    one = ex.generate(prompt, max_tokens=4, top_k=1, top_p=None, temperature=1.5).numpy()
    np.testing.assert_array_equal(one, greedy)  # top_k = 1 leaves only the argmax
    quantized = trainer.generate(prompt).numpy()  # @inference quantization: int8 first
    assert trainer.executor.quantized_weights, "the @inference quantization was not applied"
    assert quantized.shape == a.shape and (quantized[:, :3] == prompt).all()


def test_generate_sampling_follows_the_filtered_distribution():
    from shrew.exec.generate import next_tokens

    logits = np.log(np.array([[0.5, 0.3, 0.15, 0.05]] * 4000))
    draws = next_tokens(logits, top_p=0.75, rng=np.random.default_rng(0))
    counts = np.bincount(draws, minlength=4) / len(draws)
    np.testing.assert_allclose(counts, [0.625, 0.375, 0, 0], atol=0.03)
    draws = next_tokens(logits, temperature=0.5, top_k=3, rng=np.random.default_rng(1))
    p = np.array([0.5, 0.3, 0.15]) ** 2
    np.testing.assert_allclose(np.bincount(draws, minlength=4)[:3] / 4000, p / p.sum(), atol=0.03)
    assert np.bincount(draws, minlength=4)[3] == 0


def test_jit_trainer_matches_the_interpreter():
    src = CLASSIFIER + ("@training { loss: cross_entropy; optimizer: { type: Adam; lr: 0.01; }"
                        " epochs: 2; batch_size: 16; }")  # fmt: skip
    x, y = class_data()
    a, b = load_trainer(src), load_trainer(src, jit=True)
    ra, rb = a.fit(x, y), b.fit(x, y)
    np.testing.assert_allclose(rb.history["loss"], ra.history["loss"], rtol=1e-5)
    for k, v in a.executor.state_dict().items():
        np.testing.assert_allclose(b.executor.state_dict()[k], v, rtol=1e-4, atol=1e-6)


def test_model_field_format_field_and_more_aggregates(tmp_path):
    two = LINEAR.replace("@graph model", "@graph other") + LINEAR.replace(
        "@config { seed: 3; }", ""
    )
    extra = (f'@logging {{ log_dir: "{tmp_path}"; format: "csv"; console: false; }}'
             '@metrics M { track s { source: loss; aggregate: "sum"; }'
             ' track lo { source: loss; aggregate: "min"; } }')  # fmt: skip
    t = trainer_for("model: model; loss: mse; optimizer: { type: SGD; lr: 0.05; } epochs: 1;"
                    " batch_size: 16; shuffle: false;", two, extra)  # fmt: skip
    assert t.graph == "model" and t.executor.graph_names() == ["other", "model"]
    result = t.fit(*linear_data())
    losses = [s["loss"] for s in result.steps]
    np.testing.assert_allclose(result.epochs[0].metrics["s"], sum(losses))
    assert result.epochs[0].metrics["lo"] == min(losses)
    assert result.log_file == tmp_path / "metrics.csv"
    assert result.log_file.read_text().startswith("time,kind,epoch,step,metric,value")


def test_generation_eos_token_and_inference_model(tmp_path):
    path = small_gpt(tmp_path, "strategy: greedy; max_tokens: 5;")
    head = """
@graph Head {
    input tokens: Tensor<[Batch, SeqLen], i64>;
    param table: Tensor<[23, 23], f32> { init: "zeros"; };
    output logits: embedding(tokens, table);
}"""
    path.write_text(path.read_text().replace("@inference {\n    model: Forward;",
                                             "@inference {\n    model: Head;") + head)  # fmt: skip
    ex = load_trainer(path, RuntimeConfig(seed=0)).executor
    ex.set_param("Head/table", np.eye(23, dtype=np.float32)[[(i + 1) % 23 for i in range(23)]])
    out = ex.generate(np.array([[3]])).numpy()  # Head predicts token + 1: the model field used
    np.testing.assert_array_equal(out, [[3, 4, 5, 6, 7, 8]])
    out = ex.generate(np.array([[3], [10]]), eos_token=5).numpy()
    np.testing.assert_array_equal(out, [[3, 4, 5, 5, 5, 5], [10, 11, 12, 13, 14, 15]])
    out = ex.generate(np.array([[3], [4]]), eos_token=6).numpy()  # stops once all rows end
    np.testing.assert_array_equal(out, [[3, 4, 5, 6], [4, 5, 6, 6]])
