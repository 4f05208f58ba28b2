"""Convolution layers ``Conv1d`` and ``Conv2d`` on the backend's conv primitives."""

from __future__ import annotations

from typing import Any

import shrew_core as sc
from shrew_core import Tensor

from . import functional as F
from ._utils import fan_in_bound, tuple_n, uniform_param
from .module import Module


class _ConvNd(Module):
    _nd = 0

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple,
                 stride: int | tuple = 1, padding: int | tuple | str = 0,
                 dilation: int | tuple = 1, groups: int = 1, bias: bool = True,
                 dtype: Any = sc.f32, device: Any = "cpu") -> None:  # fmt: skip
        super().__init__()
        name, nd = type(self).__name__, self._nd
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(f"{name}: in_channels ({in_channels}) and out_channels "
                             f"({out_channels}) must be divisible by groups ({groups})")
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"{name}: padding must be an int, a tuple, 'same' or 'valid', "
                                 f"got {padding!r}")  # fmt: skip
            if padding == "same" and any(s != 1 for s in tuple_n(stride, nd, "stride")):
                raise ValueError(f"{name}: padding='same' is not supported for strided "
                                 "convolutions")  # fmt: skip
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = tuple_n(kernel_size, nd, "kernel_size")
        self.stride = tuple_n(stride, nd, "stride")
        self.padding = padding if isinstance(padding, str) else tuple_n(padding, nd, "padding")
        self.dilation = tuple_n(dilation, nd, "dilation")
        self.groups = groups
        fan_in = in_channels // groups
        for k in self.kernel_size:
            fan_in *= k
        bound = fan_in_bound(fan_in)  # kaiming_uniform(a=√5) == U(±1/√fan_in)
        wshape = (out_channels, in_channels // groups) + self.kernel_size
        self.weight = uniform_param(wshape, bound, dtype, device)
        self.bias = uniform_param((out_channels,), bound, dtype, device) if bias else None

    def _check(self, x: Tensor) -> None:
        name, nd = type(self).__name__, self._nd
        if x.ndim not in (nd + 1, nd + 2):
            dims = "L" if nd == 1 else "H, W"
            raise sc.ShapeError(f"{name}: expected input [N, C, {dims}] or [C, {dims}], got "
                                f"shape {x.shape}")  # fmt: skip
        c = x.shape[-nd - 1]
        if c != self.in_channels:
            raise sc.ShapeError(f"{name}: expected {self.in_channels} input channels, got "
                                f"{c} (input shape {x.shape})")  # fmt: skip

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")  # fmt: skip
        if self.padding != (0,) * self._nd:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * self._nd:
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        return s + ("" if self.bias is not None else ", bias=False")


class Conv2d(_ConvNd):
    """2-D convolution (cross-correlation) over ``[N, C, H, W]``.

    Args:
        in_channels, out_channels: channel counts.
        kernel_size, stride, dilation: ints or (h, w) pairs.
        padding: int, pair, ``"valid"`` or ``"same"`` (stride 1 only; even kernels pad one
            extra row/column at the end, like PyTorch).
        groups: channel groups; bias: learnable bias.

    Shape:
        ``[N, C_in, H, W]`` -> ``[N, C_out, H_out, W_out]`` with
        ``H_out = (H + 2p - d (k - 1) - 1) // s + 1``.

    Attributes:
        weight: ``[C_out, C_in/groups, kH, kW]``, U(±1/√fan_in); bias: ``[C_out]``, same.

    Examples:
        >>> import shrew_core as sc, shrew_nn as nn
        >>> nn.Conv2d(3, 8, 3, padding="same")(sc.randn(2, 3, 5, 5)).shape
        (2, 8, 5, 5)
    """

    _nd = 2

    def forward(self, x: Tensor) -> Tensor:
        self._check(x)
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                        self.groups)  # fmt: skip


class Conv1d(_ConvNd):
    """1-D convolution over ``[N, C, L]``; arguments as ``Conv2d`` with single ints.

    Attributes:
        weight: ``[C_out, C_in/groups, K]``, U(±1/√fan_in); bias: ``[C_out]``, same.
    """

    _nd = 1

    def forward(self, x: Tensor) -> Tensor:
        self._check(x)
        pad = self.padding if isinstance(self.padding, str) else self.padding[0]
        return F.conv1d(x, self.weight, self.bias, self.stride[0], pad, self.dilation[0],
                        self.groups)  # fmt: skip
