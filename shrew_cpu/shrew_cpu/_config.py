"""Tuning knobs of the CPU backend, read from the environment once, here.

* ``SHREW_CPU_PARALLEL_THRESHOLD`` (default 262144 elements): below it elementwise work runs
  single-threaded (NumPy ufuncs or a serial Numba kernel); at or above it the parallel
  Numba kernels split the work over ``numba.get_num_threads()`` threads. Chosen by
  measurement on a 2-core machine (see README "Thresholds").
* ``SHREW_CPU_REDUCE_THRESHOLD`` (default 65536 elements): the same switch for reductions
  and fused row kernels (softmax, norms), which do more work per element.
* ``NUMBA_CACHE_DIR``: where compiled kernels are cached (Numba's own variable; default:
  ``__pycache__`` next to each kernel module).
"""

from __future__ import annotations

import os

PARALLEL_THRESHOLD = int(os.environ.get("SHREW_CPU_PARALLEL_THRESHOLD", 262144))
REDUCE_THRESHOLD = int(os.environ.get("SHREW_CPU_REDUCE_THRESHOLD", 65536))
#: Elements per parallel task: small enough to balance, large enough to amortise dispatch.
MIN_CHUNK = 32768
