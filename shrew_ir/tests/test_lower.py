"""Lowering: config folding, types, name resolution, infix ops, named args, repeat, spans."""

import pytest
from ir_testkit import compile_source

import shrew_ir
from shrew_ir import Fixed, LoweringError, Symbolic, TensorType


def node(module, name):
    found = module.graph.by_name(name)
    assert found is not None, name
    return found


def test_config_folding_full_expressions_and_forward_references():
    m = compile_source(
        "@config { a: b * 2; b: 3; c: (a + 1) * 2; d: -1; e: 7 / 2; f: 7 % -3; g: 1.5 + 1;"
        " h: zz; i: 2 ** -1; j: a > 5 && b < 4; k: [a, b]; l: if j { \"y\" } else { \"n\" };"
        " m: null ?? 4; n: max(a, 10); }"
    )
    assert m.config == {
        "a": 6, "b": 3, "c": 14, "d": -1, "e": 3, "f": -2, "g": 2.5, "h": "zz", "i": 0.5,
        "j": True, "k": [6, 3], "l": "y", "m": 4, "n": 10,
    }


@pytest.mark.parametrize(
    "src, message, line, column",
    [
        ("@config {\n  a: 1 / 0;\n}", "division by zero", 2, 8),
        ("@config { a: b; b: a; }", "config value 'a' depends on itself", 1, 20),
        ('@config { a: "s" * 2; }', "cannot apply '*' to str and int", 1, 18),
        ("@graph G { input x: Nope; output x; }", "unknown type 'Nope'", 1, 21),
        ("@graph G { node n; output n; }", "node 'n' has no op", 1, 12),
        (
            "@graph G { input x: Tensor<[2], f32>; node n { op: softmax(x, dim: x); }; output n; }",
            "attribute 'dim' must be a compile-time constant: 'x' is a graph value, not a"
            " constant",
            1,
            68,
        ),
        (
            "@graph G { input x: Tensor<[2], f32>;\n node n { op: repeat(-1) { relu(x) }; };"
            " output n; }",
            "repeat count must be a non-negative integer, got -1",
            2,
            22,
        ),
        ('@graph G { param w: Tensor<[2], f32> { init: 3; }; output w; }', "init must be a"
         " string, got 3", 1, 46),
        (
            '@graph G { param w: Tensor<[2], f32> { init: "normal(1)"; }; output w; }',
            "invalid init 'normal(1)': normal(...) takes 2 numbers",
            1,
            46,
        ),
        ("@training { epochs: 0; }", "epochs must be a positive integer, got 0", 1, 13),
    ],
)
def test_lowering_errors(src, message, line, column):
    with pytest.raises(LoweringError) as info:
        compile_source(src, "l.sw")
    err = info.value
    assert (err.message, err.line, err.column, err.filename) == (message, line, column, "l.sw")


def test_lowering_collects_several_errors():
    with pytest.raises(LoweringError) as info:
        compile_source("@config { a: 1 / 0; b: \"x\" - 1; }")
    assert len(info.value.errors) == 2


def test_types_dims_and_aliases():
    m = compile_source(
        "@types { type H = Tensor<[Batch, D * 2, ?, _], f32>; type S = f64; }\n"
        "@config { D: 4; }\n"
        "@graph G(x: H) -> H { param w: Tensor<[D, D / 2 + 1], f32>; input s: S; output x; }"
    )
    g = m.graph
    x = node(m, "x")
    assert x.type == shrew_ir.TensorType((Symbolic("Batch"), Fixed(8), shrew_ir.Dynamic(),
                                          shrew_ir.Dynamic()), "f32")
    assert node(m, "w").type == TensorType((Fixed(4), Fixed(3)), "f32")
    assert str(node(m, "s").type) == "f64"
    assert g.inputs == [x.id, node(m, "s").id]  # the signature parameter became an input
    assert g.declared_return == x.type


def test_infix_operators_become_ops_with_spans():
    m = compile_source(
        "@graph G {\n  input a: Tensor<[2], f32>;\n  input b: Tensor<[2], f32>;\n"
        "  node y { op: a + b * a - -b ** 2.0; };\n  output y;\n}"
    )
    y = node(m, "y")
    assert y.op == "sub" and (y.span.line, y.span.column) == (4, 3)
    ops = sorted(n.op for n in m.graph.nodes.values() if n.op not in ("input",))
    assert ops == ["add", "constant", "mul", "neg", "pow", "sub"]
    pow_node = next(n for n in m.graph.nodes.values() if n.op == "pow")
    assert (pow_node.span.line, pow_node.span.column) == (4, 31)
    assert all(n.span is not None for n in m.graph.nodes.values())


def test_all_infix_operator_mappings():
    ops = {"+": "add", "-": "sub", "*": "mul", "/": "div", "%": "mod", "**": "pow",
           "@": "matmul", "==": "eq", "!=": "ne", "<": "lt", ">": "gt", "<=": "le",
           ">=": "ge", "&&": "and", "||": "or", "&": "bitand", "|": "bitor", "^": "bitxor",
           "<<": "shl", ">>": "shr", "??": "coalesce"}
    for text, op in ops.items():
        m = compile_source(f"@graph G {{ input a: ?; input b: ?; output o: a {text} b; }}")
        assert node(m, "o").op == op


def test_named_args_config_values_and_negative_attributes():
    m = compile_source(
        "@config { H: 4; ax: -2; }\n@graph G { input x: Tensor<[2, 3, 8], f32>;\n"
        "  node a { op: softmax(x, dim: -2); };\n"
        "  node b { op: sum(x, dim: ax, keepdim: true); };\n"
        "  node c { op: multi_head_attention(x, n_heads: H); };\n"
        "  node d { op: transpose(x, 0, 1); };\n  node e { op: reshape(x, [6, -1]); };\n"
        "  node f { op: concat([a, b], dim: -1); };\n  output f; output c; output d; output e; }"
    )
    assert node(m, "a").attrs == {"dim": -2}
    assert node(m, "b").attrs == {"dim": -2, "keepdim": True}
    assert node(m, "c").attrs == {"n_heads": 4}
    assert node(m, "d").attrs == {"dim0": 0, "dim1": 1}
    assert node(m, "e").attrs == {"shape": [6, -1]}
    assert node(m, "f").inputs == [node(m, "a").id, node(m, "b").id]
    assert node(m, "f").attrs == {"dim": -1}


def test_config_constants_and_symbolic_dims_in_graph_expressions():
    m = compile_source(
        "@config { scale: 2 * 4; }\n@graph G { input x: Tensor<[Batch, SeqLen], f32>;\n"
        "  node s { op: x * scale; };\n  node r { op: range(0, SeqLen); };\n"
        "  node k { op: (scale + 1) * 2; };\n  output s; output r; output k; }"
    )
    s = node(m, "s")
    const = m.graph.nodes[s.inputs[1]]
    assert (const.op, const.attrs, const.meta["config"]) == ("constant", {"value": 8}, "scale")
    r = node(m, "r")
    assert [m.graph.nodes[i].op for i in r.inputs] == ["constant", "dim"]
    assert node(m, "k").op == "constant" and node(m, "k").attrs == {"value": 18}


def test_repeat_is_unrolled_with_the_carried_value():
    m = compile_source(
        "@config { L: 3; }\n@graph G { input h: Tensor<[2, 4], f32>;\n"
        "  node t { op: repeat(L) { relu(h) + h }; @hint no_grad; };\n  output t; }"
    )
    g = m.graph
    adds = [n for n in g.nodes.values() if n.op == "add"]
    assert len(adds) == 3
    t = node(m, "t")
    # each iteration consumes the previous iteration's result
    chain = [t]
    while chain[-1].inputs[1] != node(m, "h").id:
        chain.append(g.nodes[chain[-1].inputs[1]])
    assert len(chain) == 3
    assert all(n.hints == ["no_grad"] for n in adds)
    zero = compile_source("@graph G { input h: ?; node t { op: repeat(0) { relu(h) }; };"
                          " output t; }")
    assert node(zero, "t").op == "identity"


def test_if_on_constant_chooses_branch_and_otherwise_lowers_to_where():
    m = compile_source(
        "@config { big: true; }\n@graph G { input x: Tensor<[2], f32>;\n"
        "  node a { op: if big { relu(x) } else { tanh(x) }; };\n"
        "  node b { op: if x > 0.0 { x } else { -x }; };\n  output a; output b; }"
    )
    assert node(m, "a").op == "relu"
    assert node(m, "b").op == "where"


def test_outputs_naming_and_declaration_order_independence():
    m = compile_source(
        "@graph G { output y; output probs: softmax(y); output relu(y);\n"
        "  node y { op: relu(x); }; input x: Tensor<[3], f32>; }"
    )
    assert [o.name for o in m.graph.outputs] == ["y", "probs", "__output_2"]
    assert shrew_ir.check(m) == []


def test_method_calls_and_graph_calls():
    m = compile_source(
        "@graph Inner { input a: Tensor<[2], f32>; output r: relu(a); }\n"
        "@graph Outer { input x: Tensor<[2], f32>; node y { op: x.softmax(dim: 0); };\n"
        "  node z { op: call Inner(y); }; node w { op: Inner(z); }; output w; }"
    )
    outer = m.graphs["Outer"]
    y = outer.by_name("y")
    assert (y.op, y.inputs, y.attrs) == ("softmax", [outer.by_name("x").id], {"dim": 0})
    assert outer.by_name("z").attrs == {"graph": "Inner"}
    assert outer.by_name("w").op == "call"
    assert shrew_ir.check(m) == []
    assert str(outer.by_name("w").type) == "Tensor<[2], f32>"


def test_params_init_frozen_and_extra_attributes():
    m = compile_source(
        '@graph G { param w: Tensor<[2, 2], f32> { init: "normal(0, 0.02)"; frozen: true;'
        ' device: cpu; }; param u: Tensor<[2], f32> { init: "uniform(-1, 1)"; };'
        ' param k: Tensor<[2], f32>; output w; output u; output k; }'
    )
    w, u, k = m.graph.params
    assert (w.init.kind, w.init.args, w.frozen, w.attrs["device"]) == (
        "normal", {"mean": 0.0, "std": 0.02}, True, "cpu")
    assert (u.init.kind, u.init.args) == ("uniform", {"low": -1.0, "high": 1.0})
    assert (k.init.kind, k.frozen) == ("zeros", False)


def test_training_inference_and_side_blocks():
    m = compile_source(
        "@config { base: 0.1; }\n@graph Net { input x: Tensor<[2], f32>; output x; }\n"
        "@training { loss: mse; optimizer: { type: AdamW; lr: base / 10; beta1: 0.9; }\n"
        "  lr_schedule: { warmup: 5; } grad_clip: { type: \"norm\"; max_norm: 1; }\n"
        '  precision: "bf16"; epochs: 3; batch_size: 8; accumulation_steps: 2; seed: 7; }\n'
        "@inference { model: Net; optimizations: [fuse]; generation: { top_k: 5; } }\n"
        "@metrics M { track l { source: loss; } }\n@logging { dir: \"runs\"; }\n"
        "@visualizations { plot p { x: \"step\"; } }"
    )
    t = m.training
    assert t.model == "Net"  # defaults to the first graph
    assert (t.loss, t.optimizer.type, t.optimizer.lr) == ("mse", "AdamW", 0.01)
    assert t.optimizer.extra == {"beta1": 0.9}
    assert t.lr_schedule == {"type": "constant", "warmup": 5}
    assert t.grad_clip == {"type": "norm", "max_norm": 1}
    assert (t.precision, t.epochs, t.batch_size, t.accumulation_steps) == ("bf16", 3, 8, 2)
    assert t.extra == {"seed": 7}
    assert m.inference.optimizations == ["fuse"] and m.inference.generation == {"top_k": 5}
    assert m.metrics == {"M": {"l": {"source": "loss"}}}
    assert m.logging == {"dir": "runs"} and m.visualizations == {"p": {"x": "step"}}


def test_custom_op_calls_keep_named_args():
    m = compile_source(
        "@custom_op swiglu { signature: (x: Tensor<[B, D], f32>, k: i32) ->"
        " Tensor<[B, D], f32>; impl cpu { kernel: \"k\"; } }\n"
        "@graph G { input x: Tensor<[2, 4], f32>; node y { op: swiglu(x, k: 2); }; output y; }"
    )
    y = node(m, "y")
    assert (y.op, y.attrs) == ("custom", {"name": "swiglu", "attrs": {"k": 2}})
    assert m.custom_ops["swiglu"].impls == {"cpu": {"kernel": "k"}}
    assert shrew_ir.check(m) == []
    assert str(m.graph.by_name("y").type) == "Tensor<[B, D], f32>"
