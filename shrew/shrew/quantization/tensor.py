"""``quantize(tensor, config) -> QuantizedTensor``: integer codes, scales and zero points.

Codes are computed like PyTorch's CPU kernels, so given the same scale and zero point they
are the integers ``torch.quantize_per_tensor`` / ``torch.quantize_per_channel`` produce::

    inv = float32(1) / float32(scale)
    q   = clamp(round_half_even(x * inv + zero_point), qmin, qmax)     (in float32)

with one difference between the two torch paths reproduced exactly: per tensor, torch
(FBGEMM) evaluates ``x * inv + zero_point`` as one fused multiply-add; per channel (and so
per group, which is per channel over rows of ``group_size`` values) it rounds ``x * inv``
to float32 before adding the zero point. Inputs are quantized from their float32 values
(f64 weights are rounded to f32 first, as ``torch.quantize_*`` requires f32).

Storage: int8 codes one per byte (``data`` is int8); int4 codes packed two per byte
(``data`` is uint8, element i in byte i // 2, the low nibble for even i, stored as q + 8),
``ceil(numel / 2)`` bytes. ``scales`` are float32 and ``zero_points`` int8 (zeros when
symmetric), of shape ``()`` per tensor, ``(C,)`` per channel and ``shape[:-1] +
(shape[-1] // group_size,)`` per group.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

import shrew_core as sc
from shrew_core import DTypeError, ShapeError, Tensor
from shrew_core.errors import fmt_shape

from .config import QuantConfig, QuantizationError

_F32 = np.float32
_TINY = np.finfo(np.float32).tiny


@dataclass(eq=False)
class QuantizedTensor:
    """A quantized tensor: packed integer codes plus their scales and zero points.

    Attributes:
        data: the codes as stored (int8 one per value, or uint8 with two int4 per byte).
        scales: float32, shape ``()`` / ``(C,)`` / ``shape[:-1] + (groups,)``.
        zero_points: int8 of the scales' shape (zeros for a symmetric config).
        shape, dtype, device: of the tensor that was quantized.
        config: the QuantConfig used.
    """

    data: np.ndarray
    scales: np.ndarray
    zero_points: np.ndarray
    shape: tuple[int, ...]
    dtype: sc.DType
    config: QuantConfig
    device: sc.Device

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def bits(self) -> int:
        return self.config.bits

    @property
    def size_bytes(self) -> int:
        """Bytes held: packed codes + scales + zero points."""
        return int(self.data.nbytes + self.scales.nbytes + self.zero_points.nbytes)

    @property
    def compression_ratio(self) -> float:
        """Bytes of the original tensor (in its own dtype) per byte held here."""
        size = self.size_bytes
        return self.numel * self.dtype.itemsize / size if size else 1.0

    def int_values(self) -> np.ndarray:
        """The integer codes, unpacked, as an int8 array of ``shape``."""
        if self.bits == 8:
            return self.data.reshape(self.shape).copy()
        codes = np.empty(2 * self.data.size, np.int8)
        codes[0::2] = self.data & 15
        codes[1::2] = self.data >> 4
        return (codes[: self.numel] - np.int8(8)).reshape(self.shape)

    def _expanded(self, params: np.ndarray) -> np.ndarray:
        """Scales or zero points broadcast against ``int_values()`` (float64)."""
        p = params.astype(np.float64)
        g = self.config.granularity
        if g == "per_group":
            gs = self.config.group_size
            return np.repeat(p, gs, axis=-1) if self.shape else p
        if g == "per_channel" and self.shape:
            return p.reshape((-1,) + (1,) * (len(self.shape) - 1))
        return p

    def dequantize(self) -> Tensor:
        """``(q - zero_point) * scale`` as a tensor of the original dtype, shape and device
        (computed in float64, then rounded once)."""
        q = self.int_values().astype(np.float64)
        x = (q - self._expanded(self.zero_points)) * self._expanded(self.scales)
        return sc.from_numpy(np.ascontiguousarray(x.astype(self.dtype.np_dtype)),
                             device=self.device)  # fmt: skip

    def __repr__(self) -> str:
        c = self.config
        return (
            f"QuantizedTensor(shape={fmt_shape(self.shape)}, dtype={self.dtype}, "
            f"int{c.bits} {'symmetric' if c.symmetric else 'asymmetric'} {c.granularity}"
            + (f"({c.group_size})" if c.granularity == "per_group" else "")
            + f", {self.size_bytes} bytes, {self.compression_ratio:.2f}x)"
        )


def _host_values(tensor, what: str) -> tuple[np.ndarray, sc.DType, sc.Device]:
    if isinstance(tensor, Tensor):
        dtype, device = tensor.dtype, tensor.device
        values = np.asarray(tensor.detach().numpy())
    elif isinstance(tensor, np.ndarray):
        values = tensor
        try:
            dtype = sc.as_dtype(tensor.dtype)
        except (DTypeError, KeyError, TypeError, ValueError):
            raise DTypeError(f"{what}: unsupported array dtype {tensor.dtype}") from None
        device = sc.as_device("cpu")
    else:
        raise TypeError(f"{what}: expected a Tensor or a NumPy array, got {type(tensor).__name__}")
    if not dtype.is_float:
        raise DTypeError(f"{what}: expected a floating-point tensor, got {dtype}")
    finite = np.isfinite(values)
    x = values.astype(_F32)
    if not finite.all() or not np.isfinite(x).all():
        bad = np.argwhere(~(finite & np.isfinite(x)))[0]
        raise QuantizationError(
            f"{what}: cannot quantize a tensor with non-finite values (or values beyond the "
            f"float32 range): {int((~finite).sum() or 1)} found, the first at index "
            f"{tuple(int(i) for i in bad)} = {values[tuple(bad)]!r}"
        )
    return x, dtype, device


def _rows(x: np.ndarray, config: QuantConfig, what: str) -> tuple[np.ndarray, tuple, bool]:
    """``x`` as [R, L] rows sharing one scale each, the shape of ``scales``, and whether
    torch's per-tensor (fused multiply-add) rounding applies."""
    g = config.granularity
    if g == "per_group":
        if x.ndim == 0:
            raise ShapeError(f"{what}: per_group quantization needs at least one dim, got ()")
        gs, last = config.group_size, x.shape[-1]
        if last % gs:
            raise ShapeError(
                f"{what}: group_size {gs} does not divide the last dim {last} of shape "
                f"{fmt_shape(x.shape)} (use a group size that divides it, or per_channel)"
            )
        return x.reshape(-1, gs), x.shape[:-1] + (last // gs,), False
    if g == "per_channel" and x.ndim >= 1:
        return x.reshape(x.shape[0], -1), (x.shape[0],), False
    return x.reshape(1, -1), (), True


def _params(rows: np.ndarray, config: QuantConfig) -> tuple[np.ndarray, np.ndarray]:
    """float32 scales and int zero points, one per row."""
    qmin, qmax = config.qmin, config.qmax
    if rows.shape[1] == 0:
        lo = hi = np.zeros(rows.shape[0], _F32)
    else:
        lo, hi = rows.min(axis=1), rows.max(axis=1)
    if config.symmetric:
        amax = np.maximum(np.abs(lo), np.abs(hi))
        scale = (amax / _F32(qmax)).astype(_F32)
        zp = np.zeros(rows.shape[0], np.int64)
    else:
        lo, hi = np.minimum(lo, _F32(0)), np.maximum(hi, _F32(0))  # 0.0 stays representable
        scale = ((hi - lo) / _F32(qmax - qmin)).astype(_F32)
        zp = None
    degenerate = ~(scale >= _TINY)  # zero range (or so small that 1/scale overflows)
    scale = np.where(degenerate, _F32(1.0), scale).astype(_F32)
    if zp is None:
        zp = np.clip(qmin - np.rint(lo.astype(np.float64) / scale), qmin, qmax).astype(np.int64)
    return scale, zp


def _codes(rows, scale, zp, config: QuantConfig, fused: bool) -> np.ndarray:
    inv = (_F32(1.0) / scale).astype(_F32)[:, None]
    zpf = zp.astype(_F32)[:, None]
    if fused:  # one rounding of x*inv + zp (exact product and sum in f64, then to f32)
        v = (rows.astype(np.float64) * inv.astype(np.float64) + zpf).astype(_F32)
    else:
        v = (rows * inv).astype(_F32) + zpf
    return np.clip(np.rint(v), config.qmin, config.qmax).astype(np.int8)


def pack_int4(codes: np.ndarray) -> np.ndarray:
    """int4 codes (any shape, values -8..7) -> ceil(numel/2) bytes, low nibble first, q + 8."""
    u = (codes.reshape(-1).astype(np.int16) + 8).astype(np.uint8)
    if u.size % 2:
        u = np.append(u, np.uint8(0))
    return (u[0::2] | (u[1::2] << 4)).astype(np.uint8)


def quantize(tensor, config: QuantConfig | None = None) -> QuantizedTensor:
    """Quantize a float tensor (or NumPy array) with ``config`` (default int8 per tensor).

    Raises:
        DTypeError: the tensor is not floating point.
        QuantizationError: it holds NaN or inf.
        ShapeError: per_group with a group size that does not divide the last dim.

    Examples:
        >>> import shrew_core as sc
        >>> q = quantize(sc.tensor([[0.5, -1.0, 0.25, 1.0]]), QuantConfig.int8())
        >>> q.int_values().tolist(), float(q.scales)
        ([[64, -127, 32, 127]], 0.007874015718698502)
    """
    config = config or QuantConfig()
    if not isinstance(config, QuantConfig):
        raise TypeError(f"quantize: config must be a QuantConfig, got {type(config).__name__}")
    x, dtype, device = _host_values(tensor, "quantize")
    rows, pshape, fused = _rows(x, config, "quantize")
    scale, zp = _params(rows, config)
    codes = _codes(rows, scale, zp, config, fused)
    data = codes.reshape(-1) if config.bits == 8 else pack_int4(codes)
    return QuantizedTensor(
        data=data,
        scales=scale.reshape(pshape),
        zero_points=zp.astype(np.int8).reshape(pshape),
        shape=tuple(x.shape),
        dtype=dtype,
        config=config,
        device=device,
    )


def quantize_with_params(tensor, scales, zero_points, config: QuantConfig) -> QuantizedTensor:
    """Quantize with given scales/zero points (shaped as ``quantize`` would make them), e.g.
    to reproduce ``torch.quantize_per_channel(x, scales, zero_points, 0, torch.qint8)``."""
    x, dtype, device = _host_values(tensor, "quantize_with_params")
    rows, pshape, fused = _rows(x, config, "quantize_with_params")
    scale = np.asarray(scales, _F32).reshape(-1)
    zp = np.asarray(zero_points, np.int64).reshape(-1)
    if scale.size != rows.shape[0] or zp.size != rows.shape[0]:
        raise ShapeError(
            f"quantize_with_params: expected scales and zero_points of shape {fmt_shape(pshape)}"
            f", got {fmt_shape(np.shape(scales))} and {fmt_shape(np.shape(zero_points))}"
        )
    if not (scale > 0).all() or not np.isfinite(scale).all():
        raise QuantizationError("quantize_with_params: scales must be finite and positive")
    if ((zp < config.qmin) | (zp > config.qmax)).any():
        raise QuantizationError(
            f"quantize_with_params: zero points must lie in [{config.qmin}, {config.qmax}]"
        )
    codes = _codes(rows, scale, zp, config, fused)
    data = codes.reshape(-1) if config.bits == 8 else pack_int4(codes)
    return QuantizedTensor(data, scale.reshape(pshape), zp.astype(np.int8).reshape(pshape),
                           tuple(x.shape), dtype, config, device)  # fmt: skip
