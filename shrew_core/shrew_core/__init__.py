"""shrew_core: tensors, dtypes, strided layouts, reverse-mode autograd, symbolic shapes and
the Backend protocol that compute backends (shrew_cpu, shrew_cuda, third parties) implement.

>>> import shrew_core as sc
>>> w = sc.randn(3, 3, dtype="f64").requires_grad_()
>>> loss = (sc.randn(2, 3, dtype="f64") @ w).sum()
>>> grads = loss.backward()
>>> grads[w].shape
(3, 3)
"""

from __future__ import annotations

from . import ops
from .autograd import Function, FunctionCtx, GradStore, enable_grad, is_grad_enabled, no_grad
from .backend import Backend
from .device import CpuDevice, CudaDevice, Device, as_device
from .dtypes import (
    ALL_DTYPES,
    FLOAT_DTYPES,
    PROMOTION_TABLE,
    DType,
    as_dtype,
    bf16,
    bool_,
    f16,
    f32,
    f64,
    i64,
    promote_types,
    u8,
    u32,
)
from .errors import (
    AutogradError,
    BackendError,
    DeviceError,
    DimError,
    DTypeError,
    IndexOutOfRangeError,
    ShapeError,
    ShrewError,
)
from .layout import Layout
from .ops import *  # noqa: F401,F403 - every op as a free function
from .random import get_rng_state, initial_seed, manual_seed, set_rng_state
from .registry import available_backends, get_backend, get_backend_class, register_backend
from .symbolic import ShapeEnv, ShapeGuard, SymbolicShape, SymDim
from .tensor import Tensor

__version__ = "0.1.0"

float16, bfloat16, float32, float64 = f16, bf16, f32, f64
uint8, uint32, int64, bool8 = u8, u32, i64, bool_
