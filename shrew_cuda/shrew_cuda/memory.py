"""The caching memory pool behind every CUDA storage, and its statistics.

On a GPU, CuPy's ``MemoryPool`` (the default pool, shared with any CuPy code in the
process) is plugged into numba as its External Memory Manager (``CupyPoolManager``,
numba's EMM plugin API), so every ``numba.cuda.device_array`` — all Shrew storages and
numba's own temporaries — is served from the pool: freed blocks are cached (rounded to
512 bytes) and handed out again without a ``cudaMalloc``. The plugin must be installed
before numba creates its CUDA context; :func:`install` does that when the backend starts.

Under the CUDA simulator numba has no memory manager to plug into, so ``_SimPool`` plays
the same role with host buffers (same rounding, same caching, same statistics): the
pool's logic is tested in CI, the CuPy plugin on a GPU (``-m gpu``).

``memory_stats()`` reports ``allocated_bytes`` (live blocks), ``reserved_bytes`` (held by
the pool, live + cached), ``peak_allocated_bytes``, ``cache_hits`` / ``cache_misses``
(allocations served from the cache / needing new memory), ``num_allocs``, ``num_frees``
and ``pool`` (``"cupy"``, ``"simulator"`` or ``"numba"`` when the plugin could not be
installed because numba's context already existed).
"""

from __future__ import annotations

import ctypes
import threading
import warnings
import weakref

import numpy as np

from . import _runtime

ROUND = 512  # allocation granularity in bytes (CuPy's too)

_lock = threading.Lock()
_stats = {
    "allocated_bytes": 0,
    "reserved_bytes": 0,
    "peak_allocated_bytes": 0,
    "cache_hits": 0,
    "cache_misses": 0,
    "num_allocs": 0,
    "num_frees": 0,
}
_state = {"pool": None, "installed": False}


def _rounded(nbytes: int) -> int:
    return max(ROUND, -(-nbytes // ROUND) * ROUND)


def _record_alloc(size: int, hit: bool, reserved: int | None = None) -> None:
    with _lock:
        _stats["allocated_bytes"] += size
        _stats["num_allocs"] += 1
        _stats["cache_hits" if hit else "cache_misses"] += 1
        if reserved is not None:
            _stats["reserved_bytes"] = reserved
        _stats["peak_allocated_bytes"] = max(
            _stats["peak_allocated_bytes"], _stats["allocated_bytes"]
        )


def _record_free(size: int) -> None:
    with _lock:
        _stats["allocated_bytes"] -= size
        _stats["num_frees"] += 1


class _SimPool:
    """A caching allocator over host buffers for the simulator: exact-size bins of
    512-byte multiples; a freed block goes back to its bin (a later request of that
    rounded size is a cache hit)."""

    def __init__(self):
        self.free: dict[int, list[np.ndarray]] = {}

    def empty(self, n: int, np_dtype: np.dtype):
        from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray

        size = _rounded(n * np_dtype.itemsize)
        with _lock:
            bin_ = self.free.get(size)
            block = bin_.pop() if bin_ else None
        hit = block is not None
        if block is None:
            block = np.empty(size, np.uint8)
            with _lock:
                _stats["reserved_bytes"] += size
        _record_alloc(size, hit)
        arr = FakeCUDAArray(block[: n * np_dtype.itemsize].view(np_dtype))
        weakref.finalize(arr, self._release, size, block)
        return arr

    def _release(self, size: int, block: np.ndarray) -> None:
        _record_free(size)
        with _lock:
            self.free.setdefault(size, []).append(block)

    def free_all_blocks(self) -> None:
        with _lock:
            for size, blocks in self.free.items():
                _stats["reserved_bytes"] -= size * len(blocks)
            self.free.clear()


def _cupy_manager_class():
    """numba EMM plugin serving allocations from CuPy's default MemoryPool."""
    import cupy
    from numba.cuda.cudadrv.driver import (
        AutoFreePointer,
        GetIpcHandleMixin,
        HostOnlyCUDAMemoryManager,
        MemoryInfo,
    )

    class CupyPoolManager(GetIpcHandleMixin, HostOnlyCUDAMemoryManager):
        def initialize(self):
            self._pool = cupy.get_default_memory_pool()

        def memalloc(self, size):
            pool = self._pool
            with cupy.cuda.Device(self.context.device.id):
                before = pool.total_bytes()
                buf = pool.malloc(size)
                reserved = pool.total_bytes()
            rounded = buf.mem.size
            _record_alloc(rounded, hit=reserved == before, reserved=reserved)

            def finalizer(buf=buf, rounded=rounded):
                _record_free(rounded)
                del buf  # the last reference: the block returns to the pool

            ptr = ctypes.c_void_p(int(buf.ptr))
            return AutoFreePointer(
                weakref.proxy(self.context), ptr, size, finalizer=finalizer
            )

        def get_memory_info(self):
            free, total = cupy.cuda.runtime.memGetInfo()
            return MemoryInfo(free=free, total=total)

        def reset(self):
            super().reset()
            self._pool.free_all_blocks()

        @property
        def interface_version(self):
            return 1

    return CupyPoolManager


def install() -> None:
    """Set up the pool for this process (idempotent): the simulator pool, or the CuPy EMM
    plugin if numba's CUDA context does not exist yet (else numba's own allocator)."""
    if _state["installed"]:
        return
    if _runtime.simulated():
        _state["pool"] = "simulator"
        _state["sim"] = _SimPool()
        _state["installed"] = True
        return
    from numba import cuda

    try:
        import cupy  # noqa: F401 - the GPU path needs it (pool, cuBLAS, DLPack)
    except ImportError as exc:
        from shrew_core.errors import BackendError

        raise BackendError(
            "shrew_cuda on a GPU needs CuPy: install the extra with "
            "`pip install shrew-cuda[gpu]` (cupy-cuda12x)"
        ) from exc
    if any(getattr(g, "primary_context", None) is not None for g in cuda.gpus):
        warnings.warn(
            "shrew_cuda: numba's CUDA context already exists, so the CuPy memory pool "
            "cannot be plugged in; allocations use numba's allocator (memory_stats() "
            "counts nothing)",
            stacklevel=3,
        )
        _state["pool"] = "numba"
    else:
        cuda.set_memory_manager(_cupy_manager_class())
        _state["pool"] = "cupy"
    _state["installed"] = True


def empty(n: int, np_dtype) -> object:
    """A new 1-D device array of ``n`` elements (contents undefined), from the pool."""
    np_dtype = np.dtype(np_dtype)
    install()
    if _state["pool"] == "simulator":
        return _state["sim"].empty(n, np_dtype)
    return _runtime.cuda().device_array(max(n, 0), np_dtype)


def memory_stats() -> dict:
    """Pool statistics (bytes and counts) for this process; see the module docstring."""
    with _lock:
        out = dict(_stats)
    out["pool"] = _state["pool"] or "not started"
    if _state["pool"] == "cupy":
        import cupy

        out["reserved_bytes"] = cupy.get_default_memory_pool().total_bytes()
    return out


def reset_peak_memory_stats() -> None:
    """Restart ``peak_allocated_bytes`` from the bytes allocated now."""
    with _lock:
        _stats["peak_allocated_bytes"] = _stats["allocated_bytes"]


def empty_cache() -> None:
    """Give every cached (free) block back to the device."""
    if _state["pool"] == "simulator":
        _state["sim"].free_all_blocks()
    elif _state["pool"] == "cupy":
        import cupy

        cupy.get_default_memory_pool().free_all_blocks()
        with _lock:
            _stats["reserved_bytes"] = cupy.get_default_memory_pool().total_bytes()
