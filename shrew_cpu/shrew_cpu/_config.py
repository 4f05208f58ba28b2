"""Tuning knobs of the CPU backend, read from the environment once, here.

* ``SHREW_CPU_PARALLEL_THRESHOLD`` (default 524288 elements): below it elementwise work runs
  single-threaded (NumPy ufuncs or a serial Numba kernel); at or above it the Numba
  kernels run as chunks on the worker threads (``threads.py``). Chosen by measurement on a
  2-core machine (see README "Serial below a threshold"): a hand-off to a worker costs
  ~15-50 us, more than it saves on smaller outputs.
* ``SHREW_CPU_REDUCE_THRESHOLD`` (default 262144 elements): the same switch for reductions
  and fused row kernels (softmax, norms), which do more work per element.
* ``SHREW_CPU_COMPILE_FREE_BELOW`` (default 16384 elements): logits below it take
  cross-entropy (forward and backward) as NumPy ufunc calls instead of the fused Numba
  row kernels, which are the slowest of a small classifier's first step to compile
  (~0.9 s of the 784-128-10 MLP's 1.2-1.4 s cold step). Above it the kernels' single
  pass wins (README "Cold start"). Likewise sigmoid and SiLU, whose NumPy forms are three
  or four passes: from this size the one-pass Numba kernel is 1.4-2x faster.
* ``SHREW_CPU_WIDE_VECTORS`` (default ``1``; ``0`` to disable): on CPUs with AVX-512, let
  LLVM's loop vectoriser use 512-bit vectors. For Intel server cores LLVM prefers 256-bit
  ones (its ``prefer-256-bit`` tuning), which halves the width of every vectorised loop:
  softmax, exp and GELU ran 15-35% slower (README "Wide vectors"). Applied as Numba's
  CPU features (the host's plus ``-prefer-256-bit``) before this package's first
  compilation, unless ``NUMBA_CPU_NAME`` / ``NUMBA_CPU_FEATURES`` are set. Numba keeps
  one target machine per process, so the setting reaches every Numba function compiled
  after it, and none if Numba compiled something before this package was imported.
* ``SHREW_CPU_MALLOC_TUNE`` (default off; ``1`` to enable): at import, raise glibc
  malloc's mmap and trim thresholds (``mallopt``) so freed large buffers are reused
  instead of being returned to the OS and page-faulted back in on the next step. On the
  2-core VM a fresh 16 MiB array costs 2-30 ms of page faults (NumPy's transparent-huge-
  page madvise can trigger compaction), which made layer_norm forward+backward 10-35 ms
  instead of ~5.5 ms. It is process-global (every allocation in the process), hence
  opt-in; ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` in the environment do
  the same without this package.
* ``SHREW_CPU_NUM_THREADS`` (default: ``NUMBA_NUM_THREADS`` if set, else the CPUs this
  process may run on): threads of the backend's parallel kernels (``threads.py``; also
  ``shrew_cpu.set_num_threads``). The backend uses no OpenMP, so ``OMP_WAIT_POLICY`` and
  the order torch and shrew are imported in do not matter to it.
* ``SHREW_CPU_HEAD_START`` (default 65536 elements): when a kernel is cut into one range
  per thread, the caller's range is this much work longer than the others (the workers
  wake 55-70 us late on the 2-core VM; ``threads.split``). ``0`` splits evenly.
* ``SHREW_CPU_GEMM_THREADS`` (default ``blas``): ``workers`` runs OpenBLAS single-threaded
  and splits large matmuls over the worker threads instead of letting OpenBLAS thread
  them: slower on an idle machine, far steadier on an oversubscribed one (gemm.py).
* ``NUMBA_CACHE_DIR``: where compiled kernels are cached (Numba's own variable; default:
  ``__pycache__`` next to each kernel module).
"""

from __future__ import annotations

import os


def _default_threads() -> int:
    env = os.environ.get("SHREW_CPU_NUM_THREADS") or os.environ.get("NUMBA_NUM_THREADS")
    if env:
        return max(1, int(env))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


NUM_THREADS = _default_threads()
PARALLEL_THRESHOLD = int(os.environ.get("SHREW_CPU_PARALLEL_THRESHOLD", 524288))
REDUCE_THRESHOLD = int(os.environ.get("SHREW_CPU_REDUCE_THRESHOLD", 262144))
COMPILE_FREE_BELOW = int(os.environ.get("SHREW_CPU_COMPILE_FREE_BELOW", 16384))
#: Elements per parallel task: small enough to balance, large enough to amortise dispatch.
MIN_CHUNK = 32768
#: From BALANCE_WORK elements of work a parallel kernel is cut into CHUNKS_PER_THREAD chunks
#: per thread (below: one per thread), so a core slowed by another process takes fewer.
#: Measured on the 2-core VM (sum over dim 1 of [4096,4096], softmax and layer norm of
#: [4096,1024], mul 16M): 2 and 4 per thread tie within 3%; 1 per thread was 5% slower on
#: the sum and up to 5x slower on mul 16M (its two threads page-faulting a fresh output).
BALANCE_WORK = 64 * MIN_CHUNK
CHUNKS_PER_THREAD = 4
#: Below BALANCE_WORK (one chunk per thread), the caller's chunk -- the first, which it
#: takes while the workers wake -- is this many elements longer than the others'. A worker
#: starts 55-70 us after the task is queued on the 2-core VM, and a caller that finishes
#: first then sleeps until the worker is done and pays a second wake-up (~57 us). Add 1M
#: on two threads: 320-356 us median with equal halves, 268-290 us with 64K more for the
#: caller, 291-297 with 128K (README "Fifth round").
HEAD_START = int(os.environ.get("SHREW_CPU_HEAD_START", 65536))
#: Multiply-adds from which float matmuls are split over the worker threads (gemm.py).
GEMM_PARALLEL_MACS = 1 << 22
#: Who runs a large matmul's threads: "blas" (NumPy's BLAS, e.g. OpenBLAS, with its own
#: threads) or "workers" (BLAS single-threaded, blocks on the worker threads; see gemm.py).
GEMM_THREADS = os.environ.get("SHREW_CPU_GEMM_THREADS", "blas")
#: Multiply-adds from which ungrouped convolutions take the Numba kernels (direct at stride 1,
#: fused im2col else); below, NumPy im2col + one BLAS GEMM (nothing to compile; see conv.py).
CONV_FUSED_MACS = 1 << 22

WIDE_VECTORS = os.environ.get("SHREW_CPU_WIDE_VECTORS", "1") not in ("", "0")
MALLOC_TUNE = os.environ.get("SHREW_CPU_MALLOC_TUNE", "0") not in ("", "0")
#: Bytes below which glibc may use mmap (above: the heap, reused after free) and the free
#: top-of-heap size kept before trimming, when MALLOC_TUNE is on.
MALLOC_MMAP_THRESHOLD = 1 << 30
MALLOC_TRIM_THRESHOLD = 1 << 31


def apply_malloc_tuning() -> bool:
    """mallopt(M_MMAP_THRESHOLD / M_TRIM_THRESHOLD) on glibc when MALLOC_TUNE is set;
    True when applied. Called once by the package's ``__init__``."""
    if not MALLOC_TUNE:
        return False
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim, m_mmap = -1, -3  # glibc's M_TRIM_THRESHOLD, M_MMAP_THRESHOLD
        ok = libc.mallopt(m_mmap, MALLOC_MMAP_THRESHOLD) and libc.mallopt(
            m_trim, MALLOC_TRIM_THRESHOLD
        )
    except (OSError, AttributeError):  # not glibc
        return False
    return bool(ok)


def apply_wide_vectors() -> bool:
    """Drop LLVM's 256-bit preference on AVX-512 hosts (see ``SHREW_CPU_WIDE_VECTORS``);
    True when applied. Called once, before any kernel module is imported."""
    from numba.core import codegen, config

    if not WIDE_VECTORS or config.CPU_NAME is not None or config.CPU_FEATURES is not None:
        return False
    features = codegen.get_host_cpu_features()
    if "+avx512f" not in features.split(","):
        return False
    config.CPU_FEATURES = features + ",-prefer-256-bit"
    return True
