"""Optimisation passes: each alone and through optimize(level), proved semantics-preserving
by running the graph before and after with a NumPy reference interpreter."""

import copy

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ir_testkit import compile_source, random_feeds, run_graph

import shrew_ir
from shrew_ir import OptionsError
from shrew_ir.passes import (
    common_subexpression_elimination,
    constant_folding,
    dead_code_elimination,
    identity_elimination,
    operator_fusion,
    run_pass,
)

HEADER = (
    "input a: Tensor<[3, 4], f64>; input b: Tensor<[3, 4], f64>;"
    " param w: Tensor<[4, 4], f64>; param bias: Tensor<[4], f64>;"
)


def build(body: str):
    module = compile_source(f"@graph G {{ {HEADER} {body} }}")
    assert shrew_ir.check(module) is not None
    return module


def assert_same_results(before, after, seed=0):
    rng = np.random.default_rng(seed)
    feeds = random_feeds(before.graph, rng)
    want = run_graph(before.graph, feeds)
    got = run_graph(after.graph, feeds)
    assert list(want) == list(got)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-12, atol=1e-12, err_msg=name)


def ops_of(module):
    return sorted(n.op for n in module.graph.nodes.values() if n.op not in ("input", "param"))


def test_dce_removes_dead_nodes_but_keeps_inputs_and_params():
    m = build("node dead { op: relu(a) * 2.0; }; node y { op: tanh(b); }; output y;")
    before = copy.deepcopy(m)
    result = run_pass(m, "dce")
    assert result.changed == 3
    assert ops_of(m) == ["tanh"]
    assert [p.name for p in m.graph.params] == ["w", "bias"]  # the original dropped these
    assert [m.graph.nodes[i].name for i in m.graph.inputs] == ["a", "b"]
    assert_same_results(before, m)


def test_cse_merges_identical_and_commuted_expressions():
    m = build(
        "node p { op: a + b; }; node q { op: b + a; }; node r { op: a - b; };"
        " node s { op: b - a; }; output o: p * q + r * s;"
    )
    before = copy.deepcopy(m)
    result = run_pass(m, "cse")
    assert result.changes == ["q merged into p"]
    assert ops_of(m).count("sub") == 2
    assert_same_results(before, m)


def test_cse_keeps_int_and_float_constants_and_impure_ops_apart():
    m = build(
        "node one { op: a * 1; }; node onef { op: a * 1.0; };"
        " node d1 { op: dropout(a, p: 0.1); }; node d2 { op: dropout(a, p: 0.1); };"
        " output o: one + onef + d1 + d2;"
    )
    run_pass(m, "cse")
    consts = [n for n in m.graph.nodes.values() if n.op == "constant"]
    assert sorted(repr(n.attrs["value"]) for n in consts) == ["1", "1.0"]
    assert ops_of(m).count("dropout") == 2


def test_constant_folding():
    m = build(
        "node k { op: a * c; }; node c { op: two * three; };"
        " node two { op: 2.0; }; node three { op: 3.0; }; output k;"
    )
    before = copy.deepcopy(m)
    result = run_pass(m, "const_fold")
    assert result.changes == ["fold: c (mul -> constant)"]
    assert m.graph.by_name("c").attrs == {"value": 6.0}
    assert_same_results(before, m)


def test_constant_folding_leaves_division_by_zero():
    m = build("node z { op: zero; }; node one { op: 1.0; }; node zero { op: 0.0; };"
              " node q { op: one / z; }; output o: a * q;")
    run_pass(m, "const_fold")
    assert m.graph.by_name("q").op == "div"


@pytest.mark.parametrize(
    "expr",
    ["a * 1", "1 * a", "a + 0", "0 + a", "a - 0", "a / 1", "a ** 1", "transpose(transpose(a))",
     "permute(permute(a, [1, 0]), [1, 0])", "reshape(a, [3, 4])", "-(-a)", "dropout(a, p: 0)",
     "cast(a, dtype: \"f64\")", "relu(a)"],
)
def test_identity_elimination_rules(expr):
    m = build(f"node y {{ op: {expr}; }}; output y;")
    before = copy.deepcopy(m)
    result = run_pass(m, "identity")
    if expr == "relu(a)":
        assert result.changed == 0
    else:
        assert result.changed >= 1
        out = m.graph.outputs[0]
        assert (out.name, m.graph.nodes[out.node].name) == ("y", "a")
    assert_same_results(before, m)


def test_identity_elimination_keeps_broadcasting_and_promotion():
    m = build("node y { op: bias + zeros; }; node zeros { op: b * 0.0; }; output y;")
    run_pass(m, "identity")
    assert m.graph.by_name("y").op == "add"  # bias [4] + zeros [3, 4] broadcasts


def test_fusion_matmul_transpose_add_becomes_linear():
    m = build("node y { op: matmul(a, transpose(w)) + bias; }; output y;")
    before = copy.deepcopy(m)
    result = run_pass(m, "fusion")
    y = m.graph.by_name("y")
    assert (y.op, [m.graph.nodes[i].name for i in y.inputs]) == ("linear", ["a", "w", "bias"])
    assert result.changes == [
        "matmul_transpose_to_linear: y.1 (matmul -> linear)",
        "linear_add_bias: y (add -> linear)",
    ]
    run_pass(m, "dce")
    assert ops_of(m) == ["linear"]
    assert_same_results(before, m)


def test_fusion_matmul_add_in_either_operand_order():
    for body in ("bias + matmul(a, w)", "matmul(a, w) + bias"):
        m = build(f"node y {{ op: {body}; }}; output y;")
        before = copy.deepcopy(m)
        run_pass(m, "fusion")
        assert m.graph.by_name("y").op == "matmul_add"
        assert_same_results(before, m)


def test_fusion_does_not_duplicate_shared_work():
    m = build("node mm { op: matmul(a, w); }; output y: mm + bias; output mm;")
    run_pass(m, "fusion")
    assert m.graph.by_name("y").op == "add"


def test_fusion_elementwise_chain():
    m = build("node y { op: relu(a + b) * 2.0 - sigmoid(b); }; output y;")
    before = copy.deepcopy(m)
    result = run_pass(m, "fusion")
    run_pass(m, "dce")
    y = m.graph.by_name("y")
    assert y.op == "fused_elementwise"
    assert y.attrs["expr"] == "(relu(($0 + $1)) * 2.0) - sigmoid($1)"
    assert y.attrs["steps"] == [
        ["add", "$0", "$1"], ["relu", "%0"], ["mul", "%1", 2.0], ["sigmoid", "$1"],
        ["sub", "%2", "%3"],
    ]
    assert [m.graph.nodes[i].name for i in y.inputs] == ["a", "b"]
    assert result.changed == 1 and ops_of(m) == ["fused_elementwise"]
    assert str(y.type) == "Tensor<[3, 4], f64>"
    shrew_ir.infer_shapes(m)
    assert str(y.type) == "Tensor<[3, 4], f64>"
    assert_same_results(before, m)


def test_optimize_levels_and_report():
    body = ("node h { op: matmul(a, transpose(w)) + bias; }; node g { op: relu(h * 1); };"
            " node dead { op: exp(a); }; node g2 { op: relu(h * 1); }; output o: g + g2;")
    for level, expected in [
        (0, ["add", "add", "constant", "constant", "exp", "matmul", "mul", "mul", "relu", "relu",
             "transpose"]),
        (1, ["add", "add", "matmul", "relu", "transpose"]),
        (2, ["fused_elementwise", "linear"]),
    ]:
        m = build(body)
        before = copy.deepcopy(m)
        report = shrew_ir.optimize(m, level=level)
        assert ops_of(m) == expected, level
        assert report.level == level
        assert_same_results(before, m)
    assert report.counts["fusion"] == 3 and report.total == sum(report.counts.values())
    assert report.nodes_before == {"G": 15} and report.nodes_after == {"G": 6}
    assert "optimize(level=2)" in str(report)
    assert any("[dce] removed dead" in c for c in report.changes["G"])


def test_bad_levels_and_pass_names():
    m = build("output a;")
    with pytest.raises(OptionsError):
        shrew_ir.optimize(m, level=7)
    with pytest.raises(OptionsError):
        shrew_ir.optimize(m, passes=["nope"])
    with pytest.raises(OptionsError):
        run_pass(m, "nope")


def test_pass_functions_work_on_single_graphs():
    m = build("node y { op: a + 0; }; output y;")
    shrew_ir.infer_shapes(m)
    for fn in (identity_elimination, dead_code_elimination, common_subexpression_elimination,
               constant_folding, operator_fusion):
        assert fn(m.graph).name in ("identity", "dce", "cse", "const_fold", "fusion")


def test_verifier_catches_a_broken_graph():
    from shrew_ir.passes import verify

    m = build("node y { op: relu(a); }; output y;")
    m.graph.by_name("y").inputs = [999]
    with pytest.raises(shrew_ir.PassError, match="pass 'demo' broke graph 'G'"):
        verify(m.graph, "demo")


# --------------------------------------------------------------------------- random programs

TEMPLATES = [
    "relu({0})", "tanh({0})", "sigmoid({0})", "{0} + {1}", "{0} - {1}", "{0} * {1}",
    "matmul({0}, w)", "matmul({0}, transpose(w))", "matmul({0}, transpose(w)) + bias",
    "matmul({0}, w) + bias", "{0} * 1", "{0} + 0", "transpose(transpose({0}))",
    "{0} * (2.0 * 0.5)", "{0} + bias", "softmax({0})", "-(-{0})", "{0} / 1", "square({0})",
    "maximum({0}, {1})", "silu({0})",
]


@st.composite
def programs(draw):
    names = ["a", "b"]
    lines = []
    for i in range(draw(st.integers(1, 10))):
        template = draw(st.sampled_from(TEMPLATES))
        x = draw(st.sampled_from(names))
        y = draw(st.sampled_from(names))
        lines.append(f"node n{i} {{ op: {template.format(x, y)}; }};")
        names.append(f"n{i}")
    outs = {names[-1], draw(st.sampled_from(names))}
    lines += [f"output {o};" for o in sorted(outs)]
    return " ".join(lines)


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(programs(), st.sampled_from([1, 2, "dce", "identity", "const_fold", "cse", "fusion"]))
def test_random_programs_keep_their_results(body, how):
    m = build(body)
    before = copy.deepcopy(m)
    if isinstance(how, int):
        shrew_ir.optimize(m, level=how)
    else:
        run_pass(m, how)
    assert_same_results(before, m)
    assert shrew_ir.validate(m) == [] or all(d.severity == "warning" for d in shrew_ir.validate(m))
