"""The op-spec suite (shrew_core/tests/op_specs.py) on the cuda backend.

Under the simulator every entry runs once, contiguous float32 (forward and gradients
against PyTorch), and a sample runs the other dtypes and view kinds (transposed,
narrowed, offset, expanded, 0-d, empty) and the finite-difference check; on a GPU
(``-m gpu``) every case of the suite runs.
"""

from __future__ import annotations

import importlib.util
import pathlib
import sys

import pytest

import shrew_cuda

_TESTS = pathlib.Path(__file__).resolve().parents[2] / "shrew_core" / "tests"
if str(_TESTS) not in sys.path:
    sys.path.insert(0, str(_TESTS))
_spec = importlib.util.spec_from_file_location("shrew_core_op_suite", _TESTS / "test_ops.py")
suite = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(suite)

# The sample beyond contiguous float32: one entry per view kind and dtype, chosen to cross
# the kernels' layout paths (strided reads, broadcast, offsets, 0-d, empty, half types).
SAMPLE = {
    "add_bcast-float64-contiguous", "mul_bcast-float32-transposed", "exp-float32-narrowed",
    "sum_dim-float32-offset", "where-float32-expanded", "gelu-float32-scalar",
    "div-float32-empty", "softmax-float16-contiguous", "layer_norm-bfloat16-contiguous",
    "matmul-bfloat16-contiguous", "sum_all-float16-contiguous", "matmul_bcast-float64-contiguous",
    "log_softmax-float32-transposed", "max_dim-float32-transposed", "cumsum-float32-narrowed",
    "index_select-float32-transposed", "amax-bfloat16-contiguous",
}
FD_SAMPLE = {"softmax_dim0", "cross_entropy"}  # each finite-difference run is ~100 launches


def _cases():
    out = []
    for case in suite.CASES:
        op, dtype, variant = case.values
        if (dtype == "float32" and variant == "contiguous") or case.id in SAMPLE:
            out.append(pytest.param(op, dtype, variant, id=case.id, marks=pytest.mark.cuda))
        elif shrew_cuda.is_available():
            out.append(pytest.param(op, dtype, variant, id=case.id, marks=pytest.mark.gpu))
    return out


@pytest.mark.parametrize("op,dtype,variant", _cases())
def test_op_matches_torch_on_cuda(op, dtype, variant):
    suite.test_op_matches_torch(op, dtype, variant, "cuda")


def _fd_cases():
    marks = {True: pytest.mark.cuda, False: pytest.mark.gpu}
    return [pytest.param(c.values[0], id=c.id, marks=marks[c.id in FD_SAMPLE])
            for c in suite.FD_CASES if c.id in FD_SAMPLE or shrew_cuda.is_available()]


@pytest.mark.parametrize("op", _fd_cases())
def test_op_gradient_matches_finite_differences_on_cuda(op):
    suite.test_op_gradient_matches_finite_differences(op, "cuda")
