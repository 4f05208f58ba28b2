"""The op table: coverage of the spec's ops and the README's op reference."""

from ir_testkit import PACKAGE_ROOT

from shrew_ir import ops as O

REQUIRED = """matmul add sub mul div pow neg relu gelu silu sigmoid tanh exp log sqrt softmax
log_softmax linear embedding layer_norm rms_norm batch_norm dropout transformer_block
multi_head_attention conv1d conv2d max_pool1d max_pool2d avg_pool1d avg_pool2d reshape
transpose permute concat split flatten sum mean var max min cross_entropy mse_loss constant
range identity mod eq ne lt gt le ge and or not expand""".split()
SPEC_ALIASES = """mm swish Embedding Linear LayerNorm BatchNorm MultiHeadAttention
TransformerBlock cat Dropout cross_entropy_loss view""".split()


def test_required_ops_and_aliases_exist():
    missing = [name for name in REQUIRED if name not in O.OPS]
    assert missing == []
    assert [a for a in SPEC_ALIASES if O.lookup(a) is None] == []


def test_table_is_consistent():
    for op in O.OPS.values():
        assert op.min_inputs >= 0
        assert op.max_inputs == -1 or op.max_inputs >= op.min_inputs, op.name
        for name, spec in op.attrs.items():
            assert spec.type.rstrip("?") in {
                "int", "float", "bool", "str", "int_list", "int_or_list", "dims", "any"
            }, (op.name, name)
            if not spec.required and spec.default is not None:
                assert O.check_attr(spec, spec.default), (op.name, name)
    assert set(O.ALIASES.values()) <= set(O.OPS)


def test_readme_op_reference_is_generated_from_the_table():
    readme = (PACKAGE_ROOT / "README.md").read_text()
    assert O.markdown_table() in readme, "regenerate with python -m shrew_ir.ops"
