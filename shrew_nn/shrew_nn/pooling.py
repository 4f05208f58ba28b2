"""Pooling layers on the backend's pooling primitives."""

from __future__ import annotations

from shrew_core import Tensor

from . import functional as F
from ._utils import check_rank
from .module import Module


class MaxPool2d(Module):
    """Max over ``kernel_size`` windows of ``[N, C, H, W]``; ``stride`` defaults to the kernel.

    Args:
        kernel_size, stride, padding, dilation: ints or pairs (padding <= kernel/2,
            padded positions never win).
        return_indices: also return the flat ``H*W`` argmax positions.
        ceil_mode: round the output size up.
    """

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1,
                 return_indices: bool = False, ceil_mode: bool = False) -> None:  # fmt: skip
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.dilation, self.return_indices, self.ceil_mode = dilation, return_indices, ceil_mode

    def forward(self, x: Tensor):
        check_rank("MaxPool2d", x, (3, 4), "input [N, C, H, W] or [C, H, W]")
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation,
                            self.ceil_mode, self.return_indices)  # fmt: skip

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride or self.kernel_size}, "
                f"padding={self.padding}")  # fmt: skip


class AvgPool2d(Module):
    """Mean over ``kernel_size`` windows; ``count_include_pad`` counts zero padding;
    ``divisor_override`` divides each window's sum by that number instead."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True,
                 divisor_override: int | None = None) -> None:  # fmt: skip
        super().__init__()
        if divisor_override is not None and (isinstance(divisor_override, bool) or not
                                             isinstance(divisor_override, int) or
                                             divisor_override == 0):  # fmt: skip
            raise ValueError(f"AvgPool2d: divisor_override must be a non-zero integer, got "
                             f"{divisor_override!r}")  # fmt: skip
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad
        self.divisor_override = divisor_override

    def forward(self, x: Tensor) -> Tensor:
        check_rank("AvgPool2d", x, (3, 4), "input [N, C, H, W] or [C, H, W]")
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)  # fmt: skip

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride or self.kernel_size}, "
                f"padding={self.padding}")  # fmt: skip


class AdaptiveAvgPool2d(Module):
    """Average into a fixed ``output_size``: an int or ``(h, w)``, where ``None`` keeps
    that input size (``(3, None)`` on ``[N, C, 5, 6]`` gives ``[N, C, 3, 6]``)."""

    def __init__(self, output_size) -> None:
        super().__init__()
        if not isinstance(output_size, int) and len(tuple(output_size)) != 2:
            raise ValueError(f"AdaptiveAvgPool2d: output_size must be an int or a pair, got "
                             f"{output_size!r}")  # fmt: skip
        self.output_size = output_size

    def forward(self, x: Tensor) -> Tensor:
        check_rank("AdaptiveAvgPool2d", x, (3, 4), "input [N, C, H, W] or [C, H, W]")
        size = self.output_size
        if not isinstance(size, int):  # None = keep that input size (resolved here)
            size = tuple(x.shape[-2 + i] if v is None else v for i, v in enumerate(size))
        return F.adaptive_avg_pool2d(x, size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"
