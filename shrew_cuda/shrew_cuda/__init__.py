"""The NVIDIA GPU backend for Shrew (not built yet: this package is empty and registers no
backend, so `device="cuda"` raises a BackendError naming it)."""

__version__ = "0.1.0"
