"""@import: relative resolution, alias namespace, cycles and missing files."""

import pytest

import shrew_ir
from shrew_ir import IRImportError, parse_file


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_import_relative_to_the_importing_file_with_alias(tmp_path):
    write(tmp_path / "lib" / "dims.sw", "@config { width: 8; eps: 1e-6; }\n")
    main = write(
        tmp_path / "main.sw",
        '@import "lib/dims.sw" as d;\n'
        "@graph G { input x: Tensor<[2, d::width], f32>;\n"
        "  node y { op: layer_norm(x, eps: d::eps); }; output y; }\n",
    )
    module = shrew_ir.lower(parse_file(main))
    assert list(module.imports) == ["d"]
    assert module.imports["d"].config == {"width": 8, "eps": 1e-6}
    node = module.graph.by_name("y")
    assert node.attrs == {"eps": 1e-6}
    assert shrew_ir.check(module) == []


def test_alias_defaults_to_file_stem_and_nested_imports(tmp_path):
    write(tmp_path / "a" / "inner.sw", "@config { k: 3; }\n")
    write(tmp_path / "a" / "mid.sw", '@import "inner.sw";\n@config { m: 1; }\n')
    main = write(tmp_path / "main.sw", '@import "a/mid.sw";\n')
    program = parse_file(main)
    assert list(program.imports) == ["mid"]
    assert list(program.imports["mid"].imports) == ["inner"]


def test_missing_file_is_a_clear_error(tmp_path):
    main = write(tmp_path / "main.sw", '@model { name: "m"; }\n@import "nope.sw" as n;\n')
    with pytest.raises(IRImportError) as info:
        parse_file(main)
    err = info.value
    assert err.message.startswith("imported file not found: 'nope.sw'")
    assert (err.filename, err.line, err.column) == (str(main), 2, 1)


def test_import_cycle_is_detected(tmp_path):
    write(tmp_path / "a.sw", '@import "b.sw";\n')
    write(tmp_path / "b.sw", '\n@import "a.sw";\n')
    with pytest.raises(IRImportError) as info:
        parse_file(tmp_path / "a.sw")
    assert info.value.message == "import cycle: a.sw -> b.sw -> a.sw"
    assert (info.value.line, info.value.column) == (2, 1)
    assert info.value.filename == str((tmp_path / "b.sw").resolve())


def test_self_import_and_duplicate_alias(tmp_path):
    write(tmp_path / "s.sw", '@import "s.sw";\n')
    with pytest.raises(IRImportError, match="import cycle: s.sw -> s.sw"):
        parse_file(tmp_path / "s.sw")
    write(tmp_path / "x.sw", "")
    write(tmp_path / "m.sw", '@import "x.sw" as q;\n@import "x.sw" as q;\n')
    with pytest.raises(IRImportError, match="alias 'q' is used twice"):
        parse_file(tmp_path / "m.sw")


def test_syntax_error_in_imported_file_names_that_file(tmp_path):
    write(tmp_path / "bad.sw", "@config { a: ; }\n")
    main = write(tmp_path / "main.sw", '@import "bad.sw";\n')
    with pytest.raises(shrew_ir.ParseError) as info:
        parse_file(main)
    assert info.value.filename.endswith("bad.sw")
    assert (info.value.line, info.value.column) == (1, 14)


def test_unresolved_import_from_a_string_is_a_warning():
    module = shrew_ir.lower(shrew_ir.parse('@import "x.sw" as x;\n'))
    (diag,) = shrew_ir.validate(module)
    assert diag.severity == "warning" and "not resolved" in diag.message
    assert (diag.line, diag.column) == (1, 1)
