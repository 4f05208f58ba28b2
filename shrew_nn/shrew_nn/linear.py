"""Dense layers: ``Linear``, ``Bilinear``, ``Identity``, ``Flatten``, ``Embedding``."""

from __future__ import annotations

from typing import Any

import shrew_core as sc
from shrew_core import Tensor

from . import functional as F
from . import init
from ._utils import empty_param, fan_in_bound, uniform_param
from .module import Module


class Linear(Module):
    """``y = x Wᵀ + b`` over the last dim.

    Args:
        in_features, out_features: sizes of each input and output row.
        bias: add a learnable bias.
        dtype, device: of the parameters.

    Shape:
        input ``[*, in_features]`` -> output ``[*, out_features]``.

    Attributes:
        weight: ``[out_features, in_features]``, U(-1/√in, 1/√in) (kaiming-uniform, a=√5).
        bias: ``[out_features]``, U(-1/√in, 1/√in).

    Examples:
        >>> import shrew_core as sc, shrew_nn as nn
        >>> nn.Linear(3, 2)(sc.randn(4, 3)).shape
        (4, 2)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 dtype: Any = sc.f32, device: Any = "cpu") -> None:  # fmt: skip
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        bound = fan_in_bound(in_features)
        self.weight = uniform_param((out_features, in_features), bound, dtype, device)
        self.bias = uniform_param((out_features,), bound, dtype, device) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise sc.ShapeError(
                f"Linear: expected input [..., {self.in_features}], got shape {x.shape}"
            )
        if x.ndim > 2:  # one GEMM over all leading dims
            lead = x.shape[:-1]
            y = sc.linear(x.reshape(-1, self.in_features), self.weight, self.bias)
            return y.reshape(lead + (self.out_features,))
        return sc.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")  # fmt: skip


class Bilinear(Module):
    """``y = x1ᵀ A x2 + b`` for every row: ``torch.nn.Bilinear``.

    Args:
        in1_features, in2_features: sizes of each row of the two inputs.
        out_features: size of each output row.
        bias: add a learnable bias.

    Shape:
        ``[*, in1_features]`` and ``[*, in2_features]`` (same leading dims, or unbatched)
        -> ``[*, out_features]``.

    Attributes:
        weight: ``[out_features, in1_features, in2_features]``, U(-1/√in1, 1/√in1);
        bias: ``[out_features]``, the same distribution.
    """

    def __init__(self, in1_features: int, in2_features: int, out_features: int,
                 bias: bool = True, dtype: Any = sc.f32, device: Any = "cpu") -> None:  # fmt: skip
        super().__init__()
        self.in1_features, self.in2_features = in1_features, in2_features
        self.out_features = out_features
        bound = fan_in_bound(in1_features)
        shape = (out_features, in1_features, in2_features)
        self.weight = uniform_param(shape, bound, dtype, device)
        self.bias = uniform_param((out_features,), bound, dtype, device) if bias else None

    def forward(self, input1: Tensor, input2: Tensor) -> Tensor:
        return F.bilinear(input1, input2, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
                f"out_features={self.out_features}, bias={self.bias is not None}")  # fmt: skip


class Identity(Module):
    """Returns its input unchanged (arguments are accepted and ignored)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, x: Tensor) -> Tensor:
        return x


class Flatten(Module):
    """Flatten dims ``start_dim..end_dim`` into one (default: all but the batch dim)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        return sc.flatten(x, self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Split dim ``dim`` into ``sizes``."""

    def __init__(self, dim: int, unflattened_size: tuple[int, ...]) -> None:
        super().__init__()
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, x: Tensor) -> Tensor:
        return sc.unflatten(x, self.dim, self.unflattened_size)


class Embedding(Module):
    """A lookup table of ``num_embeddings`` vectors of size ``embedding_dim``.

    Args:
        num_embeddings, embedding_dim: table size.
        padding_idx: this row is initialised to zeros and never receives a gradient.

    Shape:
        integer indices ``[*]`` -> ``[*, embedding_dim]``.

    Attributes:
        weight: ``[num_embeddings, embedding_dim]``, N(0, 1).
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 dtype: Any = sc.f32, device: Any = "cpu") -> None:  # fmt: skip
        super().__init__()
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"Embedding: padding_idx {padding_idx} is out of range for "
                                 f"{num_embeddings} embeddings")  # fmt: skip
            padding_idx %= num_embeddings
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.padding_idx = padding_idx
        self.weight = empty_param(num_embeddings, embedding_dim, dtype=dtype, device=device)
        init.normal_(self.weight)
        if padding_idx is not None:
            with sc.no_grad():
                self.weight.detach()[padding_idx] = 0.0

    def forward(self, indices: Tensor) -> Tensor:
        return F.embedding(indices, self.weight, self.padding_idx)

    def extra_repr(self) -> str:
        pad = f", padding_idx={self.padding_idx}" if self.padding_idx is not None else ""
        return f"{self.num_embeddings}, {self.embedding_dim}{pad}"


