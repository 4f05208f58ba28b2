"""Where the CPU backend's compiled kernels are cached on disk (Numba's ``cache=True``).

Numba looks in order for ``NUMBA_CACHE_DIR``, then the ``__pycache__`` folder next to
each kernel module when it is writable (editable installs, user-owned environments),
then a per-user folder (``$XDG_CACHE_HOME/numba`` or ``~/.cache/numba``: a read-only
site-packages falls back there). If none of those is writable (no home folder, a
read-only container), Numba refuses to decorate a cached function, so importing the
backend would fail; ``install()`` adds a last resort for this package's kernels: a
per-user folder under the system temp dir. Called by ``kernels/__init__.py`` before any
kernel module is imported (Numba picks the folder when the decorator runs).
"""

from __future__ import annotations

import os
import tempfile

from numba.core import caching

_PKG_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_Impl = getattr(caching, "CacheImpl", None) or caching._CacheImpl  # numba >= 0.62 / older
_Mixin = caching._SourceFileBackedLocatorMixin


class TempDirCacheLocator(_Mixin, caching._CacheLocator):
    """Kernels of this package cached under ``<tempdir>/shrew_cpu-numba-<uid>``."""

    def __init__(self, py_func, py_file):
        self._py_file = py_file
        self._lineno = py_func.__code__.co_firstlineno
        uid = os.getuid() if hasattr(os, "getuid") else "user"
        root = os.path.join(tempfile.gettempdir(), f"shrew_cpu-numba-{uid}")
        self._cache_path = os.path.join(root, self.get_suitable_cache_subpath(py_file))

    def get_cache_path(self):
        return self._cache_path

    @classmethod
    def from_function(cls, py_func, py_file):
        if not os.path.abspath(py_file).startswith(_PKG_DIR):
            return None  # not one of ours: Numba's own rules apply
        return super().from_function(py_func, py_file)


def install() -> None:
    """Append the temp-dir locator to Numba's list (idempotent)."""
    if TempDirCacheLocator not in _Impl._locator_classes:
        _Impl._locator_classes.append(TempDirCacheLocator)
