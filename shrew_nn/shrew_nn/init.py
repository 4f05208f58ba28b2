"""Parameter initialisers, in place, like ``torch.nn.init`` (every one has a trailing-underscore
name and a plain alias). Random ones draw from shrew's global generator, so
``shrew_core.manual_seed`` makes them reproducible."""

from __future__ import annotations

import math

import shrew_core as sc
from shrew_core import Tensor

__all__ = [
    "calculate_gain", "constant_", "ones_", "zeros_", "uniform_", "normal_", "xavier_uniform_",
    "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "orthogonal_", "constant", "ones",
    "zeros", "uniform", "normal", "xavier_uniform", "xavier_normal", "kaiming_uniform",
    "kaiming_normal", "orthogonal", "fan_in_and_fan_out",
]  # fmt: skip


def _write(t: Tensor, value) -> Tensor:
    with sc.no_grad():
        t.detach().copy_(value)
    return t


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for a nonlinearity (PyTorch's table)."""
    linear = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
              "conv_transpose3d", "sigmoid")  # fmt: skip
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def fan_in_and_fan_out(t: Tensor) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight ``[out, in, *kernel]`` (at least 2-D)."""
    if t.ndim < 2:
        raise ValueError(f"fan in/out needs a tensor with at least 2 dims, got shape {t.shape}")
    field = 1
    for s in t.shape[2:]:
        field *= s
    return t.shape[1] * field, t.shape[0] * field


def constant_(t: Tensor, val: float) -> Tensor:
    return _write(t, val)


def ones_(t: Tensor) -> Tensor:
    return _write(t, 1.0)


def zeros_(t: Tensor) -> Tensor:
    return _write(t, 0.0)


def uniform_(t: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
    """Fill with U(a, b)."""
    return _write(t, sc.uniform(t.shape, a, b, dtype=t.dtype, device=t.device))


def normal_(t: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
    """Fill with N(mean, std²)."""
    return _write(t, sc.normal(t.shape, mean, std, dtype=t.dtype, device=t.device))


def xavier_uniform_(t: Tensor, gain: float = 1.0) -> Tensor:
    """U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out))."""
    fi, fo = fan_in_and_fan_out(t)
    a = gain * math.sqrt(6.0 / (fi + fo))
    return uniform_(t, -a, a)


def xavier_normal_(t: Tensor, gain: float = 1.0) -> Tensor:
    fi, fo = fan_in_and_fan_out(t)
    return normal_(t, 0.0, gain * math.sqrt(2.0 / (fi + fo)))


def _kaiming_std(t: Tensor, a: float, mode: str, nonlinearity: str) -> float:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"kaiming: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fi, fo = fan_in_and_fan_out(t)
    fan = fi if mode == "fan_in" else fo
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(t: Tensor, a: float = 0.0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu") -> Tensor:  # fmt: skip
    """U(-b, b) with b = gain * sqrt(3 / fan). ``a=sqrt(5)`` is Linear/Conv's default."""
    bound = math.sqrt(3.0) * _kaiming_std(t, a, mode, nonlinearity)
    return uniform_(t, -bound, bound)


def kaiming_normal_(t: Tensor, a: float = 0.0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu") -> Tensor:  # fmt: skip
    return normal_(t, 0.0, _kaiming_std(t, a, mode, nonlinearity))


def orthogonal_(t: Tensor, gain: float = 1.0) -> Tensor:
    """A (semi-)orthogonal matrix: the Q of a Gaussian matrix's QR decomposition, with R's
    diagonal made positive (as PyTorch), computed by Gram-Schmidt in f64."""
    if t.ndim < 2:
        raise ValueError(f"orthogonal_: needs at least 2 dims, got shape {t.shape}")
    rows = t.shape[0]
    cols = t.numel // rows
    tall = rows >= cols
    n, m = (rows, cols) if tall else (cols, rows)
    a = sc.randn(n, m, dtype="f64", device=t.device)
    with sc.no_grad():
        q = None  # columns found so far, [n, j]
        for j in range(m):  # classical Gram-Schmidt, applied twice for stability
            v = a[:, j : j + 1]
            if q is not None:
                for _ in range(2):
                    v = v - q @ (q.t() @ v)
            v = v / v.norm()
            q = v if q is None else sc.cat([q, v], dim=1)
        if not tall:
            q = q.t()
        q = (q * gain).reshape(t.shape).to(t.dtype)
    return _write(t, q)


constant, ones, zeros, uniform, normal = constant_, ones_, zeros_, uniform_, normal_
xavier_uniform, xavier_normal = xavier_uniform_, xavier_normal_
kaiming_uniform, kaiming_normal, orthogonal = kaiming_uniform_, kaiming_normal_, orthogonal_
