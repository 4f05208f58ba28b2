"""Example programs (examples/sw and the originals) parse, lower and validate; golden dumps.

Set SHREW_UPDATE_GOLDEN=1 to rewrite the golden files after an intended change.
"""

import os

import pytest
from ir_testkit import (
    EXAMPLE_FILES,
    EXAMPLES,
    GOLDEN,
    SHARED_EXAMPLES,
    SHARED_FILES,
    errors_of,
)

import shrew_ir

UPDATE = os.environ.get("SHREW_UPDATE_GOLDEN") == "1"


def load(path):
    module = shrew_ir.lower(shrew_ir.parse_file(path))
    diags = shrew_ir.validate(module)
    assert errors_of(diags) == [], [d.render() for d in diags]
    return module, diags


@pytest.mark.parametrize("name", EXAMPLE_FILES)
def test_examples_validate_without_errors_or_warnings(name):
    module, diags = load(EXAMPLES / name)
    assert diags == [], [d.render() for d in diags]
    assert module.graphs


def test_original_examples_validate_without_errors():
    if not SHARED_EXAMPLES.is_dir():
        pytest.skip("shared/sw-examples is not checked out beside the repository")
    for name in SHARED_FILES:
        load(SHARED_EXAMPLES / name)


def _golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE or not path.exists():
        path.write_text(text)
    assert text == path.read_text(), f"{name} changed; rerun with SHREW_UPDATE_GOLDEN=1"


@pytest.mark.parametrize("name", EXAMPLE_FILES)
def test_golden_dumps(name):
    module, _ = load(EXAMPLES / name)
    stem = name.removesuffix(".sw")
    _golden(f"{stem}.dump", shrew_ir.dump(module))
    shrew_ir.optimize(module, level=2)
    assert errors_of(shrew_ir.validate(module)) == []
    _golden(f"{stem}.opt.dump", shrew_ir.dump(module))


def test_dump_is_stable_across_runs():
    a, _ = load(EXAMPLES / "tiny_gpt.sw")
    b, _ = load(EXAMPLES / "tiny_gpt.sw")
    assert shrew_ir.dump(a) == shrew_ir.dump(b)
    assert shrew_ir.dump(a.graph, spans=False).startswith("graph Forward (18 nodes)")


def test_dot_export():
    module, _ = load(EXAMPLES / "demo_mlp.sw")
    dot = shrew_ir.to_dot(module)
    assert dot.startswith("digraph shrew {") and dot.rstrip().endswith("}")
    assert 'label="Forward";' in dot
    assert 'g0_n0 -> g0_n9 [label="Tensor<[4, 2], f64>"];' in dot
    assert "shape=doublecircle" in dot
    assert dot.count(" -> ") == sum(len(n.inputs) for n in module.graph.nodes.values()) + 1


def test_load_helper_checks_and_optimises():
    module = shrew_ir.load(EXAMPLES / "mnist_mlp.sw", optimize_level=2)
    assert [n.op for n in module.graph.nodes.values()].count("linear") == 2
