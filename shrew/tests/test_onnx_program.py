"""shrew.onnx.export_program: .sw programs (the examples and a program using most IR ops)
exported op by op and run in onnxruntime to the Executor's outputs, with symbolic dims kept
as dim_param (a different batch size runs); unsupported ops name the op, node and position."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx_helpers import assert_close, ort_run

import shrew.onnx as sonnx
from shrew.exec import RuntimeConfig, load_program

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "sw"


def small_tiny_gpt(folder: Path) -> Path:
    """examples/sw/tiny_gpt.sw at small dims (vocab 61, d_model 16, 2 layers), beside a copy
    of the layers/ it imports."""
    src = (EXAMPLES / "tiny_gpt.sw").read_text()
    for big, small in [
        ("50257", "61"),
        ("256 * 4", "32"),
        ("256", "16"),
        ("512", "12"),
        ("n_layers: 4", "n_layers: 2"),
        ("n_heads: 4", "n_heads: 2"),
    ]:
        src = src.replace(big, small)
    shutil.copytree(EXAMPLES / "layers", folder / "layers")
    path = folder / "tiny_gpt.sw"
    path.write_text(src)
    return path


def _input(rng, name, proto_input, batch):
    t = proto_input.type.tensor_type
    shape = [d.dim_value if d.HasField("dim_value") else batch for d in t.shape.dim]
    if t.elem_type == onnx.TensorProto.INT64:
        return rng.integers(0, 61, shape)
    dtype = np.float64 if t.elem_type == onnx.TensorProto.DOUBLE else np.float32
    return rng.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("example", ["iris", "wine", "demo_mlp", "mnist_mlp", "tiny_gpt"])
def test_example_program_matches_onnxruntime(example, tmp_path):
    source = small_tiny_gpt(tmp_path) if example == "tiny_gpt" else EXAMPLES / f"{example}.sw"
    ex = load_program(str(source), RuntimeConfig(seed=0, device="cpu"))
    path = tmp_path / f"{example}.onnx"
    sonnx.export_program(ex, path)
    proto = onnx.load(path)
    onnx.checker.check_model(proto, full_check=True)
    graph = ex.graph_names()[0]
    assert [i.name for i in proto.graph.input] == ex.input_names(graph)
    assert [o.name for o in proto.graph.output] == ex.output_names(graph)
    assert {i.name for i in proto.graph.initializer} >= {
        k.split("/", 1)[1] for k in ex.named_params()
    }
    rng = np.random.default_rng(0)
    feeds = {i.name: _input(rng, i.name, i, 5) for i in proto.graph.input}
    expected = ex.run(graph, feeds)
    got = ort_run(path, feeds)
    for (name, e), g in zip(expected.items(), got):
        assert_close(g, e.numpy(), what=f"{example} {name}")


def test_symbolic_dims_stay_symbolic_unless_bound(tmp_path):
    sonnx.export_program(str(EXAMPLES / "mnist_mlp.sw"), tmp_path / "a.onnx")
    dim = onnx.load(tmp_path / "a.onnx").graph.input[0].type.tensor_type.shape.dim
    assert (dim[0].dim_param, dim[1].dim_value) == ("Batch", 784)
    sonnx.export_program(str(EXAMPLES / "mnist_mlp.sw"), tmp_path / "b.onnx", dims={"Batch": 8})
    out = onnx.load(tmp_path / "b.onnx").graph.output[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in out] == [8, 10]


def test_source_is_built_with_its_seed_and_params_override(tmp_path):
    wine = str(EXAMPLES / "wine.sw")  # @config seed: 42
    sonnx.export_program(wine, tmp_path / "w.onnx")
    ex = load_program(wine, RuntimeConfig(device="cpu"))
    weights = sonnx.load_onnx_weights(tmp_path / "w.onnx")
    assert_close(weights["w1"].numpy(), ex.state_dict()["forward/w1"], 0, 0, what="seeded w1")
    zeros = {"forward/b3": np.full((1, 3), 7.0, np.float32)}
    sonnx.export_program(wine, tmp_path / "z.onnx", params=zeros)
    assert_close(sonnx.load_onnx_weights(tmp_path / "z.onnx")["b3"].numpy(), zeros["forward/b3"],
                 0, 0, what="overridden b3")  # fmt: skip


def test_ops_program_matches_onnxruntime(tmp_path):
    (tmp_path / "ops.sw").write_text(OPS_PROGRAM)
    ex = load_program(str(tmp_path / "ops.sw"), RuntimeConfig(seed=0, device="cpu"))
    sonnx.export_program(ex, tmp_path / "ops.onnx")
    rng = np.random.default_rng(1)
    feeds = {"img": rng.standard_normal((3, 2, 6, 6)).astype(np.float32),
             "seq": rng.standard_normal((3, 4, 8)).astype(np.float32),
             "ids": rng.integers(0, 10, (3, 4))}  # fmt: skip
    expected = ex.run("Ops", feeds)
    got = ort_run(tmp_path / "ops.onnx", feeds)
    assert len(got) == len(expected) == 7
    for (name, e), g in zip(expected.items(), got):
        assert_close(g, e.numpy(), what=name)


def test_graph_choice_and_call(tmp_path):
    src = """
    @graph Inner { input a: Tensor<[?, 3], f32>; param k: Tensor<[3], f32> { init: "ones"; };
                   output y: a * k + 1.0; }
    @graph Outer { input x: Tensor<[?, 3], f32>; output z: call Inner(x) * 2.0; }
    @training { model: Outer; loss: mse; }
    """
    sonnx.export_program(src, tmp_path / "o.onnx")  # the @training model graph by default
    proto = onnx.load(tmp_path / "o.onnx")
    assert proto.graph.name == "Outer"
    assert [i.name for i in proto.graph.initializer] == ["Inner/k"]
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert_close(ort_run(tmp_path / "o.onnx", {"x": x})[0], (x + 1) * 2, what="call")
    sonnx.export_program(src, tmp_path / "i.onnx", graph="Inner")
    assert onnx.load(tmp_path / "i.onnx").graph.name == "Inner"
    with pytest.raises(sonnx.OnnxError, match="no graph 'Nope'"):
        sonnx.export_program(src, tmp_path / "n.onnx", graph="Nope")


def test_unsupported_op_names_op_node_and_position(tmp_path):
    src = "@graph G {\n  input x: Tensor<[4], i64>;\n  node b { op: x & 3; };\n  output b;\n}\n"
    with pytest.raises(sonnx.OnnxUnsupportedError,
                       match=r"graph 'G', node 'b' \(<string>:3:3\).*'bitand'"):  # fmt: skip
        sonnx.export_program(src, tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()


OPS_PROGRAM = """
@config { c: 3; }
@graph Ops {
    input img: Tensor<[Batch, 2, 6, 6], f32>;
    input seq: Tensor<[Batch, 4, 8], f32>;
    input ids: Tensor<[Batch, 4], i64>;
    param cw: Tensor<[c, 2, 3, 3], f32> { init: "xavier_uniform"; };
    param cb: Tensor<[c], f32> { init: "normal(0, 0.1)"; };
    param g: Tensor<[c], f32> { init: "uniform(0.5, 1.5)"; };
    param bb: Tensor<[c], f32> { init: "normal(0, 0.1)"; };
    param rm: Tensor<[c], f32> { init: "normal(0, 0.1)"; };
    param rv: Tensor<[c], f32> { init: "uniform(0.5, 1.5)"; };
    param lw: Tensor<[8], f32> { init: "uniform(0.5, 1.5)"; };
    param lb: Tensor<[8], f32> { init: "normal(0, 0.1)"; };
    param table: Tensor<[10, 8], f32> { init: "normal(0, 1)"; };
    param fc: Tensor<[5, 8], f32> { init: "xavier_uniform"; };
    param cw1: Tensor<[2, 4, 3], f32> { init: "xavier_uniform"; };
    node conv { op: relu(conv2d(img, cw, cb, padding: 1)); };
    node bn { op: batch_norm(conv, g, bb, rm, rv, eps: 1e-3); };
    node pooled { op: avg_pool2d(max_pool2d(bn, kernel_size: 2), kernel_size: 3, stride: 1,
                                 padding: 1); };
    node gap { op: flatten(adaptive_avg_pool2d(pooled, output_size: 1), start_dim: 1); };
    node emb { op: embedding(ids, table); };
    node h { op: layer_norm(seq + emb, lw, lb) * 2.0 - 1; };
    node r { op: rms_norm(h, lw, eps: 1e-5); };
    node flat { op: reshape(r, [Batch, -1]); };
    node parts { op: split(h, chunks: 2, dim: 1); };
    node joined { op: concat(parts[1], parts[0], dim: 1); };
    node stacked { op: stack(joined, h, dim: 0); };
    node m { op: mean(stacked, dim: 0); };
    node v { op: var(m, dim: [1, 2]) + std(m, dim: -1, keepdim: true).sum(dim: [1, 2]); };
    node sel { op: where(m > 0.1, m, 0.1 * m); };
    node cl { op: clamp(gelu(sel), min: -0.5, max: 0.8) + silu(sel) + sigmoid(sel) * tanh(sel); };
    node sm { op: softmax(linear(cl, fc), dim: -1); };
    node lsm { op: log_softmax(sm, dim: 1); };
    node perm { op: permute(lsm, dims: [0, 2, 1]); };
    node red { op: max(perm, dim: 1) + min(perm, dim: 1) + sum(perm, dim: 1)
                   + cast(argmax(perm, dim: 1), dtype: "f32"); };
    node toks { op: cast(argmax(sm, dim: -1), dtype: "f32") + transpose(sm, 1, 2).sum(dim: 1); };
    node pw { op: abs(lsm) ** 1.5 + exp(-abs(lsm)) + sqrt(abs(lsm))
                  + unsqueeze(squeeze(unsqueeze(lsm, dim: 0), dim: 0), dim: 1)[0]; };
    node c1 { op: max_pool1d(elu(conv1d(seq, cw1, stride: 2, padding: 1), alpha: 0.5),
                             kernel_size: 2); };
    output gap;
    output flat;
    output v;
    output red;
    output toks;
    output pw;
    output c1;
}
"""
