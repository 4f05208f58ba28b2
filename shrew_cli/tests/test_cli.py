"""The `shrew` command end to end: exit codes, rendered errors, tables, training."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from shrew_cli.main import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "sw"


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_validate_ok_and_error(capsys, tmp_path):
    code, out, _ = run(capsys, "validate", EXAMPLES / "iris.sw")
    assert code == 0 and "ok: 1 graph(s)" in out
    bad = tmp_path / "bad.sw"
    bad.write_text(
        "@graph g {\n  input x: Tensor<[2], f32>;\n  node y { op: x + zz; };\n  output y;\n}\n"
    )
    code, out, err = run(capsys, "validate", bad)
    assert code == 1 and "1 error(s)" in out
    assert "undefined name 'zz'" in err and f"{bad}:3:20" in err and "^^" in err


def test_syntax_error_is_rendered_with_a_caret(capsys, tmp_path):
    bad = tmp_path / "syntax.sw"
    bad.write_text("@graph g { node y { op: relu(x +; }; }\n")
    code, _, err = run(capsys, "dump", bad)
    assert code == 1 and f"{bad}:1:33" in err and "^" in err


def test_dump_text_and_dot(capsys):
    code, out, _ = run(capsys, "dump", EXAMPLES / "iris.sw", "--optimize", "2")
    assert code == 0 and "matmul_add" in out and "graph forward" in out
    code, out, _ = run(capsys, "dump", EXAMPLES / "iris.sw", "--dot")
    assert code == 0 and out.startswith("digraph")


def test_info_table(capsys):
    code, out, _ = run(capsys, "info", EXAMPLES / "tiny_gpt.sw")
    assert code == 0
    assert "TinyGPT v0.1.0" in out and "12,997,376" in out and "optimizer AdamW" in out


def test_run_with_given_and_random_inputs(capsys, tmp_path):
    x = tmp_path / "x.npy"
    np.save(x, np.ones((3, 4), np.float32))
    out_file = tmp_path / "out.npz"
    code, out, _ = run(
        capsys, "run", EXAMPLES / "iris.sw", "--input", f"x={x}", "--seed", "0", "--save", out_file
    )
    assert code == 0 and "3x3" in out
    assert np.load(out_file)["out"].shape == (3, 3)
    code, out, _ = run(capsys, "run", EXAMPLES / "mnist_mlp.sw", "--dim", "Batch=2")
    assert code == 0 and "float32" in out


def test_train_on_bundled_data(capsys, tmp_path):
    params = tmp_path / "params.npz"
    code, out, err = run(
        capsys,
        "train",
        EXAMPLES / "wine.sw",
        "--data",
        "wine",
        "--epochs",
        "25",
        "--seed",
        "0",
        "--save",
        params,
    )
    assert code == 0, err
    test_row = [line for line in out.splitlines() if line.startswith("test")][0]
    assert float(test_row.split()[-1]) >= 0.85
    assert "epoch 25/25" in err and "forward/w1" in np.load(params).files


def test_train_from_npz(capsys, tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 4)).astype(np.float32)
    data = tmp_path / "d.npz"
    np.savez(data, x=x, y=(x[:, 0] > 0).astype(np.int64))
    src = tmp_path / "m.sw"
    src.write_text(
        (EXAMPLES / "iris.sw").read_text() + "\n@training { loss: cross_entropy; "
        'optimizer: { type: "Adam"; lr: 0.05; } epochs: 5; batch_size: 8; }\n'
    )
    code, out, err = run(capsys, "train", src, "--data", data)
    assert code == 0, err
    assert "test" in out and "accuracy" in out


def test_clear_errors(capsys, tmp_path):
    code, _, err = run(capsys, "train", EXAMPLES / "tiny_gpt.sw", "--data", "iris")
    assert code == 1 and "mixed-precision training is not implemented" in err
    code, _, err = run(capsys, "train", EXAMPLES / "wine.sw", "--data", tmp_path / "none.npz")
    assert code == 2 and "no such file" in err  # a command-line mistake


def test_bench(capsys):
    code, out, _ = run(capsys, "bench", EXAMPLES / "iris.sw", "--iters", "2")
    assert code == 0 and "fwd+bwd ms" in out


def test_console_script_is_installed():
    script = shutil.which("shrew") or str(Path(sys.executable).parent / "shrew")
    result = subprocess.run(
        [script, "validate", str(EXAMPLES / "demo_mlp.sw")], capture_output=True, text=True
    )
    assert result.returncode == 0 and "ok" in result.stdout
