"""Every tensor operation as a free function; ``METHODS`` also become Tensor methods.

Families live in their own modules: elementwise, reduction, shape, indexing, linalg,
nn (kernels the layers use), creation and convert.
"""

from __future__ import annotations

from ._base import norm_dim  # noqa: F401
from .convert import *  # noqa: F401,F403
from .creation import *  # noqa: F401,F403
from .elementwise import *  # noqa: F401,F403
from .elementwise import tensor_where as _tensor_where
from .indexing import *  # noqa: F401,F403
from .linalg import *  # noqa: F401,F403
from .nn import *  # noqa: F401,F403
from .reduction import *  # noqa: F401,F403
from .shape import *  # noqa: F401,F403
from .sorting import *  # noqa: F401,F403

# Names exposed as Tensor methods (``x.name(...)`` == ``ops.name(x, ...)``).
METHODS = (
    # elementwise
    "add",
    "sub",
    "mul",
    "div",
    "pow",
    "powf",
    "maximum",
    "minimum",
    "floor_divide",
    "remainder",
    "neg",
    "exp",
    "log",
    "sqrt",
    "rsqrt",
    "square",
    "reciprocal",
    "sin",
    "cos",
    "tanh",
    "sigmoid",
    "relu",
    "gelu",
    "silu",
    "erf",
    "floor",
    "ceil",
    "round",
    "sign",
    "log1p",
    "expm1",
    "abs",
    "affine",
    "clamp",
    "clip",
    "masked_fill",
    "where_cond",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "logical_not",
    "logical_and",
    "logical_or",
    "logical_xor",
    # reductions
    "sum",
    "sum_all",
    "sum_to_shape",
    "mean",
    "mean_all",
    "prod",
    "amax",
    "amin",
    "max",
    "min",
    "argmax",
    "argmin",
    "var",
    "std",
    "logsumexp",
    "cumsum",
    "norm",
    "all",
    "any",
    # shape
    "reshape",
    "view",
    "flatten",
    "unflatten",
    "squeeze",
    "squeeze_all",
    "unsqueeze",
    "permute",
    "transpose",
    "swapaxes",
    "t",
    "expand",
    "expand_as",
    "broadcast_to",
    "narrow",
    "select",
    "contiguous",
    "clone",
    "split",
    "chunk",
    "unbind",
    "pad",
    "flip",
    "repeat",
    # indexing
    "index_select",
    "gather",
    "scatter_add",
    "index_add",
    "nonzero",
    "masked_select",
    "copy_",
    "fill_",
    "zero_",
    "add_",
    "sub_",
    "mul_",
    "div_",
    # linalg, nn
    "matmul",
    "mm",
    "bmm",
    "dot",
    "softmax",
    "log_softmax",
    # sorting
    "sort",
    "argsort",
    "topk",
    "kthvalue",
    # conversion and like-constructors
    "to",
    "to_dtype",
    "type_as",
    "float",
    "double",
    "half",
    "bfloat16",
    "long",
    "bool",
    "cpu",
    "cuda",
    "element_size",
    "zeros_like",
    "ones_like",
    "full_like",
    "rand_like",
    "randn_like",
)


def where(cond, a=None, b=None):
    """``where(cond, a, b)``; as a method, ``x.where(cond, other)`` is ``cond ? x : other``."""
    from .elementwise import where as _where

    return _where(cond, a, b)


def _method_where(self, cond, other):
    return _tensor_where(self, cond, other)


_method_where.__name__ = "where"


def _public_functions() -> list[str]:
    """The free functions ``from shrew_core import *`` exports: those defined by the op
    families, without the submodules and without the method-only casts (float, bool, ...)
    that would shadow Python builtins."""
    method_only = {"float", "double", "half", "bfloat16", "long", "bool", "cpu", "cuda", "to",
                   "element_size", "is_dtype"}  # fmt: skip
    return sorted(
        name
        for name, value in globals().items()
        if not name.startswith("_")
        and name not in method_only
        and callable(value)
        and getattr(value, "__module__", "").startswith(__name__)
    )


__all__ = _public_functions() + ["METHODS"]


def _install() -> None:
    import sys

    from ..tensor import install_methods

    install_methods(sys.modules[__name__])


_install()
