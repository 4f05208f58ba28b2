"""The facade re-exports shrew_core and exposes the sibling packages as submodules."""

from __future__ import annotations

import shrew
import shrew_core
import shrew_nn
import shrew_optim


def test_core_api_at_top_level():
    for name in ("tensor", "randn", "Tensor", "no_grad", "manual_seed", "f32", "ShapeError"):
        assert getattr(shrew, name) is getattr(shrew_core, name)


def test_submodules():
    assert shrew.nn is shrew_nn and shrew.optim is shrew_optim
    x = shrew.tensor([1.0, 2.0], device="reference").requires_grad_()
    assert shrew.tensor((x * x).sum().backward()[x].tolist()).tolist() == [2.0, 4.0]
