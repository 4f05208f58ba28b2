"""Numba kernels by op family. Every kernel is ``njit(cache=True)``, compiled lazily on
first use per signature and cached to disk (see ``shrew_cpu._cache`` for where)."""

from .. import _config
from .._cache import install as _install_cache_locator

_install_cache_locator()
_config.apply_wide_vectors()  # before the first compilation: see _config
