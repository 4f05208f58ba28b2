"""Tensors, dtypes, strided layouts, reverse-mode autograd, symbolic shapes and the Backend protocol."""

__version__ = "0.1.0"
