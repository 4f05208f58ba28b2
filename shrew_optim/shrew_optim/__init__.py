"""Optimizers, LR schedulers, gradient clipping, accumulation and EMA for Shrew.

>>> import shrew_core as sc, shrew_optim as so
>>> w = sc.randn(3, dtype="f64").requires_grad_()
>>> opt = so.Adam([w], lr=1e-2)
>>> opt.step((w * w).sum().backward())  # updates w in place
"""

from .adam import Adam, AdamW
from .optimizer import Optimizer
from .radam import RAdam
from .rmsprop import RMSProp, RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RAdam", "RMSprop", "RMSProp"]

__version__ = "0.1.0"
