"""The Shrew exception hierarchy: one base class, one subclass per kind of mistake.

Every error names the op and shows the operands (shapes, dtypes, devices), e.g.
``matmul: shape mismatch lhs=(2, 3) rhs=(4, 5)``. Subclasses also inherit from the
matching built-in exception so ``except ValueError`` keeps working for users who
expect NumPy/PyTorch behaviour.
"""

from __future__ import annotations


class ShrewError(Exception):
    """Base class of every error raised by Shrew."""


class ShapeError(ShrewError, ValueError):
    """Shapes that do not fit the op (broadcast, matmul, reshape, cat, ...)."""


class DimError(ShrewError, IndexError):
    """A dimension index out of range for the tensor's rank."""


class IndexOutOfRangeError(ShrewError, IndexError):
    """An element index (index_select, gather, embedding) outside the valid range."""


class DTypeError(ShrewError, TypeError):
    """A dtype the op does not support, or a mix of dtypes without a rule."""


class DeviceError(ShrewError, RuntimeError):
    """Tensors on different devices, or an unknown device string."""


class BackendError(ShrewError, RuntimeError):
    """A backend that is missing, failed to import, or does not implement an op."""


class AutogradError(ShrewError, RuntimeError):
    """backward() on something that cannot be differentiated."""


def fmt_shape(shape) -> str:
    """Render a shape the way errors print it: ``(2, 3)``; rank 0 is ``()``."""
    return "(" + ", ".join(str(int(d)) for d in shape) + ("," if len(shape) == 1 else "") + ")"
