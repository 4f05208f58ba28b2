"""The README's code blocks run (each asserts what it claims) and the package docstring's
example works."""

from __future__ import annotations

import doctest
import pathlib
import re

import shrew_optim


def test_readme_examples():
    text = (pathlib.Path(__file__).parents[1] / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) >= 4
    for i, block in enumerate(blocks):
        exec(compile(block, f"README.md block {i}", "exec"), {})  # noqa: S102


def test_package_docstring():
    result = doctest.testmod(shrew_optim)
    assert result.attempted > 0 and result.failed == 0, result
