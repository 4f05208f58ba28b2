"""Workspace-wide pytest configuration: which backends the suites run on.

``SHREW_TEST_BACKENDS=reference,cpu`` picks backends explicitly; by default every
installed backend except ``cuda`` (which needs a GPU and runs under ``-m gpu``).
Test modules get a ``device`` fixture parametrized over them.
"""

from __future__ import annotations

import importlib
import os

import pytest

# pytest's importlib mode names test modules after their path ("shrew_ir.tests.test_x") and
# would register empty namespace modules for missing parents such as "shrew_ir". Importing
# every installed Shrew package first makes those parents the real packages.
for _name in ("shrew_core", "shrew_cpu", "shrew_ir", "shrew_nn", "shrew_optim", "shrew_data",
              "shrew", "shrew_cli"):  # fmt: skip
    try:
        importlib.import_module(_name)
    except ImportError:  # a package that is not installed has no tests to run either
        pass


def test_backends() -> list[str]:
    import shrew_core

    wanted = os.environ.get("SHREW_TEST_BACKENDS")
    names = (
        wanted.split(",") if wanted else [b for b in shrew_core.available_backends() if b != "cuda"]
    )
    return [n.strip() for n in names if n.strip()]


test_backends.__test__ = False  # not a test


@pytest.fixture(params=test_backends())
def device(request) -> str:
    """A device string for each backend under test, e.g. "reference", "cpu"."""
    return request.param
