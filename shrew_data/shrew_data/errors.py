"""The errors shrew_data raises, rooted in ``shrew_core.errors.ShrewError``.

``DataError`` covers bad data and bad loader arguments (it is also a ``ValueError``);
``MissingDependencyError`` names the package to install (it is also an ``ImportError``).
Shape problems in collation raise ``shrew_core.ShapeError``.
"""

from __future__ import annotations

from shrew_core.errors import ShrewError


class DataError(ShrewError, ValueError):
    """Corrupt or inconsistent data files, or an invalid dataset/loader argument."""


class MissingDependencyError(ShrewError, ImportError):
    """An optional dependency (e.g. scikit-learn) is needed but not installed."""
