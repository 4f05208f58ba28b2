"""The optional ``onnx`` dependency, imported in one place with an error naming the extra."""

from __future__ import annotations

from shrew_core import ShrewError


class OnnxNotInstalledError(ShrewError, ImportError):
    """``shrew.onnx`` was used without the ``onnx`` package (the ``shrew[onnx]`` extra)."""


try:
    import onnx
    import onnx.checker
    import onnx.helper
    import onnx.numpy_helper
    import onnx.shape_inference
except ImportError as e:  # pragma: no cover - exercised in a subprocess test
    raise OnnxNotInstalledError(
        f'shrew.onnx needs the onnx package ({e}); install it with pip install "shrew[onnx]"'
    ) from e

__all__ = ["onnx"]
