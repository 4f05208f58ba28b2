"""The errors of shrew.distributed, rooted in ``shrew_core.ShrewError``.

A collective never hangs silently: a rank that waits longer than the group's ``timeout``
raises ``CollectiveTimeoutError``; ranks that call a collective with different shapes,
dtypes or arguments raise ``CollectiveMismatchError`` on every rank; a rank that failed or
exited while others wait makes them raise ``DistributedError`` naming it.
"""

from __future__ import annotations

from shrew_core import ShrewError


class DistributedError(ShrewError, RuntimeError):
    """Misuse of shrew.distributed (no process group, bad argument) or a broken group."""


class CollectiveMismatchError(DistributedError):
    """Ranks called a collective with different tensors (shape, dtype) or arguments."""


class CollectiveTimeoutError(DistributedError, TimeoutError):
    """A collective waited longer than the process group's timeout for the other ranks."""
