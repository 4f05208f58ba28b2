"""shrew.onnx.load: files written by torch.onnx.export (and by hand with onnx.helper) run as
OnnxModule to the outputs of torch and onnxruntime; gradients flow to the initializers and
match torch's on the original model; unsupported ops and bad files raise clear errors."""

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
import shrew_nn as nn
import shrew_optim


def torch_export(model, args, path, names, dynamic_axes=None, outputs=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, args, str(path), dynamo=False, opset_version=17,
                          input_names=names, output_names=outputs,
                          dynamic_axes=dynamic_axes)  # fmt: skip


class _Attn(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.mha = torch.nn.MultiheadAttention(8, 2, batch_first=True)

    def forward(self, x):
        return self.mha(x, x, x, need_weights=False)[0]


class _Block(torch.nn.Module):
    """A pre-norm encoder block (torch's TransformerEncoderLayer does not trace in legacy
    export: its fast path passes is_causal as a tensor)."""

    def __init__(self):
        super().__init__()
        self.norm1, self.norm2 = torch.nn.LayerNorm(8), torch.nn.LayerNorm(8)
        self.attn = _Attn()
        self.ff = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.GELU(),
                                      torch.nn.Linear(16, 8))  # fmt: skip

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.ff(self.norm2(x))


class _Tokens(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(11, 8)
        self.norm = torch.nn.LayerNorm(8)
        self.head = torch.nn.Linear(8, 11)

    def forward(self, ids):
        return self.head(self.norm(self.emb(ids))).log_softmax(-1)


class _Recurrent(torch.nn.Module):
    def __init__(self, cls, **kw):
        super().__init__()
        self.rnn = cls(3, 5, **kw)

    def forward(self, x):
        out, h = self.rnn(x)
        return out, (h[0] if isinstance(h, tuple) else h)


def _cnn():
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
        torch.nn.MaxPool2d(2), torch.nn.Identity(),
        torch.nn.AvgPool2d(2, padding=1), torch.nn.Conv2d(4, 6, 2, stride=2, groups=2),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(6, 2),
        torch.nn.Softmax(-1))  # fmt: skip


# name -> (torch model factory, example input, dynamic axes of the input)
TORCH_MODELS = {
    "mlp_gelu": (
        lambda: torch.nn.Sequential(
            torch.nn.Linear(4, 8),
            torch.nn.GELU(),
            torch.nn.Dropout(0.2),
            torch.nn.Linear(8, 3),
            torch.nn.Tanh(),
        ),
        lambda: torch.randn(2, 4),
        {0: "batch"},
    ),  # fmt: skip
    "cnn": (_cnn, lambda: torch.randn(2, 3, 8, 8), {0: "batch"}),
    "conv1d": (
        lambda: torch.nn.Sequential(
            torch.nn.Conv1d(3, 4, 3, padding=2, dilation=2),
            torch.nn.SiLU(),
            torch.nn.LeakyReLU(0.1),
        ),
        lambda: torch.randn(2, 3, 7),
        {0: "batch"},
    ),  # fmt: skip
    "lstm": (
        lambda: _Recurrent(torch.nn.LSTM, batch_first=True),
        lambda: torch.randn(2, 4, 3),
        {0: "batch", 1: "seq"},
    ),
    "lstm_bidir_2layer": (
        lambda: _Recurrent(torch.nn.LSTM, num_layers=2, bidirectional=True),
        lambda: torch.randn(4, 2, 3),
        {1: "batch"},
    ),
    "gru": (
        lambda: _Recurrent(torch.nn.GRU, batch_first=True, bidirectional=True),
        lambda: torch.randn(2, 4, 3),
        {0: "batch"},
    ),
    "rnn": (
        lambda: _Recurrent(torch.nn.RNN, nonlinearity="relu"),
        lambda: torch.randn(4, 2, 3),
        {1: "batch"},
    ),
    "tokens": (_Tokens, lambda: torch.randint(0, 11, (2, 5)), {0: "batch", 1: "seq"}),
    "attention": (_Attn, lambda: torch.randn(2, 5, 8), {0: "batch"}),
    "encoder_block": (_Block, lambda: torch.randn(2, 5, 8), {0: "batch", 1: "seq"}),
}


@pytest.mark.parametrize("name", sorted(TORCH_MODELS))
def test_torch_export_runs_like_torch_and_onnxruntime(name, tmp_path):
    torch.manual_seed(0)
    factory, make_input, axes = TORCH_MODELS[name]
    model = factory().eval()
    if name == "cnn":  # non-trivial running statistics
        bn = model[1]
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    x = make_input()
    with torch.no_grad():
        expected = model(x)
    expected = expected if isinstance(expected, tuple) else (expected,)
    path = tmp_path / f"{name}.onnx"
    outs = [f"out{i}" for i in range(len(expected))]
    torch_export(model, (x,), path, ["x"], {"x": axes} | {o: {0: "d0"} for o in outs}, outs)
    m = sonnx.load(path)
    assert isinstance(m, nn.Module)
    got = m(sc.tensor(x.numpy()))
    got = got if isinstance(got, tuple) else (got,)
    via_ort = ort_run(path, {"x": x.numpy()})
    for i, (g, e, o) in enumerate(zip(got, expected, via_ort)):
        assert_close(g.numpy(), e.numpy(), what=f"{name} output {i} vs torch")
        assert_close(g.numpy(), o, what=f"{name} output {i} vs onnxruntime")
    ran = m.run({"x": x.numpy()})
    assert list(ran) == outs
    assert_close(ran["out0"], expected[0].numpy(), what=f"{name} run()")


def test_dynamo_export(tmp_path):
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.LayerNorm(6), torch.nn.GELU(),
                                torch.nn.Linear(6, 2)).eval()  # fmt: skip
    x = torch.randn(3, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model,
            (x,),
            dynamo=True,
            opset_version=18,
            verbose=False,
            dynamic_shapes=({0: torch.export.Dim("batch")},),
        )
    program.save(str(tmp_path / "d.onnx"))
    m = sonnx.load(tmp_path / "d.onnx")
    assert m.opset == 18
    x5 = torch.randn(5, 4)
    with torch.no_grad():
        expected = model(x5).numpy()
    assert_close(m(sc.tensor(x5.numpy())).numpy(), expected, what="dynamo export")


def test_fine_tuning_gradients_match_torch_and_loss_decreases(tmp_path):
    torch.manual_seed(2)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    x, y = torch.randn(6, 4), torch.randint(0, 3, (6,))
    torch_export(model, (x,), tmp_path / "m.onnx", ["x"], {"x": {0: "batch"}})
    m = sonnx.load(tmp_path / "m.onnx")
    assert sorted(m.initializer_names.values()) == ["_0_bias", "_0_weight", "_2_bias",
                                                    "_2_weight"]  # fmt: skip
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    xs, ys = sc.tensor(x.numpy()), sc.tensor(y.numpy())
    ours = nn.functional.cross_entropy(m(xs), ys)
    assert_close(ours.numpy(), loss.detach().numpy(), what="loss")
    grads = ours.backward()
    for onnx_name, ident in m.initializer_names.items():
        tp = dict(model.named_parameters())[onnx_name]
        assert_close(grads[getattr(m, ident)].numpy(), tp.grad.numpy(), what=f"grad {onnx_name}")
    opt = shrew_optim.SGD(list(m.parameters()), lr=0.5)
    losses = []
    for _ in range(5):
        step = nn.functional.cross_entropy(m(xs), ys)
        losses.append(step.item())
        opt.step(step.backward())
    assert losses[-1] < losses[0] * 0.9, losses


def test_round_trip_of_a_shrew_export(tmp_path):
    sc.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.GELU(), nn.Flatten(),
                          nn.Linear(12, 4))  # fmt: skip
    sonnx.export(model, sc.randn(1, 2, 4, 4), tmp_path / "r.onnx",
                 dynamic_axes={"input": {0: "batch"}})  # fmt: skip
    m = sonnx.load(tmp_path / "r.onnx")
    model.eval()
    x = sc.randn(3, 2, 4, 4)
    assert_close(m(x).numpy(), model(x).numpy(), what="shrew -> onnx -> shrew")
    params = dict(m.named_parameters())
    assert set(params) == {"_0_weight", "_0_bias", "_1_weight", "_1_bias", "_1_running_mean",
                           "_1_running_var", "_4_weight", "_4_bias"}  # fmt: skip


def test_other_device_and_non_contiguous_inputs(tmp_path):
    torch.manual_seed(4)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    torch_export(model.eval(), (torch.randn(2, 3),), tmp_path / "m.onnx", ["x"],
                 {"x": {0: "batch"}})  # fmt: skip
    m = sonnx.load(tmp_path / "m.onnx", device="reference")
    assert all(p.device == sc.as_device("reference") for p in m.parameters())
    xt = sc.randn(3, 5, device="reference").t()  # [5, 3], not contiguous
    with torch.no_grad():
        expected = model(torch.tensor(xt.numpy())).numpy()
    assert_close(m(xt).numpy(), expected, what="reference backend, transposed input")
    empty = m.run({"x": np.zeros((0, 3), np.float32)})
    assert next(iter(empty.values())).shape == (0, 2)


# ---------------------------------------------------------------------------- op table
def _model(nodes, inputs, outputs, inits=(), opset=17):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                             ir_version=8 if opset <= 17 else 9)  # fmt: skip


def _vi(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


def _i64(name, values):
    return numpy_helper.from_array(np.asarray(values, dtype=np.int64), name)


F, I = TensorProto.FLOAT, TensorProto.INT64

# name -> (nodes, inputs, initializers, opset): every graph reads x [2, 3, 4] f32
OP_GRAPHS = {
    "gather_take_negative": (
        [helper.make_node("Gather", ["x", "i"], ["y"], axis=1)],
        [_i64("i", [[-1, 0], [2, 2]])],
        17,
    ),
    "gather_scalar": ([helper.make_node("Gather", ["x", "i"], ["y"], axis=2)], [_i64("i", 3)], 17),
    "shape_chain_reshape": (
        [
            helper.make_node("Shape", ["x"], ["s"]),
            helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
            helper.make_node("Unsqueeze", ["n", "axes0"], ["n1"]),
            helper.make_node("Concat", ["n1", "minus1"], ["shape"], axis=0),
            helper.make_node("Reshape", ["x", "shape"], ["y"]),
        ],
        [_i64("zero", 0), _i64("axes0", [0]), _i64("minus1", [-1])],
        17,
    ),
    "reduce_axes_input_18": (
        [helper.make_node("ReduceMean", ["x", "ax"], ["y"], keepdims=0)],
        [_i64("ax", [0, -1])],
        18,
    ),
    "reduce_max_attr_17": ([helper.make_node("ReduceMax", ["x"], ["y"], axes=[1])], [], 17),
    "reduce_sum_input_13": (
        [helper.make_node("ReduceSum", ["x", "ax"], ["y"], keepdims=1)],
        [_i64("ax", [1])],
        17,
    ),
    "reduce_sum_all": ([helper.make_node("ReduceSum", ["x"], ["y"], keepdims=0)], [], 17),
    "slice_negative_step": (
        [helper.make_node("Slice", ["x", "st", "en", "ax", "sp"], ["y"])],
        [_i64("st", [-1, 0]), _i64("en", [-100, 3]), _i64("ax", [2, 1]), _i64("sp", [-2, 2])],
        17,
    ),  # fmt: skip
    "squeeze_unsqueeze": (
        [
            helper.make_node("Unsqueeze", ["x", "a"], ["u"]),
            helper.make_node("Squeeze", ["u", "b"], ["y"]),
        ],
        [_i64("a", [0, -1]), _i64("b", [0])],
        17,
    ),
    "transpose_flatten": (
        [
            helper.make_node("Transpose", ["x"], ["t"], perm=[2, 0, 1]),
            helper.make_node("Flatten", ["t"], ["y"], axis=2),
        ],
        [],
        17,
    ),
    "where_expand_range": (
        [
            helper.make_node("Range", ["r0", "r4", "r1"], ["r"]),
            helper.make_node("Cast", ["r"], ["rf"], to=F),
            helper.make_node("Greater", ["x", "rf"], ["c"]),
            helper.make_node("Expand", ["rf", "shp"], ["e"]),
            helper.make_node("Where", ["c", "x", "e"], ["y"]),
        ],
        [_i64("r0", 0), _i64("r4", 4), _i64("r1", 1), _i64("shp", [3, 1])],
        17,
    ),
    "constant_of_shape": (
        [
            helper.make_node("Shape", ["x"], ["s"]),
            helper.make_node(
                "ConstantOfShape",
                ["s"],
                ["c"],
                value=numpy_helper.from_array(np.asarray([2.5], np.float32)),
            ),
            helper.make_node("Pow", ["c", "x"], ["y"]),
        ],
        [],
        17,
    ),
    "constants_and_math": (
        [
            helper.make_node("Constant", [], ["k"], value_float=3.0),
            helper.make_node("Sub", ["x", "k"], ["a"]),
            helper.make_node("Abs", ["a"], ["b"]),
            helper.make_node("Sqrt", ["b"], ["c"]),
            helper.make_node("Erf", ["c"], ["d"]),
            helper.make_node("Div", ["d", "k"], ["y"]),
        ],
        [],
        17,
    ),
    "softmax_log_softmax": (
        [
            helper.make_node("Softmax", ["x"], ["s"], axis=1),
            helper.make_node("LogSoftmax", ["s"], ["y"], axis=0),
        ],
        [],
        17,
    ),
    "softmax_opset11_coerced": ([helper.make_node("Softmax", ["x"], ["y"], axis=1)], [], 11),
    "layer_norm_axis": (
        [helper.make_node("LayerNormalization", ["x", "sc"], ["y"], axis=-2, epsilon=1e-3)],
        [numpy_helper.from_array(np.linspace(0.5, 2, 12, dtype=np.float32).reshape(3, 4), "sc")],
        17,
    ),  # fmt: skip
    "split_concat": (
        [
            helper.make_node("Split", ["x", "sz"], ["a", "b"], axis=2),
            helper.make_node("Concat", ["b", "a"], ["y"], axis=2),
        ],
        [_i64("sz", [1, 3])],
        17,
    ),
    "gemm_alpha_beta": (
        [
            helper.make_node("Reshape", ["x", "s"], ["r"]),
            helper.make_node("Gemm", ["r", "w", "c"], ["y"], alpha=0.5, beta=2.0, transA=1),
        ],
        [
            _i64("s", [6, 4]),
            numpy_helper.from_array(np.ones((6, 5), np.float32) * 0.1, "w"),
            numpy_helper.from_array(np.arange(5, dtype=np.float32), "c"),
        ],
        17,
    ),
    "int_div_truncates": (
        [
            helper.make_node("Cast", ["x"], ["xi"], to=I),
            helper.make_node("Div", ["xi", "three"], ["q"]),
            helper.make_node("Cast", ["q"], ["y"], to=F),
        ],
        [_i64("three", -3)],
        17,
    ),
    "gelu_20": ([helper.make_node("Gelu", ["x"], ["y"], approximate="tanh")], [], 20),
}


@pytest.mark.parametrize("name", sorted(OP_GRAPHS))
def test_op_graph_matches_onnxruntime(name, tmp_path):
    nodes, inits, opset = OP_GRAPHS[name]
    model = _model(nodes, [_vi("x", F, [2, 3, 4])], [_vi("y", F, None)], inits, opset)
    path = tmp_path / "op.onnx"
    onnx.save(model, str(path))
    x = (np.random.default_rng(0).standard_normal((2, 3, 4)) * 3).astype(np.float32)
    (expected,) = ort_run(path, {"x": x})
    got = sonnx.load(path).run({"x": x})["y"]
    assert_close(got, expected, what=name)


def _recurrent_model(layout: int, H: int = 3, I_: int = 2):
    rng = np.random.default_rng(5)

    def arr(name, *shape):
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32) / 2, name)

    inits = [
        arr("W", 1, 4 * H, I_),
        arr("R", 1, 4 * H, H),
        arr("B", 1, 8 * H),
        arr("GW", 2, 3 * H, I_),
        arr("GR", 2, 3 * H, H),
        arr("GB", 2, 6 * H),
    ]
    nodes = [
        helper.make_node("LSTM", ["x", "W", "R", "B", "", "h0", "h0"], ["y", "yh", "yc"],
                         hidden_size=H, layout=layout),
        helper.make_node("GRU", ["x", "GW", "GR", "GB", "", "h1"], ["g", "gh"], hidden_size=H,
                         layout=layout, direction="bidirectional"),  # linear_before_reset=0
    ]  # fmt: skip
    # T = 2 steps, batch 4
    x, h0, h1 = (
        ([2, 4, I_], [1, 4, H], [2, 4, H]) if layout == 0 else ([4, 2, I_], [4, 1, H], [4, 2, H])
    )
    ins = [_vi("x", F, x), _vi("h0", F, h0), _vi("h1", F, h1)]
    outs = [_vi(n, F, None) for n in ("y", "yh", "yc", "g", "gh")]
    return _model(nodes, ins, outs, inits)


def test_lstm_gru_onnx_defaults_match_onnxruntime(tmp_path):
    """ONNX-native recurrent nodes: initial states, GRU linear_before_reset=0 (ONNX's
    default), and layout=1 (onnxruntime's CPU kernels lack it: checked against layout=0)."""
    rng = np.random.default_rng(6)
    onnx.save(_recurrent_model(0), str(tmp_path / "r0.onnx"))
    onnx.save(_recurrent_model(1), str(tmp_path / "r1.onnx"))
    feeds = {"x": rng.standard_normal((2, 4, 2)).astype(np.float32),
             "h0": rng.standard_normal((1, 4, 3)).astype(np.float32),
             "h1": rng.standard_normal((2, 4, 3)).astype(np.float32)}  # fmt: skip
    expected = ort_run(tmp_path / "r0.onnx", feeds)
    got = sonnx.load(tmp_path / "r0.onnx").run(feeds)
    for (name, g), e in zip(got.items(), expected):
        assert_close(g, e, what=name)
    swapped = {k: v.transpose(1, 0, 2).copy() for k, v in feeds.items()}
    batchwise = sonnx.load(tmp_path / "r1.onnx").run(swapped)
    to_layout1 = {"y": (2, 0, 1, 3), "g": (2, 0, 1, 3), "yh": (1, 0, 2), "yc": (1, 0, 2),
                  "gh": (1, 0, 2)}  # fmt: skip
    for (name, g), e in zip(batchwise.items(), expected):
        assert_close(g, e.transpose(to_layout1[name]), what=f"layout=1 {name}")


# ---------------------------------------------------------------------------- errors
def test_unsupported_op_names_op_and_node(tmp_path):
    node = helper.make_node("Einsum", ["x", "x"], ["y"], name="my_einsum", equation="ij,ij->i")
    onnx.save(_model([node], [_vi("x", F, [2, 2])], [_vi("y", F, [2])]), str(tmp_path / "e.onnx"))
    with pytest.raises(sonnx.OnnxUnsupportedError, match=r"'Einsum' \(node 'my_einsum'\)"):
        sonnx.load(tmp_path / "e.onnx")


def test_unsupported_attribute_value_is_named(tmp_path):
    node = helper.make_node("ArgMax", ["x"], ["y"], name="am", select_last_index=1)
    onnx.save(_model([node], [_vi("x", F, [2, 2])], [_vi("y", I, None)]), str(tmp_path / "a.onnx"))
    with pytest.raises(sonnx.OnnxUnsupportedError, match="ArgMax node 'am': select_last_index"):
        sonnx.load(tmp_path / "a.onnx").run({"x": np.ones((2, 2), np.float32)})


def test_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.onnx"):
        sonnx.load(tmp_path / "missing.onnx")
    with pytest.raises(sonnx.OnnxError, match="is a folder"):
        sonnx.load(tmp_path)
    (tmp_path / "junk.onnx").write_bytes(b"\xff\xfe not protobuf at all" * 3)
    with pytest.raises(sonnx.OnnxError, match="junk.onnx: not a readable ONNX model"):
        sonnx.load(tmp_path / "junk.onnx")
    init = numpy_helper.from_array(np.zeros(2, np.uint64), "u")
    onnx.save(_model([], [], [], [init]), str(tmp_path / "u64.onnx"))
    with pytest.raises(sonnx.OnnxError, match="initializer 'u'.*UINT64"):
        sonnx.load_onnx_weights(tmp_path / "u64.onnx")


def test_initializer_kinds_and_narrow_ints(tmp_path):
    inits = [numpy_helper.from_array(np.ones(2, np.float32), "a.b:c/d"),
             numpy_helper.from_array(np.asarray([1, -2], np.int32), "idx")]  # fmt: skip
    node = helper.make_node("Gather", ["a.b:c/d", "idx"], ["y"])
    onnx.save(_model([node], [], [_vi("y", F, [2])], inits), str(tmp_path / "k.onnx"))
    m = sonnx.load(tmp_path / "k.onnx")
    assert [n for n, _ in m.named_parameters()] == ["a_b_c_d"]
    assert [(n, t.dtype) for n, t in m.named_buffers()] == [("idx", sc.i64)]
    assert_close(m().numpy(), np.ones(2, np.float32), what="Gather with i32 indices")
