"""The NVIDIA GPU backend for Shrew: numba.cuda kernels, cuBLAS GEMM through CuPy, a
caching memory pool, f16/bf16 storage with f32 accumulation.

Registered as the ``cuda`` backend (``shrew.backends`` entry point); tensors on
``device="cuda"`` / ``"cuda:1"`` compute here. Importing this package imports neither
numba.cuda nor CuPy and needs no GPU; the backend class loads on the first CUDA tensor,
and using a device without a GPU raises ``DeviceError``. With ``NUMBA_ENABLE_CUDASIM=1``
the kernels run on numba's CUDA simulator (slow; for tests).

>>> import shrew_cuda
>>> sorted(shrew_cuda.memory_stats())[:3]
['allocated_bytes', 'cache_hits', 'cache_misses']
"""

from __future__ import annotations

from .memory import empty_cache, memory_stats, reset_peak_memory_stats

__version__ = "0.1.0"
__all__ = ["CudaBackend", "memory_stats", "reset_peak_memory_stats", "empty_cache",
           "is_available", "is_simulated"]  # fmt: skip


def is_available() -> bool:
    """True when a real NVIDIA GPU is present (the simulator does not count)."""
    from ._runtime import gpu_present

    return gpu_present()


def is_simulated() -> bool:
    """True when the kernels run on numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``)."""
    from ._runtime import simulated

    return simulated()


def __getattr__(name: str):
    if name == "CudaBackend":  # imports numba.cuda: only when the backend is first used
        from .backend import CudaBackend

        return CudaBackend
    raise AttributeError(f"module 'shrew_cuda' has no attribute {name!r}")
