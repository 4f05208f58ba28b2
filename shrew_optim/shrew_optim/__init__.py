"""Optimizers, LR schedulers, gradient clipping, accumulation and EMA for Shrew.

>>> import shrew_core as sc, shrew_optim as so
>>> w = sc.randn(3, dtype="f64").requires_grad_()
>>> opt = so.Adam([w], lr=1e-2)
>>> opt.step((w * w).sum().backward())  # updates w in place
"""

from . import lr_scheduler
from .accumulate import GradAccumulator
from .adam import Adam, AdamW
from .clip import clip_grad_norm, clip_grad_norm_, clip_grad_value, clip_grad_value_, grad_norm
from .ema import EMA
from .lr_scheduler import *  # noqa: F403 - every scheduler
from .optimizer import Optimizer
from .radam import RAdam
from .rmsprop import RMSProp, RMSprop
from .sgd import SGD

__all__ = [
    "Optimizer", "SGD", "Adam", "AdamW", "RAdam", "RMSprop", "RMSProp",
    "lr_scheduler", *lr_scheduler.__all__,
    "grad_norm", "clip_grad_norm", "clip_grad_norm_", "clip_grad_value", "clip_grad_value_",
    "GradAccumulator", "EMA",
]  # fmt: skip

__version__ = "0.1.0"
