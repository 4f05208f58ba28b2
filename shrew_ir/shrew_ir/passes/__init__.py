"""Optimisation passes (each a set of pattern -> rewrite rules) and the pass manager."""

from .base import PassResult, Rule, verify
from .const_fold import constant_folding
from .cse import common_subexpression_elimination
from .dce import dead_code_elimination
from .fusion import operator_fusion
from .identity import identity_elimination
from .manager import LEVELS, PASSES, OptimizeReport, optimize, run_pass

__all__ = [
    "LEVELS",
    "PASSES",
    "OptimizeReport",
    "PassResult",
    "Rule",
    "common_subexpression_elimination",
    "constant_folding",
    "dead_code_elimination",
    "identity_elimination",
    "operator_fusion",
    "optimize",
    "run_pass",
    "verify",
]
