"""Where the kernels run: GPU detection, the CUDA simulator, launch configuration.

Nothing here imports ``numba.cuda`` at module import: :func:`gpu_present` asks the driver
library directly through ctypes (no CUDA context, no numba), so the root ``conftest.py``
and ``device: "auto"`` can decide before numba reads ``NUMBA_ENABLE_CUDASIM``.

Under the simulator (``NUMBA_ENABLE_CUDASIM=1``) every CUDA thread is a Python thread, so
launches use a handful of threads (``SIM_*``) and the kernels' grid-stride loops cover
the rest; on a GPU they use full blocks.
"""

from __future__ import annotations

import ctypes
import functools
import os

from shrew_core.errors import DeviceError

GPU_THREADS = 256  # threads per block on a GPU (elementwise, row reductions)
GPU_MAX_BLOCKS = 65535
SIM_THREADS = 4  # threads per block under the simulator (powers of two)
SIM_MAX_BLOCKS = 2


@functools.cache
def gpu_present() -> bool:
    """True when an NVIDIA driver reports at least one CUDA device (the simulator does not
    count). Safe to call anywhere: loads ``libcuda`` with ctypes, creates no context."""
    for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        count = ctypes.c_int(0)
        try:
            if lib.cuInit(0) != 0 or lib.cuDeviceGetCount(ctypes.byref(count)) != 0:
                return False
        except AttributeError:
            return False
        return count.value > 0
    return False


def simulated() -> bool:
    """True when numba.cuda runs kernels on the CUDA simulator."""
    from numba import config

    return bool(getattr(config, "ENABLE_CUDASIM", 0)) or os.environ.get(
        "NUMBA_ENABLE_CUDASIM", "0"
    ) not in ("", "0")


@functools.cache
def cuda():
    """The ``numba.cuda`` module (imported on first use, never at package import)."""
    from numba import cuda as _cuda

    return _cuda


def require_device(index: int) -> None:
    """Raise DeviceError unless ``cuda:index`` can be used (a GPU, or the simulator)."""
    if simulated():
        if index != 0:
            raise DeviceError(f"cuda:{index}: the CUDA simulator has one device, cuda:0")
        return
    nc = cuda()
    if not nc.is_available():
        raise DeviceError(
            f"cuda:{index}: no CUDA GPU is available (no NVIDIA driver or device found); "
            "use device='cpu', or set NUMBA_ENABLE_CUDASIM=1 to run the kernels on the "
            "CUDA simulator"
        )
    count = len(nc.gpus)
    if not 0 <= index < count:
        raise DeviceError(f"cuda:{index}: only {count} CUDA device(s) are present")


def threads() -> int:
    """Threads per block (elementwise grid-stride loops and block-per-row reductions)."""
    return SIM_THREADS if simulated() else GPU_THREADS


def grid(n: int, block: int | None = None) -> tuple[int, int]:
    """(blocks, threads) for a grid-stride loop over ``n`` items."""
    t = block or threads()
    if simulated():
        return max(1, min(SIM_MAX_BLOCKS, -(-n // t))), t
    return max(1, min(GPU_MAX_BLOCKS, -(-n // t))), t


_made: dict[int, tuple[str, str, tuple]] = {}


def kernel_factory(fn):
    """``functools.cache`` for a function that builds a kernel, remembering which factory
    call made each kernel, so ``shrew_cuda.ptxcheck`` can rebuild it for a real GPU."""
    cached = functools.cache(fn)

    @functools.wraps(fn)
    def make(*args):
        kernel = cached(*args)
        pyfunc = getattr(kernel, "py_func", None) or getattr(kernel, "fn", None)
        _made.setdefault(id(pyfunc), (fn.__module__, fn.__qualname__, args))
        return kernel

    make.cache_clear = cached.cache_clear
    return make


def made_by(pyfunc):
    """(module, factory name, args) of the kernel whose Python function is ``pyfunc``."""
    return _made.get(id(pyfunc))
