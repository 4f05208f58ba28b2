"""Validation: each error kind with its exact line/column; the seed README snippet."""

import pytest
from ir_testkit import DATA, REPO_ROOT, compile_source, errors_of

import shrew_ir
from shrew_ir import ValidationError


def diags_for(src):
    return shrew_ir.validate(compile_source(src, "v.sw"))


def only_error(src):
    errors = errors_of(diags_for(src))
    assert len(errors) == 1, [str(e) for e in errors]
    return errors[0]


X = "input x: Tensor<[2, 3], f32>;"


@pytest.mark.parametrize(
    "src, message, line, column",
    [
        ("@graph G { input x: Tensor<[2], f32>; }", "graph 'G' has no outputs", 1, 1),
        (f"@graph G {{ {X}\n  node x {{ op: relu(x); }};\n  output x; }}",
         "duplicate name 'x'", 2, 3),
        (f"@graph G {{ {X}\n  node y {{ op: relu(z); }};\n  output y; }}",
         "undefined name 'z'", 2, 21),
        (f"@graph G {{ {X}\n  node y {{ op: rleu(x); }};\n  output y; }}",
         "unknown op 'rleu'", 2, 3),
        (f"@graph G {{ {X}\n  node y {{ op: relu(x, x); }};\n  output y; }}",
         "relu expects 1 input, got 2", 2, 3),
        (f"@graph G {{ {X}\n  node y {{ op: matmul(x); }};\n  output y; }}",
         "matmul expects 2 inputs, got 1", 2, 3),
        (f"@graph G {{ {X}\n  node y {{ op: softmax(x, dim: \"last\"); }};\n  output y; }}",
         "softmax: attribute 'dim' must be an int, got 'last'", 2, 3),
        (f"@graph G {{ {X}\n  node y {{ op: softmax(x, axis: 1); }};\n  output y; }}",
         "softmax has no attribute 'axis'", 2, 3),
        (f"@graph G {{ {X}\n  node y {{ op: reshape(x); }};\n  output y; }}",
         "reshape requires the attribute 'shape'", 2, 3),
        (f"@graph G {{ {X}\n  node a {{ op: relu(b); }};\n  node b {{ op: relu(a); }};\n"
         "  output b; }", "cycle detected: a -> b -> a", 2, 3),
        ("@graph G { param w: f32; output w; }", "param 'w' must have a Tensor type, got f32",
         1, 12),
        ("@graph G { input a: Tensor<[2], f32>;\n input b: Tensor<[2], f64>;\n"
         " node y { op: a + b; };\n output y; }",
         "add: dtype mismatch: Tensor<[2], f32> vs Tensor<[2], f64>", 3, 2),
        ("@graph G { input a: Tensor<[2, 3], f32>;\n input b: Tensor<[4, 3], f32>;\n"
         " node y { op: matmul(a, b); };\n output y; }",
         "matmul: inner dimensions differ: Tensor<[2, 3], f32> @ Tensor<[4, 3], f32> (3 vs 4)",
         3, 2),
        ("@graph G { input a: Tensor<[2, 3], f32>;\n input b: Tensor<[4], f32>;\n"
         " output y: a * b; }",
         "mul: cannot broadcast shapes [2, 3] and [4] (3 vs 4)", 3, 2),
        ("@graph G { input t: Tensor<[2], f32>;\n input w: Tensor<[5, 4], f32>;\n"
         " output e: embedding(t, w); }",
         "embedding: indices must be an integer tensor, got Tensor<[2], f32>", 3, 2),
        ("@graph G { input a: Tensor<[2, 3], f32>;\n"
         " node y: Tensor<[2, 4], f32> { op: relu(a); };\n"
         " output y; }",
         "node 'y' is declared as Tensor<[2, 4], f32> but computes Tensor<[2, 3], f32>", 2, 2),
        ("@config { d: 6; h: 4; }\n@graph G { input a: Tensor<[2], f32>;\n"
         " @assert d % h == 0, \"d divisible by h\";\n output a; }",
         "assertion failed: d % h == 0 (d divisible by h)", 3, 2),
        ("@graph G { input a: Tensor<[2], f32>; output a; }\n@training { model: F; }",
         "@training references unknown graph 'F'", 2, 13),
        ("@graph G { input a: Tensor<[2], f32>; output a; }\n@training { loss: hinge; }",
         "unknown loss 'hinge'", 2, 13),
        ("@graph G { input a: Tensor<[2], f32>;\n output b: call H(a); }",
         "call to unknown graph 'H'", 2, 2),
        ("@graph H { input p: ?; input q: ?; output p; }\n"
         "@graph G { input a: Tensor<[2], f32>;\n output b: call H(a); }",
         "graph 'H' takes 2 input(s), got 1", 3, 2),
    ],
)
def test_each_error_kind(src, message, line, column):
    err = only_error(src)
    assert (err.message, err.line, err.column, err.span.filename) == (
        message, line, column, "v.sw")
    assert err.render().startswith(f"error: {message}\n --> v.sw:{line}:{column}")


def test_duplicate_note_points_at_the_first_declaration():
    err = only_error(f"@graph G {{ {X}\n  param x: Tensor<[1], f32>;\n  output x; }}")
    (note, span) = err.notes[0]
    assert (span.line, span.column) == (1, 12)
    assert "first declared here" in err.render()


def test_unknown_op_suggests_a_close_name():
    err = only_error(f"@graph G {{ {X} output y: sofmax(x); }}")
    assert err.hint.startswith("did you mean 'softmax'")


def test_unused_values_are_warnings():
    diags = diags_for(
        "@graph G {\n  input x: Tensor<[2], f32>;\n  input spare: Tensor<[2], f32>;\n"
        "  param w: Tensor<[2], f32>;\n  node dead { op: relu(x); };\n  output x; }"
    )
    assert [(d.severity, d.message, d.line) for d in diags] == [
        ("warning", "unused input 'spare'", 3),
        ("warning", "unused param 'w'", 4),
        ("warning", "unused value 'dead'", 5),
    ]


def test_assertions_use_bound_dims():
    module = compile_source(
        "@graph G { input x: Tensor<[Batch, SeqLen], f32>;\n"
        " @assert SeqLen <= 8, \"too long\";\n output x; }"
    )
    assert shrew_ir.validate(module) == []
    assert shrew_ir.validate(module, dims={"SeqLen": 4}) == []
    (err,) = shrew_ir.validate(module, dims={"SeqLen": 9})
    assert (err.message, err.line) == ("assertion failed: SeqLen <= 8 (too long)", 2)


def test_check_raises_validation_error_with_every_error():
    module = compile_source("@graph G { output a: relu(b); output c: relu(d); }")
    with pytest.raises(ValidationError) as info:
        shrew_ir.check(module)
    assert [e.message for e in info.value.errors] == ["undefined name 'b'", "undefined name 'd'"]


SEED_UNDEFINED = [("positions", 15, 40), ("ln_w", 18, 44), ("ln_b", 18, 50)]


def test_seed_readme_snippet_reports_exactly_its_undefined_names():
    text = (DATA / "seed_tinygpt.sw").read_text()
    module = shrew_ir.lower(shrew_ir.parse(text, "README.md"))
    errors = errors_of(shrew_ir.validate(module))
    assert [(e.message, e.line, e.column) for e in errors] == [
        (f"undefined name '{name}'", line, col) for name, line, col in SEED_UNDEFINED
    ]
    assert module.config["d_ff"] == 1024


def test_seed_snippet_matches_the_seed_readme_when_available():
    readme = REPO_ROOT.parent / "shared" / "seed" / "shrew-README.md"
    if not readme.is_file():
        pytest.skip("shared/seed is not checked out beside the repository")
    text = readme.read_text()
    start = text.index("```sw\n") + len("```sw\n")
    snippet = text[start : text.index("```", start)]
    assert snippet == (DATA / "seed_tinygpt.sw").read_text()
