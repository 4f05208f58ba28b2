"""Optimizers, LR schedulers, gradient clipping, accumulation and EMA for Shrew."""

__version__ = "0.1.0"
