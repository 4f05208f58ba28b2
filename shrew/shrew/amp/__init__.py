"""shrew.amp: automatic mixed precision — ``autocast``, ``GradScaler``, ``MixedPrecisionTrainer``.

>>> import shrew_core as sc, shrew_nn as nn
>>> from shrew.amp import autocast
>>> layer = nn.Linear(4, 3)
>>> with autocast(dtype=sc.bf16):
...     y = layer(sc.randn(2, 4))
...     p = sc.softmax(y, -1)
>>> str(y.dtype), str(p.dtype)
('bfloat16', 'float32')
"""

from .autocast_mode import autocast, get_autocast_dtype, is_autocast_enabled
from .grad_scaler import AmpError, GradScaler
from .trainer import LossScaleConfig, MixedPrecisionTrainer

__all__ = [
    "AmpError", "GradScaler", "LossScaleConfig", "MixedPrecisionTrainer", "autocast",
    "get_autocast_dtype", "is_autocast_enabled",
]  # fmt: skip
