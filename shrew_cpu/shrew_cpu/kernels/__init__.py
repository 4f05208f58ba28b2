"""Numba kernels by op family. Every kernel is ``njit(cache=True)``, compiled lazily on
first use per signature and cached to disk (``NUMBA_CACHE_DIR`` or ``__pycache__``)."""
