"""The docstring examples and the README's code blocks run and print what they claim."""

from __future__ import annotations

import doctest
import importlib
import pathlib
import re

import pytest

MODULES = ["shrew_nn", "shrew_nn.module", "shrew_nn.containers", "shrew_nn.linear",
           "shrew_nn.conv", "shrew_nn.rnn", "shrew_nn.attention", "shrew_nn.transformer",
           "shrew_nn.loss"]  # fmt: skip


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0, result


def test_readme_examples():
    text = (pathlib.Path(__file__).parents[1] / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) >= 3
    scope: dict = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), scope)  # noqa: S102
    assert scope["out"].shape == (5, 2, 32) and scope["h_n"].shape == (4, 2, 16)
