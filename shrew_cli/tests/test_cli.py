"""The `shrew` command end to end: exit codes, rendered errors, tables, training."""

from __future__ import annotations

import re
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
    assert code == 1 and "tokens" in err  # float features fed to an i64 token input
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


def test_version_and_unknown_command(capsys):
    import pytest

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == "shrew 0.1.0"
    with pytest.raises(SystemExit) as e:
        main(["frobnicate", "x.sw"])
    assert e.value.code == 2 and "invalid choice: 'frobnicate'" in capsys.readouterr().err


def test_user_errors_are_one_line_without_traceback(tmp_path):
    script = shutil.which("shrew") or str(Path(sys.executable).parent / "shrew")
    bad = tmp_path / "bad.sw"
    bad.write_text("@graph g { node y { op: relu(x +; }; }\n")
    cases = [
        (["run", str(tmp_path / "missing.sw")], 2, "no such file"),
        (["run", str(EXAMPLES / "iris.sw"), "--dim", "Batch"], 2, "--dim expects NAME=N"),
        (["dump", str(bad)], 1, f"{bad}:1:33"),
        (
            ["export", str(EXAMPLES / "iris.sw"), "-o", str(tmp_path / "x.txt")],
            2,
            "expected one of",
        ),
        (["run", str(EXAMPLES / "iris.sw"), "--graph", "nope"], 2, "no such graph"),
        (["train", str(EXAMPLES / "wine.sw")], 2, "train needs --data"),
    ]
    for argv, code, text in cases:
        result = subprocess.run([script, *argv], capture_output=True, text=True)
        assert result.returncode == code, (argv, result.stderr)
        assert text in result.stderr and "Traceback" not in result.stderr, (argv, result.stderr)


def test_json_output_is_one_document(capsys):
    import json

    code, out, _ = run(capsys, "info", EXAMPLES / "wine.sw", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["graphs"][0]["params"] == 6 and doc["training"]["loss"]
    code, out, _ = run(capsys, "run", EXAMPLES / "iris.sw", "--dim", "Batch=5", "--json")
    assert json.loads(out)["outputs"]["out"]["shape"] == [5, 3]
    code, out, _ = run(capsys, "validate", EXAMPLES / "iris.sw", "--json")
    assert json.loads(out)["ok"] is True


def test_train_save_then_run_and_export_with_params(capsys, tmp_path):
    import onnxruntime as ort
    import safetensors.numpy

    params = tmp_path / "wine.shrew"
    code, _, err = run(capsys, "train", EXAMPLES / "wine.sw", "--data", "wine", "--epochs", "3",
                       "--save", params)  # fmt: skip
    assert code == 0, err
    code, out, err = run(capsys, "export", EXAMPLES / "wine.sw", "-o", tmp_path / "w.safetensors",
                         "--params", params)  # fmt: skip
    assert code == 0, err
    import shrew.io

    saved = shrew.io.load(params)
    exported = safetensors.numpy.load_file(tmp_path / "w.safetensors")
    assert sorted(exported) == sorted(saved)
    for k, v in exported.items():
        np.testing.assert_array_equal(v, saved[k].numpy())
    onnx_path = tmp_path / "wine.onnx"
    code, out, err = run(
        capsys, "export", EXAMPLES / "wine.sw", "-o", onnx_path, "--params", params
    )
    assert code == 0 and "as ONNX (opset 17)" in out, err
    x = np.random.default_rng(0).standard_normal((4, 13)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    feed, saved_out = f"x={tmp_path / 'x.npy'}", tmp_path / "o.npz"
    code, out, err = run(capsys, "run", EXAMPLES / "wine.sw", "--params", params,
                         "--input", feed, "--save", saved_out)  # fmt: skip
    assert code == 0, err
    (ours,) = np.load(saved_out).values()
    (theirs,) = ort.InferenceSession(str(onnx_path)).run(None, {"x": x})
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_import_onnx_as_an_editable_program(capsys, tmp_path):
    onnx_path, sw_path = tmp_path / "iris.onnx", tmp_path / "iris_imported.sw"
    assert run(capsys, "export", EXAMPLES / "iris.sw", "-o", onnx_path, "--seed", "3")[0] == 0
    code, out, err = run(capsys, "import", onnx_path, "-o", sw_path)
    assert code == 0 and sw_path.exists() and (tmp_path / "iris_imported.safetensors").exists(), err
    code, out, err = run(capsys, "validate", sw_path)
    assert code == 0, err
    x = np.ones((2, 4), np.float32)
    np.save(tmp_path / "x.npy", x)
    outs = []
    for argv in (
        ["run", EXAMPLES / "iris.sw", "--seed", "3"],
        ["run", sw_path, "--params", tmp_path / "iris_imported.safetensors"],
    ):
        out_file = tmp_path / f"o{len(outs)}.npz"
        code, _, err = run(capsys, *argv, "--input", f"x={tmp_path / 'x.npy'}", "--save", out_file)
        assert code == 0, err
        outs.append(next(iter(np.load(out_file).values())))
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-5, atol=1e-6)


def test_launch_runs_the_script_on_n_ranks(tmp_path):
    script = tmp_path / "hello.py"
    script.write_text(
        "from mpi4py import MPI\n"
        "c = MPI.COMM_WORLD\n"
        "print(f'rank {c.Get_rank()} of {c.Get_size()}', flush=True)\n"
    )
    shrew = shutil.which("shrew") or str(Path(sys.executable).parent / "shrew")
    result = subprocess.run([shrew, "launch", "-n", "2", "--timeout", "60", str(script)],
                            capture_output=True, text=True, timeout=90)  # fmt: skip
    assert result.returncode == 0, result.stderr
    # mpiexec forwards both ranks' stdout into one stream; lines may interleave
    assert sorted(re.findall(r"rank \d of \d", result.stdout)) == ["rank 0 of 2", "rank 1 of 2"]


def test_quantize_reports_sizes_and_held_out_accuracy(capsys, tmp_path):
    import json

    params = tmp_path / "wine.shrew"
    assert run(capsys, "train", EXAMPLES / "wine.sw", "--data", "wine", "--epochs", "20",
               "--save", params)[0] == 0  # fmt: skip
    code, out, err = run(capsys, "quantize", EXAMPLES / "wine.sw", "--params", params,
                         "--data", "wine", "--json")  # fmt: skip
    assert code == 0, err
    doc = json.loads(out)
    assert [t["name"] for t in doc["tensors"]] == ["forward/w1", "forward/w2", "forward/w3"]
    assert doc["original_bytes"] == 4 * (64 * 13 + 32 * 64 + 3 * 32)
    assert doc["quantized_bytes"] < doc["original_bytes"] / 3
    float_acc, int8_acc = (
        doc["metrics"]["float"]["accuracy"],
        doc["metrics"]["quantized"]["accuracy"],
    )
    assert float_acc > 0.85 and abs(float_acc - int8_acc) <= 0.03


def test_profile_prints_the_op_table_and_writes_a_chrome_trace(capsys, tmp_path):
    import json

    trace = tmp_path / "trace.json"
    code, out, err = run(capsys, "profile", EXAMPLES / "mnist_mlp.sw", "--dim", "Batch=8",
                         "--trace", trace, "--iters", "2")  # fmt: skip
    assert code == 0, err
    assert "matmul" in out and "peak memory" in out
    events = json.loads(trace.read_text())["traceEvents"]
    assert any(e.get("name") == "matmul" and e.get("ph") == "X" and e["dur"] >= 0 for e in events)


def test_char_gpt_trains_on_text_checkpoints_resumes_and_generates(capsys, tmp_path):
    import json

    ckpt = tmp_path / "ckpt"
    common = ["--data", "text", "--samples", "24", "--batch-size", "12", "--seed", "0"]
    code, out, err = run(capsys, "train", EXAMPLES / "char_gpt.sw", *common, "--checkpoint",
                         ckpt, "--sample-tokens", "20", "--json")  # fmt: skip
    assert code == 0, err
    doc = json.loads(out)
    assert doc["sample"].startswith("The ") and len(doc["sample"]) == 4 + 20
    assert doc["metrics"]["test"]["loss"] < 5.0
    assert (ckpt / "last.shrew").exists() and (ckpt / "best.shrew").exists()
    resume = ["--epochs", "2", "--resume", ckpt / "last.shrew", "--sample-tokens", "0"]
    code, out, err = run(capsys, "train", EXAMPLES / "char_gpt.sw", *common, *resume, "--json")
    assert code == 0, err
    assert [e["epoch"] for e in json.loads(out)["epochs"]] == [1]  # continued, not restarted
    code, out, err = run(capsys, "generate", EXAMPLES / "char_gpt.sw", "--params",
                         ckpt / "last.shrew", "--prompt", "def ", "--max-tokens", "80",
                         "--seed", "1", "--json")  # fmt: skip
    assert code == 0, err
    text = json.loads(out)["text"]
    assert text.startswith("def ") and len(text) == 4 + 80  # past the 64-character context
