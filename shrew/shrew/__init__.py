"""Shrew: the facade that re-exports the common API in one namespace.

>>> import shrew
>>> x = shrew.randn(2, 3)            # everything of shrew_core: tensors, ops, autograd
>>> layer = shrew.nn.Linear(3, 4)    # shrew_nn, shrew_optim, shrew_data, shrew_ir as submodules

``shrew.exec`` runs and trains .sw programs (``load_program``, ``load_trainer``);
``shrew.quantization`` quantizes weights to int8/int4, ``shrew.profiler`` profiles backend
calls. The JIT, checkpoints, ONNX and distributed training of DESIGN.md §5 are not built
yet.
"""

from __future__ import annotations

import shrew_data as data
import shrew_ir as ir
import shrew_nn as nn
import shrew_optim as optim
from shrew_core import *  # noqa: F403

from . import (
    exec,  # noqa: A004 - the seed's module name
    profiler,
    quantization,
)

__version__ = "0.1.0"
