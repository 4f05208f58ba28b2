"""Normalisation layers: BatchNorm1d/2d, LayerNorm, GroupNorm, RMSNorm."""

from __future__ import annotations

from typing import Any

import shrew_core as sc
from shrew_core import Tensor

from . import functional as F
from ._utils import empty_param
from .module import Module


def _affine(n: int, affine: bool, bias: bool, dtype: Any, device: Any):
    """The per-channel ``(weight, bias)`` of a norm layer: ones and zeros, or None."""
    if not affine:
        return None, None
    weight = empty_param(n, dtype=dtype, device=device)
    with sc.no_grad():
        weight.detach().fill_(1.0)
    return weight, (empty_param(n, dtype=dtype, device=device) if bias else None)


class _BatchNorm(Module):
    _ranks: tuple[int, ...] = ()
    _what = ""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True,
                 dtype: Any = sc.f32, device: Any = "cpu", *, bias: bool = True) -> None:
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.weight, self.bias = _affine(num_features, affine, bias, dtype, device)
        if track_running_stats:
            self.register_buffer("running_mean", sc.zeros(num_features, dtype=dtype,
                                                          device=device))  # fmt: skip
            self.register_buffer("running_var", sc.ones(num_features, dtype=dtype, device=device))
            self.register_buffer("num_batches_tracked", sc.zeros((), dtype=sc.i64,
                                                                 device=device))  # fmt: skip
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None

    def forward(self, x: Tensor) -> Tensor:
        name = type(self).__name__
        if x.ndim not in self._ranks:
            raise sc.ShapeError(f"{name}: expected {self._what}, got input of shape {x.shape}")
        if x.shape[1] != self.num_features:
            raise sc.ShapeError(f"{name}: expected {self.num_features} channels (dim 1), got "
                                f"input of shape {x.shape}")  # fmt: skip
        use_batch = self.training or not self.track_running_stats
        if use_batch and x.shape[0] == 0:
            return self._empty_batch(x)
        return F.batch_norm(
            x, self.running_mean, self.running_var, self.weight, self.bias,
            training=use_batch, momentum=self.momentum, eps=self.eps,
            num_batches_tracked=self.num_batches_tracked,
        )  # fmt: skip

    def _empty_batch(self, x: Tensor) -> Tensor:
        """An empty batch in training mode (torch's rule): an empty output (connected to the
        input and the affine parameters, whose gradients are zeros), the running statistics
        unchanged, the batch counted."""
        if self.training and self.num_batches_tracked is not None:
            with sc.no_grad():
                self.num_batches_tracked.add_(1)
        view = (1, self.num_features) + (1,) * (x.ndim - 2)
        y = x * 1.0
        if self.weight is not None:
            y = y * self.weight.reshape(view)
        if self.bias is not None:
            y = y + self.bias.reshape(view)
        return y

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of ``[N, C]`` or ``[N, C, L]`` over N (and L) per channel.

    Training uses the batch statistics (biased variance) and updates ``running_mean`` /
    ``running_var`` (unbiased) with ``momentum``; eval mode uses the running statistics.

    Attributes:
        weight: ``[C]`` ones; bias: ``[C]`` zeros; buffers running_mean (0), running_var (1),
        num_batches_tracked.
    """

    _ranks = (2, 3)
    _what = "input [N, C] or [N, C, L]"


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of ``[N, C, H, W]`` per channel (see ``BatchNorm1d``)."""

    _ranks = (4,)
    _what = "input [N, C, H, W]"


class LayerNorm(Module):
    """Normalise over the trailing ``normalized_shape`` dims (biased variance), then scale
    and shift (fused kernel).

    Attributes:
        weight: ones of ``normalized_shape``; bias: zeros of ``normalized_shape``.
    """

    def __init__(self, normalized_shape: int | tuple[int, ...], eps: float = 1e-5,
                 elementwise_affine: bool = True, bias: bool = True,
                 dtype: Any = sc.f32, device: Any = "cpu") -> None:  # fmt: skip
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else \
            tuple(normalized_shape)
        self.normalized_shape, self.eps = shape, eps
        self.elementwise_affine = elementwise_affine
        self.weight = self.bias = None
        if elementwise_affine:
            self.weight = empty_param(*shape, dtype=dtype, device=device)
            with sc.no_grad():
                self.weight.detach().fill_(1.0)
            if bias:
                self.bias = empty_param(*shape, dtype=dtype, device=device)

    def forward(self, x: Tensor) -> Tensor:
        return sc.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")  # fmt: skip


class GroupNorm(Module):
    """Normalise ``[N, C, *]`` over groups of ``C / num_groups`` channels, then a per-channel
    affine transform (weight ones, bias zeros; ``bias=False`` keeps only the weight)."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5,
                 affine: bool = True, dtype: Any = sc.f32, device: Any = "cpu", *,
                 bias: bool = True) -> None:  # fmt: skip
        super().__init__()
        if num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels ({num_channels}) must be divisible by "
                             f"num_groups ({num_groups})")  # fmt: skip
        self.num_groups, self.num_channels, self.eps, self.affine = (
            num_groups, num_channels, eps, affine)  # fmt: skip
        self.weight, self.bias = _affine(num_channels, affine, bias, dtype, device)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim < 2 or x.shape[1] != self.num_channels:
            raise sc.ShapeError(f"GroupNorm: expected input [N, {self.num_channels}, *], got "
                                f"shape {x.shape}")  # fmt: skip
        return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"


class RMSNorm(Module):
    """``x / sqrt(mean(x²) + eps) * weight`` over the trailing dims (fused kernel);
    ``eps=None`` uses the dtype's machine epsilon, like PyTorch."""

    def __init__(self, normalized_shape: int | tuple[int, ...], eps: float | None = None,
                 elementwise_affine: bool = True, dtype: Any = sc.f32,
                 device: Any = "cpu") -> None:  # fmt: skip
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else \
            tuple(normalized_shape)
        self.normalized_shape, self.eps = shape, eps
        self.elementwise_affine = elementwise_affine
        self.weight = None
        if elementwise_affine:
            self.weight = empty_param(*shape, dtype=dtype, device=device)
            with sc.no_grad():
                self.weight.detach().fill_(1.0)

    def forward(self, x: Tensor) -> Tensor:
        return F.rms_norm(x, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}"
