"""Running .sw programs: ``load_program`` -> Executor, ``load_trainer`` -> Trainer.

>>> from shrew.exec import load_program, RuntimeConfig
>>> ex = load_program("examples/sw/iris.sw", RuntimeConfig(seed=0))
>>> out = ex.run("forward", {"x": [[5.1, 3.5, 1.4, 0.2]]})
>>> out["out"].shape
(1, 3)
"""

from .config import RuntimeConfig
from .errors import ExecutionError
from .executor import Executor, load_program
from .jit import JitExecutor, JitStats, load_jit
from .trainer import Trainer, TrainResult, load_trainer

__all__ = [
    "ExecutionError",
    "Executor",
    "JitExecutor",
    "JitStats",
    "RuntimeConfig",
    "TrainResult",
    "Trainer",
    "load_jit",
    "load_program",
    "load_trainer",
]
