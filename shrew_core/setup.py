"""Builds shrew_core's compiled hot path (``shrew_core._speedups``) with Cython.

Metadata lives in pyproject.toml. If Cython or a C compiler is unavailable the
package still installs and runs on the pure-Python ``_shapes`` module.
"""

from setuptools import Extension, setup

try:
    from Cython.Build import cythonize

    ext_modules = cythonize(
        [Extension("shrew_core._speedups", ["shrew_core/_speedups.pyx"])],
        compiler_directives={"language_level": 3},
    )
except ImportError:  # pragma: no cover - build without Cython
    ext_modules = []

setup(ext_modules=ext_modules)
