"""Devices: where a tensor's storage lives. ``"cpu"``, ``"cuda"``, ``"cuda:1"``.

A device's ``type`` is the name of the backend that owns it, so a third-party
backend registered as ``"mybackend"`` gives tensors on ``Device("mybackend")``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import DeviceError


@dataclass(frozen=True)
class Device:
    type: str
    index: int = 0

    def __str__(self) -> str:
        return self.type if self.index == 0 and self.type == "cpu" else f"{self.type}:{self.index}"

    def __repr__(self) -> str:
        return f"device({str(self)!r})"


def CpuDevice() -> Device:  # noqa: N802 - the seed's spelling
    return Device("cpu", 0)


def CudaDevice(ordinal: int = 0) -> Device:  # noqa: N802 - the seed's spelling
    return Device("cuda", int(ordinal))


#: Device strings parsed so far ("auto" is never kept: it asks the registry each time).
_parsed: dict[str, Device] = {}


def as_device(value) -> Device:
    """Accept a Device or a string ``"type"`` / ``"type:index"``; ``"auto"`` is cuda:0 when
    the cuda backend is installed and a GPU is present, else cpu."""
    if isinstance(value, Device):
        return value
    dev = _parsed.get(value) if isinstance(value, str) else None
    if dev is not None:
        return dev
    if value == "auto":
        from .registry import auto_device

        return auto_device()
    if isinstance(value, str):
        kind, _, idx = value.partition(":")
        if not kind or (idx and not idx.isdigit()):
            raise DeviceError(
                f"cannot parse device string {value!r}; expected e.g. 'cpu', 'cuda:0'"
            )
        dev = Device(kind, int(idx) if idx else 0)
        if len(_parsed) < 64:
            _parsed[value] = dev
        return dev
    raise DeviceError(f"expected a device or device string, got {type(value).__name__}")
