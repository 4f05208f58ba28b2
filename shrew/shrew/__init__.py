"""Shrew: the facade that re-exports the common API in one namespace.

>>> import shrew
>>> x = shrew.randn(2, 3)            # everything of shrew_core: tensors, ops, autograd
>>> layer = shrew.nn.Linear(3, 4)    # shrew_nn, shrew_optim, shrew_data, shrew_ir as submodules

The facade's runtime, one module per concept:

- ``shrew.exec`` runs, compiles and trains .sw programs (``load_program``, ``load_jit``,
  ``load_trainer``).
- ``shrew.io`` saves and loads checkpoints (``.shrew``, safetensors, training checkpoints).
- ``shrew.onnx`` exports Modules and .sw programs to ONNX and imports ONNX files (the
  ``shrew[onnx]`` extra; loaded on first use).
- ``shrew.quantization`` quantizes weights to packed int8/int4 with low-bit kernels.
- ``shrew.profiler`` records every backend call (op tables, Chrome traces, memory).
- ``shrew.distributed`` trains over MPI processes (``shrew[mpi]``) or in-process ranks.
- ``shrew.amp`` is mixed precision: autocast, GradScaler, MixedPrecisionTrainer.
"""

from __future__ import annotations

import shrew_data as data
import shrew_ir as ir
import shrew_nn as nn
import shrew_optim as optim
from shrew_core import *  # noqa: F403

from . import (
    amp,
    distributed,
    exec,  # noqa: A004 - the seed's module name
    io,  # noqa: A004 - shrew.io, as torch/numpy name their I/O
    onnx,  # lazy: needs the onnx package (shrew[onnx]) only when used
    profiler,
    quantization,
)

__version__ = "0.1.0"
