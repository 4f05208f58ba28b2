"""What the ONNX tests share: the f32 tolerance, onnxruntime as the reference runner, and an
assertion that says what differed (shape, then dtype, then values)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

RTOL, ATOL = 1e-4, 1e-5  # f32 end to end


def ort_run(path, feeds: dict) -> list[np.ndarray]:
    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # unused-initializer notes are not failures
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, {k: np.asarray(v) for k, v in feeds.items()})


def assert_close(actual, expected, rtol=RTOL, atol=ATOL, what="") -> None:
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=what)
