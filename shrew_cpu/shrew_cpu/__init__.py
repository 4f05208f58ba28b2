"""The Numba CPU backend for Shrew: parallel kernels, fused ops, BLAS GEMM.

Registered as the ``cpu`` backend through the ``shrew.backends`` entry point; users
reach it through ``shrew_core`` tensors (``device="cpu"``, the default). Importing this
package compiles nothing: kernels compile on first use and are cached on disk.
"""

from . import _config
from .backend import CpuBackend
from .threads import get_num_threads, set_num_threads

_config.apply_malloc_tuning()  # opt-in (SHREW_CPU_MALLOC_TUNE=1); see _config

__version__ = "0.1.0"
__all__ = ["CpuBackend", "get_num_threads", "set_num_threads"]
