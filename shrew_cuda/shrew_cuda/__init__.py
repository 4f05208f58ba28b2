"""The NVIDIA GPU backend for Shrew: numba.cuda kernels and cuBLAS through CuPy."""

__version__ = "0.1.0"
