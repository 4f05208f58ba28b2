"""Errors of ``shrew.onnx``: every one is a ``shrew_core.ShrewError`` naming the file, the op
or module and the node it came from."""

from __future__ import annotations

from shrew_core import ShrewError


class OnnxError(ShrewError, RuntimeError):
    """An ONNX file that cannot be read, written or run as asked."""


class OnnxUnsupportedError(OnnxError, NotImplementedError):
    """A module, IR op or ONNX op (or one of its attribute values) that has no conversion.
    The message names the op type and the node (or module path) it appeared in."""
