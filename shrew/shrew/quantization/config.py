"""QuantConfig: how weights are quantized (bits, symmetric or not, granularity), and the
parser of the `.sw` ``@inference { quantization: { ... } }`` block into one."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from shrew_core import ShrewError

GRANULARITIES = ("per_tensor", "per_channel", "per_group")
GROUP_SIZES = (32, 64, 128)


class QuantizationError(ShrewError, ValueError):
    """Bad quantization input: config, tensor dtype/values, shapes."""


@dataclass(frozen=True)
class QuantConfig:
    """Post-training weight quantization settings.

    Args:
        bits: 8 or 4. Codes are signed: int8 in [-128, 127] (asymmetric) / [-127, 127]
            (symmetric), int4 in [-8, 7] / [-7, 7]; int4 is packed two per byte.
        symmetric: zero point 0 and scale ``max|x| / qmax``; else an integer zero point and
            scale ``(max - min) / (qmax - qmin)`` over a range that includes 0 (like torch's
            MinMaxObserver), so 0.0 is exactly representable.
        granularity: ``"per_tensor"`` (one scale), ``"per_channel"`` (one per index of dim 0:
            per output row of a Linear weight) or ``"per_group"`` (``group_size`` consecutive
            values along the last dim — the input dim of a Linear weight — per scale, as
            GPTQ / llama.cpp formats do).
        group_size: 32, 64 or 128 (per_group only); it must divide the last dim.

    Examples:
        >>> QuantConfig.int4().per_group(32)
        QuantConfig(bits=4, symmetric=True, granularity='per_group', group_size=32)
    """

    bits: int = 8
    symmetric: bool = True
    granularity: str = "per_tensor"
    group_size: int = 128

    def __post_init__(self) -> None:
        if isinstance(self.bits, bool) or self.bits not in (4, 8):
            raise QuantizationError(f"QuantConfig: bits must be 8 or 4, got {self.bits!r}")
        if self.granularity not in GRANULARITIES:
            raise QuantizationError(
                f"QuantConfig: granularity must be one of {', '.join(GRANULARITIES)}, "
                f"got {self.granularity!r}"
            )
        if self.granularity == "per_group" and self.group_size not in GROUP_SIZES:
            raise QuantizationError(
                f"QuantConfig: group_size must be one of {GROUP_SIZES}, got {self.group_size!r}"
            )
        if not isinstance(self.symmetric, bool):
            raise QuantizationError(
                f"QuantConfig: symmetric must be a bool, got {self.symmetric!r}"
            )

    # ------------------------------------------------------------------ the seed's constructors
    @classmethod
    def int8(cls) -> QuantConfig:
        """int8, symmetric, per tensor (the default)."""
        return cls(8)

    @classmethod
    def int8_per_channel(cls) -> QuantConfig:
        return cls(8, granularity="per_channel")

    @classmethod
    def int4(cls) -> QuantConfig:
        return cls(4)

    @classmethod
    def int4_per_channel(cls) -> QuantConfig:
        return cls(4, granularity="per_channel")

    @classmethod
    def int4_per_group(cls, group_size: int = 128) -> QuantConfig:
        return cls(4, granularity="per_group", group_size=group_size)

    def asymmetric(self) -> QuantConfig:
        """The same config with an integer zero point."""
        return replace(self, symmetric=False)

    def per_group(self, group_size: int = 128) -> QuantConfig:
        """The same config, one scale per ``group_size`` values along the last dim."""
        return replace(self, granularity="per_group", group_size=group_size)

    # ------------------------------------------------------------------ ranges
    @property
    def qmax(self) -> int:
        return 127 if self.bits == 8 else 7

    @property
    def qmin(self) -> int:
        return -self.qmax if self.symmetric else -self.qmax - 1


_SPEC_KEYS = ("mode", "bits", "dtype", "scheme", "symmetric", "granularity", "group_size",
              "calibration")  # fmt: skip


def config_from_spec(spec: Mapping[str, Any] | None) -> QuantConfig | None:
    """The QuantConfig of a `.sw` ``@inference { quantization: { ... } }`` map, or None when
    the map is empty or absent.

    Keys: ``mode`` (or ``bits``/``dtype``): ``"int8"`` / ``"int4"`` / 8 / 4;
    ``scheme``: ``"symmetric"`` / ``"asymmetric"`` (or ``symmetric: true|false``);
    ``granularity``: ``"per_tensor"`` / ``"per_channel"`` / ``"per_group"``;
    ``group_size``; ``calibration``: ``"dynamic"`` or ``"weights"`` (weights only: the
    activations stay float), anything else is not built. Unknown keys are errors.

    >>> config_from_spec({"mode": "int8", "calibration": "dynamic"})
    QuantConfig(bits=8, symmetric=True, granularity='per_tensor', group_size=128)
    """
    if not spec:
        return None
    unknown = sorted(set(spec) - set(_SPEC_KEYS))
    if unknown:
        raise QuantizationError(
            f"@inference quantization: unknown key(s) {', '.join(unknown)}; "
            f"known: {', '.join(_SPEC_KEYS)}"
        )
    mode = spec.get("mode", spec.get("bits", spec.get("dtype", 8)))
    bits = {"int8": 8, "i8": 8, "int4": 4, "i4": 4, 8: 8, 4: 4}.get(mode)
    if bits is None:
        raise QuantizationError(
            f"@inference quantization: mode must be \"int8\" or \"int4\", got {mode!r}"
        )
    symmetric = spec.get("symmetric", True)
    if "scheme" in spec:
        if spec["scheme"] not in ("symmetric", "asymmetric"):
            raise QuantizationError(
                "@inference quantization: scheme must be \"symmetric\" or \"asymmetric\", "
                f"got {spec['scheme']!r}"
            )
        symmetric = spec["scheme"] == "symmetric"
    calibration = spec.get("calibration", "dynamic")
    if calibration not in ("dynamic", "weights"):
        raise NotImplementedError(
            f"@inference quantization: calibration {calibration!r} (static activation "
            "quantization) is not built; use \"dynamic\" (weights only)"
        )
    default_gran = "per_group" if "group_size" in spec else "per_tensor"
    return QuantConfig(
        bits,
        symmetric,
        spec.get("granularity", default_gran),
        spec.get("group_size", 128),
    )
