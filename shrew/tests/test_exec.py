"""The .sw executor and trainer: op coverage, numerics against NumPy, errors with locations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import shrew_core as sc
import shrew_ir
from shrew.exec import ExecutionError, RuntimeConfig, load_program, load_trainer
from shrew.exec.ops import IMPLS

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "sw"

MLP = """
@config { hidden: 8; }
@graph forward {
    input x: Tensor<[Batch, 4], f32>;
    param w1: Tensor<[hidden, 4], f32> { init: "xavier_uniform"; };
    param b1: Tensor<[hidden], f32> { init: "zeros"; };
    param w2: Tensor<[3, hidden], f32> { init: "normal(0, 0.5)"; };
    node h { op: relu(matmul(x, transpose(w1)) + b1); };
    node logits { op: matmul(h, transpose(w2)); };
    output logits;
}
@training { loss: cross_entropy; optimizer: { type: "Adam"; lr: 0.05; } epochs: 60;
            batch_size: 16; }
"""


def test_every_ir_op_has_an_implementation():
    not_executable = {
        "input",
        "param",
        "undefined",
        "bitnot",
        "bitand",
        "bitor",
        "bitxor",
        "shl",
        "shr",
    }
    assert set(shrew_ir.OPS) - set(IMPLS) == not_executable


@pytest.mark.parametrize("level", [0, 1, 2])
def test_mlp_matches_numpy(level, device):
    ex = load_program(MLP, RuntimeConfig(device=device, seed=0, optimize_level=level))
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    out = ex.run("forward", {"x": x})["logits"].numpy()
    p = {k.split("/")[1]: v.numpy() for k, v in ex.named_params().items()}
    ref = np.maximum(x @ p["w1"].T + p["b1"], 0) @ p["w2"].T
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)


def test_gradients_flow_to_params(device):
    ex = load_program(MLP, RuntimeConfig(device=device, seed=0))
    out = ex.run(x=np.ones((2, 4), np.float32))["logits"]
    grads = out.sum().backward()
    assert all(p in grads for p in ex.parameters())


def test_errors_name_the_input_and_location(device):
    ex = load_program(MLP, RuntimeConfig(device=device, seed=0))
    with pytest.raises(ExecutionError, match="missing input 'x'"):
        ex.run("forward", {})
    with pytest.raises(ExecutionError, match=r"input 'x'.*dim 1 must be 4"):
        ex.run("forward", {"x": np.ones((2, 5), np.float32)})
    with pytest.raises(ExecutionError, match="no input named y"):
        ex.run("forward", {"x": np.ones((2, 4), np.float32), "y": 1})
    with pytest.raises(ExecutionError, match="graph 'nope' not found"):
        ex.run("nope", {})


def test_op_errors_carry_the_node_position(device):
    src = """@graph g { input a: Tensor<[?, 3], f32>; input b: Tensor<[?, 3], f32>;
        node c { op: a + b; }; output c; }"""
    ex = load_program(src, RuntimeConfig(device=device), filename="m.sw")
    with pytest.raises(ExecutionError, match=r"node 'c' \(m.sw:2:9\): add: .*not broadcast"):
        ex.run("g", {"a": np.ones((2, 3)), "b": np.ones((4, 3))})


def test_validation_errors_stop_loading():
    with pytest.raises(shrew_ir.ValidationError, match="undefined name 'zz'"):
        load_program("@graph g { input x: Tensor<[2], f32>; node y { op: x + zz; }; output y; }")


STRUCTURE = """
@custom_op mycube { signature: (x: Tensor<[B, D], f32>) -> Tensor<[B, D], f32>; }
@graph helper { input u: Tensor<[?, 4], f32>; node v { op: u * 2.0; }; output v; }
@graph main {
    input x: Tensor<[Batch, 4], f32>;
    node parts { op: split(x, chunks: 2, dim: 1); };
    node left { op: parts[0]; };
    node doubled { op: call helper(x); };
    node pos { op: range(0, Batch); };
    node fused { op: relu(x * 3.0 + 1.0) - 0.5; };
    node s { op: sum(doubled, dim: 1) + mean(left, dim: 1) + cast(pos, dtype: "f32"); };
    node e { op: mycube(fused); };
    output s;
    output e;
}
"""


def test_structure_ops_and_custom_ops(device):
    ex = load_program(
        STRUCTURE, RuntimeConfig(device=device), custom_ops={"mycube": lambda t: t * t * t}
    )
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    out = ex.run("main", {"x": x})
    ref = (2 * x).sum(1) + x[:, :2].mean(1) + np.arange(2)
    np.testing.assert_allclose(out["s"].numpy(), ref, rtol=1e-6)
    np.testing.assert_allclose(out["e"].numpy(), (np.maximum(3 * x + 1, 0) - 0.5) ** 3, rtol=1e-5)
    with pytest.raises(NotImplementedError, match="custom op 'mycube' has no implementation"):
        load_program(STRUCTURE, RuntimeConfig(device=device)).run("main", {"x": x})


def test_transformer_program_runs_and_trains_a_step(device):
    src = """
    @graph lm {
        input tokens: Tensor<[Batch, SeqLen], i64>;
        param wte: Tensor<[11, 16], f32> { init: "normal(0, 0.02)"; };
        node h { op: embedding(tokens, wte); };
        node t { op: repeat(2) { transformer_block(h, n_heads: 2); }; };
        node logits { op: matmul(layer_norm(t), transpose(wte)); };
        output logits;
    }"""
    ex = load_program(src, RuntimeConfig(device=device, seed=0))
    assert any(k.startswith("lm/t.") for k in ex.named_params())
    out = ex.run("lm", {"tokens": np.array([[1, 2, 3], [4, 5, 6]])})["logits"]
    assert out.shape == (2, 3, 11)
    grads = out.sum().backward()
    assert len(grads) == len(ex.parameters())


def test_trainer_fits_the_mlp(device):
    trainer = load_trainer(MLP, RuntimeConfig(device=device, seed=0))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((96, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0.5).astype(np.int64)
    result = trainer.fit(x, y, seed=0)
    assert result.epochs[-1].loss < 0.25 * result.epochs[0].loss
    assert trainer.evaluate(x, y)["accuracy"] >= 0.9


def test_trainer_reads_the_example_training_block():
    trainer = load_trainer(EXAMPLES / "wine.sw")
    assert trainer.optimizer.__class__.__name__ == "AdamW"
    assert trainer.epochs == 400 and trainer.batch_size == 32
    assert trainer.executor.config.seed == 42  # from @config


def test_mixed_precision_from_the_training_block():
    trainer = load_trainer(EXAMPLES / "tiny_gpt.sw", RuntimeConfig(dims={"SeqLen": 4}))
    assert trainer.amp_dtype is sc.bf16 and trainer.scaler is None  # bf16 needs no scaling
    fp32 = load_trainer(EXAMPLES / "tiny_gpt.sw", RuntimeConfig(dims={"SeqLen": 4}),
                        fp32_fallback=True)  # fmt: skip
    assert fp32.amp_dtype is None


def test_every_example_program_loads(device):
    for path in sorted(EXAMPLES.glob("*.sw")):
        if path.name == "tiny_gpt.sw":
            continue  # 13M parameters: covered by the CLI info test
        ex = load_program(path, RuntimeConfig(device=device, seed=0))
        assert ex.param_count() > 0


def test_state_dict_roundtrip(device):
    a = load_program(MLP, RuntimeConfig(device=device, seed=0))
    b = load_program(MLP, RuntimeConfig(device=device, seed=1))
    b.load_state_dict(a.state_dict())
    x = np.ones((1, 4), np.float32)
    np.testing.assert_array_equal(a.run(x=x)["logits"].numpy(), b.run(x=x)["logits"].numpy())
    with pytest.raises(sc.ShapeError):
        b.set_param("forward/w1", np.zeros((2, 2)))
