"""Shape inference: one rule per op family, symbolic dims carried through."""

import pytest
from ir_testkit import compile_source, errors_of

import shrew_ir
from shrew_ir import ShapeError

INPUTS = (
    "input x: Tensor<[Batch, 8], f32>; input s: Tensor<[Batch, SeqLen, 16], f32>;"
    " input i: Tensor<[Batch, SeqLen], i64>; input m: Tensor<[2, 3], f32>;"
    " input img: Tensor<[4, 3, 32, 32], f32>; input seq: Tensor<[4, 2, 50], f32>;"
    " param w: Tensor<[8, 5], f32>; param lw: Tensor<[5, 8], f32>; param b: Tensor<[5], f32>;"
    " param emb: Tensor<[100, 16], f32>; param k: Tensor<[6, 3, 5, 5], f32>;"
    " param k1: Tensor<[7, 2, 3], f32>; input flag: Tensor<[Batch, 8], bool>;"
)


def out_type(expr, dims=None):
    module = compile_source(f"@graph G {{ {INPUTS} output o: {expr}; }}")
    diags = shrew_ir.infer_shapes(module, dims)
    assert errors_of(diags) == [], [str(d) for d in diags]
    return str(module.graph.by_name("o").type)


@pytest.mark.parametrize(
    "expr, expected",
    [
        ("relu(x)", "Tensor<[Batch, 8], f32>"),
        ("exp(i)", "Tensor<[Batch, SeqLen], f32>"),
        ("x * 2", "Tensor<[Batch, 8], f32>"),
        ("i * 1.5", "Tensor<[Batch, SeqLen], f32>"),
        ("x + x * 0.0 + x", "Tensor<[Batch, 8], f32>"),
        ("s + emb[0]", "Tensor<[Batch, SeqLen, 16], f32>"),
        ("x > 0.0", "Tensor<[Batch, 8], bool>"),
        ("where(flag, x, 0.0)", "Tensor<[Batch, 8], f32>"),
        ("matmul(x, w)", "Tensor<[Batch, 5], f32>"),
        ("x @ w + b", "Tensor<[Batch, 5], f32>"),
        ("matmul(s, transpose(s))", "Tensor<[Batch, SeqLen, SeqLen], f32>"),
        ("linear(x, lw, b)", "Tensor<[Batch, 5], f32>"),
        ("softmax(x, dim: 0)", "Tensor<[Batch, 8], f32>"),
        ("layer_norm(s, eps: 1e-6)", "Tensor<[Batch, SeqLen, 16], f32>"),
        ("rms_norm(s)", "Tensor<[Batch, SeqLen, 16], f32>"),
        ("dropout(s, p: 0.1)", "Tensor<[Batch, SeqLen, 16], f32>"),
        ("embedding(i, emb)", "Tensor<[Batch, SeqLen, 16], f32>"),
        ("transformer_block(s, n_heads: 4)", "Tensor<[Batch, SeqLen, 16], f32>"),
        ("multi_head_attention(s, s, s, n_heads: 2)", "Tensor<[Batch, SeqLen, 16], f32>"),
        ("conv2d(img, k, stride: 2, padding: 2)", "Tensor<[4, 6, 16, 16], f32>"),
        ("conv1d(seq, k1)", "Tensor<[4, 7, 48], f32>"),
        ("max_pool2d(img, kernel_size: 2)", "Tensor<[4, 3, 16, 16], f32>"),
        ("avg_pool1d(seq, kernel_size: 5, stride: 5)", "Tensor<[4, 2, 10], f32>"),
        ("adaptive_avg_pool2d(img, output_size: 1)", "Tensor<[4, 3, 1, 1], f32>"),
        ("reshape(m, [3, -1])", "Tensor<[3, 2], f32>"),
        ("reshape(x, [Batch, 2, 4])", "Tensor<[Batch, 2, 4], f32>"),
        ("flatten(img, start_dim: 1)", "Tensor<[4, 3072], f32>"),
        ("flatten(s, start_dim: 1)", "Tensor<[Batch, (SeqLen * 16)], f32>"),
        ("squeeze(unsqueeze(m, dim: 0), dim: 0)", "Tensor<[2, 3], f32>"),
        ("transpose(m)", "Tensor<[3, 2], f32>"),
        ("permute(img, [0, 2, 3, 1])", "Tensor<[4, 32, 32, 3], f32>"),
        ("concat([m, m], dim: 0)", "Tensor<[4, 3], f32>"),
        ("concat(s, s, dim: -1)", "Tensor<[Batch, SeqLen, 32], f32>"),
        ("stack([m, m, m], dim: 1)", "Tensor<[2, 3, 3], f32>"),
        ("split(m, chunks: 3, dim: 1)[2]", "Tensor<[2, 1], f32>"),
        ("m[1]", "Tensor<[3], f32>"),
        ("m[0:1]", "Tensor<[1, 3], f32>"),
        ("expand(b, [3, 5])", "Tensor<[3, 5], f32>"),
        ("sum(s, dim: -1)", "Tensor<[Batch, SeqLen], f32>"),
        ("mean(s, dim: [1, 2], keepdim: true)", "Tensor<[Batch, 1, 1], f32>"),
        ("sum(m)", "f32"),
        ("argmax(x, dim: 1)", "Tensor<[Batch], i64>"),
        ("var(x, dim: 0)", "Tensor<[8], f32>"),
        ("cross_entropy(x, i)", "f32"),
        ("mse_loss(x, x, reduction: \"none\")", "Tensor<[Batch, 8], f32>"),
        ("range(0, SeqLen)", "Tensor<[SeqLen], i64>"),
        ("range(2, 10, 2)", "Tensor<[4], i64>"),
        ("0..5", "Tensor<[5], i64>"),
        ("cast(i, dtype: \"f32\")", "Tensor<[Batch, SeqLen], f32>"),
        ("clamp(x, min: 0.0)", "Tensor<[Batch, 8], f32>"),
    ],
)
def test_op_shapes(expr, expected):
    assert out_type(expr) == expected


def test_symbolic_dims_are_substituted_when_bound():
    assert out_type("range(0, SeqLen)", {"SeqLen": 12}) == "Tensor<[12], i64>"
    assert out_type("matmul(s, transpose(s))", {"Batch": 2}) == (
        "Tensor<[2, SeqLen, SeqLen], f32>"
    )


@pytest.mark.parametrize(
    "expr, message",
    [
        ("softmax(m, dim: 2)", "softmax: dim 2 out of range for rank-2 tensor Tensor<[2, 3], f32>"),
        ("reshape(m, [4, 2])", "reshape: cannot reshape Tensor<[2, 3], f32> (6 elements) to"
         " [4, 2] (8 elements)"),
        ("linear(x, w)", "linear: input features 8 do not match weight Tensor<[8, 5], f32>"
         " (expects [out, in] = [.., 8])"),
        ("concat([m, x])", "concat: shapes differ outside dim 0: Tensor<[2, 3], f32> vs"
         " Tensor<[Batch, 8], f32>"),
        ("permute(m, [0, 0])", "permute: dims [0, 0] are not a permutation of 2 dims of"
         " Tensor<[2, 3], f32>"),
        ("conv2d(x, k)", "conv2d: expects input [N, C, H, W] and weight of rank 4, got"
         " Tensor<[Batch, 8], f32> and Tensor<[6, 3, 5, 5], f32>"),
        ("split(m, chunks: 2, dim: 1)", "split: dim 1 of size 3 is not divisible into 2 chunks"),
        ("layer_norm(s, b)", "layer_norm: weight Tensor<[5], f32> does not match the trailing"
         " dims of the input Tensor<[Batch, SeqLen, 16], f32>"),
        ("transformer_block(s, n_heads: 5)", "transformer_block: embedding dim 16 is not"
         " divisible by n_heads=5"),
    ],
)
def test_shape_errors(expr, message):
    module = compile_source(f"@graph G {{ {INPUTS} output o: {expr}; }}")
    errors = errors_of(shrew_ir.infer_shapes(module))
    assert [e.message for e in errors] == [message]
    with pytest.raises(ShapeError):
        shrew_ir.infer_shapes(module, strict=True)


def test_embedding_table_first_is_reordered_with_a_warning():
    module = compile_source(f"@graph G {{ {INPUTS} output o: embedding(emb, i); }}")
    (diag,) = shrew_ir.infer_shapes(module)
    assert diag.severity == "warning"
    o = module.graph.by_name("o")
    assert str(o.type) == "Tensor<[Batch, SeqLen, 16], f32>"
    assert [module.graph.nodes[n].name for n in o.inputs] == ["i", "emb"]


def test_unknown_inputs_give_unknown_without_errors():
    module = compile_source("@graph G { input q: ?; output o: relu(q) + 1; }")
    assert shrew_ir.infer_shapes(module) == []
    assert str(module.graph.by_name("o").type) == "?"


def test_every_op_has_a_working_rule():
    from shrew_ir.ops import OPS

    for op in OPS.values():
        assert callable(op.infer), op.name
