"""shrew.onnx.export: every shrew_nn layer exported, checked by onnx.checker and run in
onnxruntime with a batch size different from the export example (dynamic batch axis);
outputs equal Shrew's forward within f32 tolerance."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx_helpers import assert_close, ort_run

import shrew.onnx as sonnx
import shrew_core as sc
import shrew_nn as nn

# f32 end to end (Shrew vs onnxruntime vs torch): different summation orders and libm calls


def flat(tree) -> list:
    """The tensors of a (nested) module output, in order."""
    if isinstance(tree, (tuple, list)):
        return [t for item in tree for t in flat(item)]
    return [] if tree is None else [tree]


def _seq(*mods):
    return nn.Sequential(*mods)


def _bn(cls, c):
    m = cls(c)
    with sc.no_grad():  # non-trivial running statistics and affine parameters
        m.running_mean.copy_(sc.randn(c))
        m.running_var.copy_(sc.rand(c) + 0.5)
        m.weight.copy_(sc.randn(c))
        m.bias.copy_(sc.randn(c))
    return m


# name -> (module factory, input shape with the batch first, batch axis of the input)
LAYERS = {
    "linear": (lambda: nn.Linear(4, 3), (2, 4), 0),
    "linear_3d": (lambda: nn.Linear(4, 3, bias=False), (2, 5, 4), 0),
    "mlp": (lambda: _seq(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)), (2, 4), 0),
    "conv1d": (lambda: nn.Conv1d(3, 4, 3, stride=2, padding=1), (2, 3, 9), 0),
    "conv2d": (lambda: nn.Conv2d(4, 6, 3, padding="same", dilation=2, groups=2), (2, 4, 7, 7), 0),
    "conv2d_unbatched": (lambda: nn.Conv2d(2, 3, (2, 3), stride=(1, 2)), (2, 5, 6), None),
    "max_pool": (lambda: nn.MaxPool2d(3, stride=2, padding=1), (2, 3, 7, 7), 0),
    "max_pool_ceil": (lambda: nn.MaxPool2d(2, ceil_mode=True), (2, 3, 5, 5), 0),
    "avg_pool": (lambda: nn.AvgPool2d(2, padding=1), (2, 3, 6, 6), 0),
    "avg_pool_no_pad": (lambda: nn.AvgPool2d(3, 2, 1, count_include_pad=False), (2, 3, 7, 7), 0),
    "adaptive_avg_pool_1": (lambda: nn.AdaptiveAvgPool2d(1), (2, 3, 5, 4), 0),
    "adaptive_avg_pool_2": (lambda: nn.AdaptiveAvgPool2d((2, 3)), (2, 3, 4, 6), 0),
    "batch_norm1d": (lambda: _bn(nn.BatchNorm1d, 3), (4, 3, 5), 0),
    "batch_norm2d": (lambda: _bn(nn.BatchNorm2d, 3), (2, 3, 4, 4), 0),
    "batch_norm_no_stats": (lambda: nn.BatchNorm1d(3, track_running_stats=False), (4, 3), 0),
    "layer_norm": (lambda: nn.LayerNorm((3, 4)), (2, 5, 3, 4), 0),
    "layer_norm_plain": (lambda: nn.LayerNorm(4, elementwise_affine=False), (2, 4), 0),
    "group_norm": (lambda: nn.GroupNorm(2, 4), (2, 4, 3, 3), 0),
    "rms_norm": (lambda: nn.RMSNorm(4), (2, 3, 4), 0),
    "rms_norm_eps": (lambda: nn.RMSNorm((2, 4), eps=1e-3), (2, 2, 4), 0),
    "dropout": (lambda: _seq(nn.Linear(4, 4), nn.Dropout(0.3)), (2, 4), 0),
    "flatten": (lambda: _seq(nn.Flatten(), nn.Linear(12, 2)), (2, 3, 2, 2), 0),
    "flatten_middle": (lambda: nn.Flatten(1, 2), (2, 3, 2, 2), 0),
    "unflatten": (lambda: nn.Unflatten(1, (2, 3)), (2, 6), 0),
    "identity": (lambda: nn.Identity(), (2, 3), 0),
    "relu": (lambda: nn.ReLU(), (2, 7), 0),
    "gelu": (lambda: nn.GELU(), (2, 7), 0),
    "gelu_tanh": (lambda: nn.GELU("tanh"), (2, 7), 0),
    "silu": (lambda: nn.SiLU(), (2, 7), 0),
    "sigmoid": (lambda: nn.Sigmoid(), (2, 7), 0),
    "tanh": (lambda: nn.Tanh(), (2, 7), 0),
    "leaky_relu": (lambda: nn.LeakyReLU(0.2), (2, 7), 0),
    "elu": (lambda: nn.ELU(0.7), (2, 7), 0),
    "softplus": (lambda: nn.Softplus(beta=2.0, threshold=3.0), (2, 7), 0),
    "mish": (lambda: nn.Mish(), (2, 7), 0),
    "softmax": (lambda: nn.Softmax(dim=0), (2, 7), 0),
    "log_softmax": (lambda: nn.LogSoftmax(), (2, 7), 0),
    "rnn_tanh": (lambda: nn.RNN(3, 4), (5, 2, 3), 1),
    "rnn_relu_2layer_bidir": (
        lambda: nn.RNN(3, 4, 2, nonlinearity="relu", batch_first=True, bidirectional=True),
        (2, 5, 3),
        0,
    ),
    "lstm": (lambda: nn.LSTM(3, 4, batch_first=True), (2, 5, 3), 0),
    "lstm_2layer_bidir": (lambda: nn.LSTM(3, 4, 2, bidirectional=True), (5, 2, 3), 1),
    "lstm_unbatched": (lambda: nn.LSTM(3, 4, bias=False), (5, 3), None),
    "gru": (lambda: nn.GRU(3, 4, batch_first=True), (2, 5, 3), 0),
    "gru_2layer_bidir": (lambda: nn.GRU(3, 4, 2, bidirectional=True), (5, 2, 3), 1),
    "rnn_cell": (lambda: nn.RNNCell(3, 4), (2, 3), 0),
    "lstm_cell": (lambda: nn.LSTMCell(3, 4), (2, 3), 0),
    "gru_cell": (lambda: nn.GRUCell(3, 4), (2, 3), 0),
    "transformer_block": (lambda: nn.TransformerBlock(8, 2, 16, causal=True), (2, 5, 8), 0),
    "transformer_block_relu": (
        lambda: nn.TransformerBlock(8, 4, 12, activation="relu"),
        (2, 3, 8),
        0,
    ),
    "embedding": (lambda: nn.Embedding(10, 4), (2, 3), 0),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_matches_onnxruntime(name, tmp_path):
    sc.manual_seed(0)
    factory, shape, batch_axis = LAYERS[name]
    model = factory()
    if name == "embedding":
        x = sc.randint(0, 10, shape)
        bigger = sc.randint(0, 10, (4,) + shape[1:])
    else:
        x = sc.randn(*shape)
        grown = list(shape)
        if batch_axis is not None:
            grown[batch_axis] += 2
        bigger = sc.randn(*grown)
    path = tmp_path / f"{name}.onnx"
    dyn = {} if batch_axis is None else {"input": {batch_axis: "batch"}}
    sonnx.export(model, x, path, dynamic_axes=dyn)
    proto = onnx.load(path)
    onnx.checker.check_model(proto, full_check=True)
    assert proto.opset_import[0].version == 17
    if batch_axis is not None:
        assert proto.graph.input[0].type.tensor_type.shape.dim[batch_axis].dim_param == "batch"
    model.eval()
    expected = flat(model(bigger))
    got = ort_run(path, {"input": bigger.numpy()})
    assert len(got) == len(expected)
    for i, (g, e) in enumerate(zip(got, expected)):
        assert_close(g, e.numpy(), what=f"{name} output {i}")


def test_rnn_initial_states_are_inputs(tmp_path):
    sc.manual_seed(1)
    lstm = nn.LSTM(3, 4, 2, batch_first=True)
    x, h0, c0 = sc.randn(2, 5, 3), sc.randn(2, 2, 4), sc.randn(2, 2, 4)
    sonnx.export(lstm, (x, (h0, c0)), tmp_path / "l.onnx", input_names=["x", "h0", "c0"],
                 output_names=["y", "h", "c"])  # fmt: skip
    got = ort_run(tmp_path / "l.onnx", {"x": x.numpy(), "h0": h0.numpy(), "c0": c0.numpy()})
    for g, e, n in zip(got, flat(lstm(x, (h0, c0))), "yhc"):
        assert_close(g, e.numpy(), what=n)


def test_attention_with_masks_and_weights(tmp_path):
    sc.manual_seed(2)
    mha = nn.MultiHeadAttention(8, 2)
    q, kv = sc.randn(2, 3, 8), sc.randn(2, 4, 8)
    mask = sc.tensor(np.triu(np.ones((3, 4), bool), 2))
    pad = sc.tensor(np.array([[False, False, False, True], [False] * 4]))
    args = (q, kv, kv, {"attn_mask": mask, "key_padding_mask": pad})
    sonnx.export(mha, args, tmp_path / "a.onnx",
                 input_names=["q", "kv", "mask", "pad"])  # fmt: skip
    proto = onnx.load(tmp_path / "a.onnx")
    assert [i.name for i in proto.graph.input] == ["q", "kv", "mask", "pad"]
    got = ort_run(tmp_path / "a.onnx", {"q": q.numpy(), "kv": kv.numpy(), "mask": mask.numpy(),
                                        "pad": pad.numpy()})  # fmt: skip
    out, weights = mha(q, kv, kv, attn_mask=mask, key_padding_mask=pad)
    assert_close(got[0], out.numpy(), what="attention output")
    assert_close(got[1], weights.numpy(), what="attention weights")


def test_attention_self_causal_not_batch_first(tmp_path):
    sc.manual_seed(3)
    mha = nn.MultiHeadAttention(8, 4, batch_first=False)
    x = sc.randn(5, 2, 8)
    sonnx.export(
        mha,
        (x, x, x, {"is_causal": True, "need_weights": False}),
        tmp_path / "a.onnx",
        dynamic_axes={"input": {0: "seq", 1: "batch"}},
    )
    y = sc.randn(7, 3, 8)  # another sequence length and batch
    (got,) = ort_run(tmp_path / "a.onnx", {"input": y.numpy()})
    assert_close(got, mha(y, y, y, is_causal=True)[0].numpy(), what="causal attention")


def test_initializers_are_the_state_dict(tmp_path):
    sc.manual_seed(4)
    model = _seq(nn.Linear(3, 4), _bn(nn.BatchNorm1d, 4), nn.LSTM(4, 2))
    sonnx.export(model, sc.randn(5, 2, 3)[:, 0], tmp_path / "m.onnx")
    weights = sonnx.load_onnx_weights(tmp_path / "m.onnx")
    state = model.state_dict()
    used = {k for k in state if not k.endswith("num_batches_tracked")}
    assert set(weights) == used
    for k in used:
        assert_close(weights[k].numpy(), state[k].numpy(), 0, 0, what=k)


def test_tied_weights_are_one_initializer(tmp_path):
    emb = nn.Embedding(6, 4)
    head = nn.Linear(4, 6, bias=False)
    head.weight = emb.weight
    sonnx.export(_seq(emb, head), sc.tensor([[1, 2, 3]]), tmp_path / "t.onnx")
    names = [i.name for i in onnx.load(tmp_path / "t.onnx").graph.initializer]
    assert names == ["0.weight"]


def test_f64_model_keeps_its_dtype(tmp_path):
    model = _seq(nn.Linear(3, 2, dtype=sc.f64), nn.GELU(), nn.LayerNorm(2, dtype=sc.f64))
    x = sc.randn(4, 3, dtype=sc.f64)
    sonnx.export(model, x, tmp_path / "d.onnx")
    (got,) = ort_run(tmp_path / "d.onnx", {"input": x.numpy()})
    # onnxruntime has no f64 Erf: GELU's erf runs in f32 (Cast around it), the rest in f64
    assert_close(got, model(x).numpy(), 1e-7, 1e-8, what="f64 model")


def test_export_keeps_training_mode(tmp_path):
    model = _seq(nn.Linear(3, 3), nn.Dropout(0.5))
    model.train()
    sonnx.export(model, sc.randn(2, 3), tmp_path / "m.onnx")
    assert model.training and model[1].training


class _Custom(nn.Module):
    def forward(self, x):
        return x * 2


def test_module_without_converter_is_named(tmp_path):
    model = _seq(nn.Linear(2, 2), _Custom())
    with pytest.raises(sonnx.OnnxUnsupportedError, match=r"_Custom \(module '1'\)"):
        sonnx.export(model, sc.randn(1, 2), tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()


class _Double(nn.Module):
    def forward(self, x):
        return x * 2


def test_register_converter_extends_export(tmp_path):
    @sonnx.register_converter(_Double)
    def _double(E, m, x):
        return E.value(E.op("Mul", x, E.const(2.0)), E.run(m, x))

    model = _seq(nn.Linear(2, 2), _Double())
    sonnx.export(model, sc.randn(1, 2), tmp_path / "x.onnx", dynamic_axes={"input": [0]})
    x = sc.randn(3, 2)
    (got,) = ort_run(tmp_path / "x.onnx", {"input": x.numpy()})
    assert_close(got, model(x).numpy(), what="custom converter")


def test_bad_arguments(tmp_path):
    with pytest.raises(sonnx.OnnxUnsupportedError, match="opset_version 13"):
        sonnx.export(nn.ReLU(), sc.randn(2), tmp_path / "x.onnx", opset_version=13)
    with pytest.raises(sonnx.OnnxError, match="dynamic_axes names"):
        sonnx.export(nn.ReLU(), sc.randn(2), tmp_path / "x.onnx", dynamic_axes={"nope": [0]})
    with pytest.raises(sonnx.OnnxUnsupportedError, match="return_indices"):
        sonnx.export(nn.MaxPool2d(2, return_indices=True), sc.randn(1, 1, 4, 4),
                     tmp_path / "x.onnx")  # fmt: skip


def test_export_weights_alias(tmp_path):
    model = _seq(nn.Linear(3, 2), _bn(nn.BatchNorm1d, 2))
    sonnx.export_weights(tmp_path / "w.onnx", model, "net")
    weights = sonnx.load_onnx_weights(tmp_path / "w.onnx")
    assert list(weights) == list(model.state_dict())
    assert weights["1.num_batches_tracked"].dtype == sc.i64
    sonnx.export_weights(tmp_path / "g.onnx", model, "net", input_shape=(2, 3))
    x = sc.randn(5, 3)
    model.eval()
    (got,) = ort_run(tmp_path / "g.onnx", {"input": x.numpy()})
    assert_close(got, model(x).numpy(), what="export_weights with input_shape")


def test_shrew_imports_without_onnx_and_names_the_extra():
    code = (
        "import sys; sys.modules['onnx'] = None\n"
        "import shrew, shrew.onnx\n"
        "try:\n"
        "    shrew.onnx.export\n"
        "except ImportError as e:\n"
        "    print(type(e).__name__, e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("OnnxNotInstalledError"), out.stdout
    assert 'pip install "shrew[onnx]"' in out.stdout


def test_model_on_another_backend_exports(tmp_path):
    model = nn.Sequential(nn.Linear(3, 2, device="reference"), nn.Tanh())
    x = sc.randn(4, 3, device="reference")
    sonnx.export(model, x, tmp_path / "r.onnx")
    (got,) = ort_run(tmp_path / "r.onnx", {"input": x.numpy()})
    assert_close(got, model(x).numpy(), what="reference-backend model")
