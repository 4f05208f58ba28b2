"""Quantized models end to end: a digits MLP keeps its held-out accuracy (int8 per channel
within 1 point, int4 per group of 32 within 3), and `.sw` programs run their linear-like
nodes through quantized weights (``quantize_executor``, the ``@inference`` block)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose

import shrew_core as sc
import shrew_nn as nn
import shrew_nn.functional as F
from shrew.exec import RuntimeConfig, load_program
from shrew.quantization import (
    QuantConfig,
    QuantizationError,
    QuantizedLinear,
    config_from_spec,
    inference_config,
    quantize_executor,
    quantize_model,
)
from shrew_data import load_digits
from shrew_optim import Adam

IRIS = Path(__file__).resolve().parents[2] / "examples" / "sw" / "iris.sw"


@pytest.fixture(scope="module")
def digits_mlp():
    """A 64-128-64-10 MLP trained for 3 epochs (~1 s) on 80% of sklearn's digits (~96%)."""
    sc.manual_seed(0)
    ds = load_digits(images=False)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(ds.targets))
    cut = int(0.8 * len(order))
    train, test = order[:cut], order[cut:]
    x_train, y_train = sc.tensor(ds.features[train]), sc.tensor(ds.targets[train])
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(),
                          nn.Linear(64, 10))  # fmt: skip
    opt = Adam(model.parameters(), lr=5e-3)
    for _ in range(3):
        for idx in np.array_split(rng.permutation(cut), cut // 64):
            loss = F.cross_entropy(model(x_train[sc.tensor(idx)]), y_train[sc.tensor(idx)])
            opt.step(loss.backward())
    return model.eval(), sc.tensor(ds.features[test]), ds.targets[test]


def _accuracy(model, x, y) -> float:
    with sc.no_grad():
        return 100.0 * float((model(x).numpy().argmax(1) == y).mean())


def test_digits_accuracy_after_quantization(digits_mlp):
    model, x, y = digits_mlp
    base = _accuracy(model, x, y)
    assert base > 90.0, f"the float model did not train ({base:.1f}%)"
    int8 = quantize_model(model, QuantConfig.int8_per_channel())
    int4 = quantize_model(model, QuantConfig.int4_per_group(32))
    assert all(isinstance(m, QuantizedLinear) for m in (int8[0], int8[2], int8[4], int4[4]))
    acc8, acc4 = _accuracy(int8, x, y), _accuracy(int4, x, y)
    assert acc8 >= base - 1.0, f"int8 per channel: {acc8:.2f}% vs float {base:.2f}%"
    assert acc4 >= base - 3.0, f"int4 per group(32): {acc4:.2f}% vs float {base:.2f}%"
    assert _accuracy(model, x, y) == base  # the float model is untouched


# ------------------------------------------------------------------ .sw programs
def test_quantize_executor_runs_quantized_weights():
    ex = load_program(IRIS, RuntimeConfig(seed=0))
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    ref = ex.run("forward", {"x": x})["out"].numpy()
    quantize_executor(ex, QuantConfig.int8_per_channel())
    assert len(ex.quantized_weights) == 3  # the three matmul_add layers
    out = ex.run("forward", {"x": x})["out"].numpy()
    # per output column of W: error bounded by the quantization step of each layer
    assert_allclose(out, ref, atol=0.02 * np.abs(ref).max())
    assert not np.array_equal(out, ref)  # it did run on the quantized weights
    # by hand: the first layer's weight w1 [4, 16] is quantized as w1ᵀ, per output column
    q1 = next(iter(ex.quantized_weights.values()))
    w1 = ex.named_params()["forward/w1"].detach().numpy()
    assert q1.qweight.shape == (16, 4)
    assert_allclose(q1.dequantize_weight().numpy(), w1.T, atol=np.abs(w1).max() / 127)
    ex.train()  # training uses the float params
    assert_allclose(ex.run("forward", {"x": x})["out"].numpy(), ref, rtol=1e-6, atol=1e-6)


def test_inference_block_config():
    src = IRIS.read_text() + (
        '\n@inference { model: forward; quantization: { mode: "int4"; '
        'scheme: "asymmetric"; granularity: "per_channel"; } }\n'
    )
    ex = load_program(src, RuntimeConfig(seed=0))
    cfg = inference_config(ex)
    assert cfg == QuantConfig.int4_per_channel().asymmetric()
    quantize_executor(ex)
    assert {q.config for q in ex.quantized_weights.values()} == {cfg}
    with pytest.raises(sc.ShrewError, match="no @inference"):
        quantize_executor(load_program(IRIS, RuntimeConfig(seed=0)))


def test_per_group_needs_divisible_in_features():
    ex = load_program(IRIS, RuntimeConfig(seed=0))
    with pytest.raises(sc.ShapeError, match="node 'h1'.*group_size 32 does not divide"):
        quantize_executor(ex, QuantConfig.int4_per_group(32))


def test_config_from_spec():
    assert config_from_spec({}) is None
    assert config_from_spec({"mode": "int8", "calibration": "dynamic"}) == QuantConfig.int8()
    assert config_from_spec({"bits": 4, "group_size": 64}) == QuantConfig.int4_per_group(64)
    assert config_from_spec({"mode": "int8", "symmetric": False}) == QuantConfig().asymmetric()
    with pytest.raises(QuantizationError, match="unknown key"):
        config_from_spec({"mode": "int8", "method": "gptq"})
    with pytest.raises(QuantizationError, match='mode must be "int8" or "int4"'):
        config_from_spec({"mode": "fp8"})
    with pytest.raises(NotImplementedError, match="static activation quantization"):
        config_from_spec({"mode": "int8", "calibration": "static"})


def test_tiny_gpt_example_block_parses():
    module = load_program(IRIS).module
    assert inference_config(module) is None
    from shrew_ir import lower, parse

    tiny = Path(IRIS).with_name("tiny_gpt.sw").read_text()
    assert inference_config(lower(parse(tiny))) == QuantConfig.int8()
