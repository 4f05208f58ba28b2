"""The Numba CPU backend for Shrew: parallel kernels, fused ops, BLAS GEMM."""

__version__ = "0.1.0"
