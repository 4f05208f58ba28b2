"""shrew.onnx.to_sw: ONNX models (from torch.onnx.export and from shrew.onnx.export) as .sw
source + weights that shrew_ir validates and load_program runs to onnxruntime's outputs,
trainable (gradients match torch); what .sw cannot express is named."""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from onnx_helpers import assert_close, ort_run

import shrew.onnx as sonnx
import shrew_core as sc
import shrew_ir
import shrew_nn as nn
from shrew.exec import load_program


def torch_export(model, x, path, axes):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (x,), str(path), dynamo=False, opset_version=17,
                          input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": axes, "y": {0: "batch"}})  # fmt: skip


class _Tokens(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(11, 8)
        self.norm = torch.nn.LayerNorm(8)
        self.head = torch.nn.Linear(8, 11)

    def forward(self, ids):
        return self.head(self.norm(self.emb(ids))).log_softmax(-1)


class _Attn(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.mha = torch.nn.MultiheadAttention(8, 2, batch_first=True)

    def forward(self, x):
        return self.mha(x, x, x, need_weights=False)[0]


def _cnn():
    bn = torch.nn.BatchNorm2d(4)
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), bn, torch.nn.ReLU(),
                               torch.nn.MaxPool2d(2), torch.nn.AvgPool2d(3, 1, 1),
                               torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                               torch.nn.Linear(4, 2), torch.nn.Softmax(-1))  # fmt: skip


# name -> (torch model factory, example input factory, dynamic axes, input for the check)
MODELS = {
    "mlp_gelu": (
        lambda: torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.GELU(), torch.nn.Linear(8, 3)),
        lambda n: torch.randn(n, 4),
        {0: "batch"},
    ),  # fmt: skip
    "cnn": (_cnn, lambda n: torch.randn(n, 3, 8, 8), {0: "batch"}),
    "tokens": (_Tokens, lambda n: torch.randint(0, 11, (n, 5)), {0: "batch", 1: "seq"}),
    "attention": (_Attn, lambda n: torch.randn(n, 5, 8), {0: "batch", 1: "seq"}),
    "flatten_3d": (
        lambda: torch.nn.Sequential(
            torch.nn.Linear(4, 6), torch.nn.Flatten(), torch.nn.Linear(18, 2), torch.nn.Tanh()
        ),
        lambda n: torch.randn(n, 3, 4),
        {0: "batch"},
    ),  # fmt: skip
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_torch_model_round_trip(name, tmp_path):
    """torch -> onnx -> to_sw -> load_program: the outputs of onnxruntime and torch."""
    torch.manual_seed(0)
    factory, make, axes = MODELS[name]
    model = factory().eval()
    torch_export(model, make(2), tmp_path / "m.onnx", axes)
    source, weights = sonnx.to_sw(tmp_path / "m.onnx")
    module = shrew_ir.lower(shrew_ir.parse(source, "m.sw"))
    errors = [d for d in shrew_ir.validate(module) if d.severity == "error"]
    assert errors == [], source
    ex = load_program(source)
    ex.load_state_dict(weights)
    x = make(3)  # another batch size
    (got,) = ex.run(None, {"x": x.numpy()}).values()
    (expected,) = ort_run(tmp_path / "m.onnx", {"x": x.numpy()})
    assert_close(got.numpy(), expected, what=f"{name} vs onnxruntime")
    with torch.no_grad():
        assert_close(got.numpy(), model(x).numpy(), what=f"{name} vs torch")


def test_converted_program_trains_like_torch(tmp_path):
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.GELU(), torch.nn.Linear(5, 2))
    torch_export(model, torch.randn(2, 3), tmp_path / "m.onnx", {0: "batch"})
    source, weights = sonnx.to_sw(tmp_path / "m.onnx")
    assert "gelu(" in source and "erf" not in source.lower()
    ex = load_program(source)
    ex.load_state_dict(weights)
    x = torch.randn(4, 3)
    (out,) = ex.run(None, {"x": x.numpy()}).values()
    grads = (out * out).sum().backward()
    (model(x) ** 2).sum().backward()
    params = ex.named_params()
    graph = ex.graph_names()[0]
    for tname, tp in model.named_parameters():
        key = f"{graph}/v_{tname.replace('.', '_')}"  # "0.weight" -> "v_0_weight"
        assert_close(grads[params[key]].numpy(), tp.grad.numpy(), what=f"grad {tname}")


def test_shrew_transformer_block_round_trip(tmp_path):
    sc.manual_seed(2)
    block = nn.TransformerBlock(8, 2, 16, causal=True)
    sonnx.export(block, sc.randn(2, 5, 8), tmp_path / "b.onnx",
                 dynamic_axes={"input": {0: "batch", 1: "seq"}})  # fmt: skip
    source, weights = sonnx.to_sw(tmp_path / "b.onnx")
    ex = load_program(source)
    ex.load_state_dict(weights)
    assert ex.input_names() == ["input"] and ex.output_names() == ["output"]
    x = sc.randn(3, 4, 8)
    block.eval()
    assert_close(ex.run(None, {"input": x})["output"].numpy(), block(x).numpy(),
                 what="transformer block")  # fmt: skip


def test_names_become_identifiers(tmp_path):
    init = numpy_helper.from_array(np.full((2,), 3.0, np.float32), "f32")
    nodes = [helper.make_node("Mul", ["1.in/x", "f32"], ["range"]),
             helper.make_node("Relu", ["range"], ["out:0"])]  # fmt: skip
    graph = helper.make_graph(nodes, "my graph", [helper.make_tensor_value_info(
        "1.in/x", TensorProto.FLOAT, ["n", 2])], [helper.make_tensor_value_info(
            "out:0", TensorProto.FLOAT, ["n", 2])], [init])  # fmt: skip
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                                ir_version=8), str(tmp_path / "n.onnx"))  # fmt: skip
    source, weights = sonnx.to_sw(tmp_path / "n.onnx")
    assert list(weights) == ["my_graph/v_f32"]
    ex = load_program(source)
    ex.load_state_dict(weights)
    x = np.asarray([[-1.0, 2.0]], np.float32)
    assert_close(ex.run(None, {"v_1_in_x": x})["out_0"].numpy(), np.maximum(x * 3, 0),
                 what="renamed graph")  # fmt: skip


def test_unsupported_op_is_named(tmp_path):
    lstm = nn.LSTM(3, 4)
    sonnx.export(lstm, sc.randn(5, 2, 3), tmp_path / "l.onnx")
    with pytest.raises(sonnx.OnnxUnsupportedError, match=r"LSTM node '/LSTM'.*no \.sw"):
        sonnx.to_sw(tmp_path / "l.onnx")
