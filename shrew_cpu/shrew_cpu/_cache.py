"""Where the CPU backend's compiled kernels are cached on disk (Numba's ``cache=True``), and
when a cached kernel is stale.

Where: Numba looks in order for ``NUMBA_CACHE_DIR``, then the ``__pycache__`` folder next
to each kernel module when it is writable (editable installs, user-owned environments),
then a per-user folder (``$XDG_CACHE_HOME/numba`` or ``~/.cache/numba``: a read-only
site-packages falls back there). If none of those is writable (no home folder, a
read-only container), Numba refuses to decorate a cached function, so importing the
backend would fail; this module adds a last resort for this package's kernels: a
per-user folder under the system temp dir.

When: Numba stamps a cached function with the hash of its own source file only, but our
kernels inline helpers from other kernel modules (``vmath.fexp``, ``rows.row_sum``). A
change to one of those (an upgrade that rewrites ``vmath.py`` and leaves ``rnn.py`` as it
was, or an edit in a checkout) left the other modules' cached machine code in use, old
helper inlined. The locators here stamp every kernel of this package with one hash over
all of ``kernels/*.py``: any change there recompiles them all.

``install()`` puts them in front of Numba's own locators (they only answer for this
package's files); ``kernels/__init__.py`` calls it before any kernel module is imported
(Numba picks the locator when the decorator runs).
"""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile

from numba.core import caching

_PKG_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
KERNELS_DIR = os.path.join(_PKG_DIR, "kernels")
_Impl = getattr(caching, "CacheImpl", None) or caching._CacheImpl  # numba >= 0.62 / older


def sources_stamp(folder: str = KERNELS_DIR) -> bytes:
    """SHA-256 over the names and contents of the ``.py`` files in ``folder``."""
    h = hashlib.sha256()
    for name in sorted(n for n in os.listdir(folder) if n.endswith(".py")):
        with open(os.path.join(folder, name), "rb") as f:
            data = f.read()
        h.update(f"{name}\0{len(data)}\0".encode())
        h.update(data)
    return h.digest()


@functools.cache
def package_stamp() -> bytes:
    """``sources_stamp()`` of ``kernels/``, once per process: Numba asks for it for every
    kernel at import (~200 times), and the files do not change under a running process."""
    return sources_stamp()


class _PackageStamp:
    """Mixin: answer only for this package's files, stamped by ``package_stamp``."""

    def get_source_stamp(self):
        return package_stamp()

    @classmethod
    def from_function(cls, py_func, py_file):
        if not os.path.abspath(py_file).startswith(_PKG_DIR):
            return None  # not one of ours: Numba's own rules apply
        return super().from_function(py_func, py_file)


class UserProvidedLocator(_PackageStamp, caching.UserProvidedCacheLocator):
    """``NUMBA_CACHE_DIR``."""


class InTreeLocator(_PackageStamp, caching.InTreeCacheLocator):
    """``__pycache__`` next to the kernel module."""


class UserWideLocator(_PackageStamp, caching.UserWideCacheLocator):
    """The per-user Numba cache folder."""


class TempDirCacheLocator(_PackageStamp, caching._SourceFileBackedLocatorMixin,
                          caching._CacheLocator):  # fmt: skip
    """Kernels of this package cached under ``<tempdir>/shrew_cpu-numba-<uid>``."""

    def __init__(self, py_func, py_file):
        self._py_file = py_file
        self._lineno = py_func.__code__.co_firstlineno
        uid = os.getuid() if hasattr(os, "getuid") else "user"
        root = os.path.join(tempfile.gettempdir(), f"shrew_cpu-numba-{uid}")
        self._cache_path = os.path.join(root, self.get_suitable_cache_subpath(py_file))

    def get_cache_path(self):
        return self._cache_path


LOCATORS = (UserProvidedLocator, InTreeLocator, UserWideLocator, TempDirCacheLocator)


def install() -> None:
    """Put this package's locators in front of Numba's list (idempotent)."""
    classes = _Impl._locator_classes
    if classes[: len(LOCATORS)] != list(LOCATORS):
        classes[:] = list(LOCATORS) + [c for c in classes if c not in LOCATORS]
