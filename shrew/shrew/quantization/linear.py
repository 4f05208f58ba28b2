"""QuantizedLinear and the model-level helpers: ``quantize_model`` (every Linear replaced),
``quantize_named_parameters`` and ``quantization_stats``.

``QuantizedLinear`` keeps its weight as integer codes on the layer's device and computes
``x @ Wᵀ + b`` through the backend's ``quantized_linear`` kernel, which reads the codes
directly (the CPU backend's GEMV for batches up to 4, dequantise-a-block-then-BLAS above);
the float weight is never materialised in the forward pass. The backward pass (gradient
with respect to the input, e.g. to train layers before a frozen quantized one) multiplies
by the dequantized weight.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

import shrew_core as sc
import shrew_nn as nn
from shrew_core import DTypeError, Function, ShapeError, Tensor
from shrew_core.fused_defaults import dequantize_weight
from shrew_core.layout import Layout

from .config import QuantConfig
from .tensor import QuantizedTensor, quantize


class _QuantizedMatmul(Function):
    """``x @ Wᵀ`` with the gradient ``g @ W`` (W dequantized for the backward only)."""

    @staticmethod
    def forward(ctx, x, layer):
        ctx.layer = layer
        return layer._matmul(x)

    @staticmethod
    def backward(ctx, grad):
        return (grad @ ctx.layer.dequantize_weight(grad.dtype),)


class QuantizedLinear(nn.Module):
    """``y = x Wᵀ + b`` with an int8 / int4 weight.

    Args:
        qweight: the quantized ``[out_features, in_features]`` weight (any granularity).
        bias: an optional float ``[out_features]`` bias (kept in float).

    Attributes (buffers, so ``state_dict`` and ``to(device)`` carry them):
        weight_data: u8 — the packed codes as ``Backend.quantized_linear`` reads them.
        weight_scales: f32 ``[out_features, groups]``.
        weight_zero_points: f32 ``[out_features, groups]``, or None when symmetric.
        bias: the float bias or None.

    ``parameters()`` is empty (post-training quantization: nothing to train here).

    Examples:
        >>> import shrew_core as sc, shrew_nn as nn
        >>> from shrew.quantization import QuantConfig, QuantizedLinear
        >>> q = QuantizedLinear.from_linear(nn.Linear(64, 8), QuantConfig.int8_per_channel())
        >>> q(sc.randn(2, 64)).shape
        (2, 8)
    """

    def __init__(self, qweight: QuantizedTensor, bias: Tensor | None = None) -> None:
        super().__init__()
        if not isinstance(qweight, QuantizedTensor) or len(qweight.shape) != 2:
            raise ShapeError(
                "QuantizedLinear: expected a QuantizedTensor weight [out, in], got "
                + (f"shape {qweight.shape}" if isinstance(qweight, QuantizedTensor)
                   else type(qweight).__name__)  # fmt: skip
            )
        n, k = qweight.shape
        if bias is not None and bias.shape != (n,):
            raise ShapeError(f"QuantizedLinear: bias shape {bias.shape} != ({n},)")
        self.out_features, self.in_features = n, k
        self._config, self._weight_dtype = qweight.config, qweight.dtype
        groups = qweight.scales.shape[-1] if qweight.config.granularity == "per_group" else 1
        self.groups = groups
        dev = qweight.device

        def per_row(a: np.ndarray) -> Tensor:  # scales / zero points as f32 [N, groups]
            a = a.reshape(n, groups) if a.ndim else a
            rows = np.broadcast_to(a, (n, groups)).astype(np.float32)
            return sc.from_numpy(np.ascontiguousarray(rows), device=dev)

        self.register_buffer("weight_data", sc.from_numpy(qweight.data.view(np.uint8), device=dev))
        self.register_buffer("weight_scales", per_row(qweight.scales))
        zps = None if qweight.config.symmetric else per_row(qweight.zero_points)
        self.register_buffer("weight_zero_points", zps)
        self.register_buffer("bias", None if bias is None else bias.detach())

    @classmethod
    def from_linear(cls, linear: nn.Linear, config: QuantConfig | None = None) -> QuantizedLinear:
        """Quantize ``linear.weight`` with ``config`` (default int8 per channel: one scale per
        output row); the bias stays float."""
        config = config or QuantConfig.int8_per_channel()
        bias = getattr(linear, "bias", None)
        return cls(quantize(linear.weight, config), bias)

    @property
    def config(self) -> QuantConfig:
        return self._config

    @property
    def qweight(self) -> QuantizedTensor:
        """The weight as a QuantizedTensor, read from the buffers (so it follows
        ``load_state_dict`` and ``to(device)``)."""
        n, groups = self.out_features, self.groups
        data = self.weight_data.to("cpu").numpy()
        data = data.view(np.int8) if self.config.bits == 8 else data

        def params(t: Tensor | None, dtype) -> np.ndarray:
            a = np.zeros((n, groups)) if t is None else t.to("cpu").numpy().reshape(n, groups)
            g = self.config.granularity
            a = a if g == "per_group" else a[:, 0] if g == "per_channel" else a[0, 0]
            return np.asarray(a, dtype)

        return QuantizedTensor(
            data=data,
            scales=params(self.weight_scales, np.float32),
            zero_points=params(self.weight_zero_points, np.int8),
            shape=(n, self.in_features),
            dtype=self._weight_dtype,
            config=self.config,
            device=self.weight_data.device,
        )

    def dequantize_weight(self, dtype=None) -> Tensor:
        """The float ``[out, in]`` weight (materialised: for inspection and the backward)."""
        b = self.weight_data._backend
        zps = self.weight_zero_points
        w = dequantize_weight(
            b, self.weight_data._storage, self._f32(self.weight_scales)._storage,
            None if zps is None else self._f32(zps)._storage, self.config.bits,
            self.out_features, self.in_features, self.groups, sc.f32,
        )  # fmt: skip
        return w.reshape(self.out_features, self.in_features).to(dtype or self._weight_dtype)

    @staticmethod
    def _f32(t: Tensor) -> Tensor:
        """Buffers converted by ``Module.to(dtype)`` are brought back to the kernel's f32."""
        if t.dtype is sc.f32 and t.layout.offset == 0 and t.layout.is_contiguous():
            return t
        return t.to(sc.f32).contiguous()

    def _matmul(self, x: Tensor) -> Tensor:
        """[M, K] @ Wᵀ -> [M, N] through the backend kernel."""
        b = x._backend
        zps = self.weight_zero_points
        storage = b.quantized_linear(
            x._storage, x.layout, x.dtype, self.weight_data._storage,
            self._f32(self.weight_scales)._storage,
            None if zps is None else self._f32(zps)._storage,
            bits=self.config.bits, out_features=self.out_features,
            in_features=self.in_features, groups=self.groups,
        )  # fmt: skip
        return Tensor._make(storage, Layout.contiguous((x.shape[0], self.out_features)),
                            x.dtype, b)  # fmt: skip

    def forward(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor):
            raise TypeError(f"QuantizedLinear: expected a Tensor, got {type(x).__name__}")
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ShapeError(
                f"QuantizedLinear: expected input [..., {self.in_features}], got shape {x.shape}"
            )
        if not x.dtype.is_float:
            raise DTypeError(f"QuantizedLinear: expected a floating-point input, got {x.dtype}")
        if x.device != self.weight_data.device:
            raise sc.DeviceError(
                f"QuantizedLinear: input on {x.device}, weight on {self.weight_data.device}"
            )
        lead = x.shape[:-1]
        x2 = x.reshape(-1, self.in_features) if x.ndim != 2 else x
        if x.requires_grad and sc.is_grad_enabled():
            y = _QuantizedMatmul.apply(x2, self)
        else:
            y = self._matmul(x2)
        if self.bias is not None:
            y = y + self.bias.to(y.dtype)
        return y.reshape(lead + (self.out_features,)) if x.ndim != 2 else y

    @property
    def size_bytes(self) -> int:
        """Bytes of the quantized weight (codes + scales + zero points) plus the bias."""
        bias = 0 if self.bias is None else self.bias.numel * self.bias.dtype.itemsize
        return self.qweight.size_bytes + bias

    @property
    def memory_savings_bytes(self) -> int:
        """Bytes saved against the float weight of the original dtype."""
        q = self.qweight
        return q.numel * q.dtype.itemsize - q.size_bytes

    def extra_repr(self) -> str:
        c = self.config
        gran = c.granularity + (f"({c.group_size})" if c.granularity == "per_group" else "")
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, int{c.bits} "
                f"{'symmetric' if c.symmetric else 'asymmetric'} {gran}")  # fmt: skip


def _tensor_backends(module: nn.Module) -> dict[int, object]:
    """Backends (and devices) referenced by the module's tensors: shared, never copied."""
    memo: dict[int, object] = {}
    for t in list(module.parameters()) + list(module.buffers()):
        memo[id(t._backend)] = t._backend
    return memo


def _skipped(parent: nn.Module) -> bool:
    """Linears whose parent reads ``.weight`` directly (MultiHeadAttention's out_proj, as
    torch's NonDynamicallyQuantizableLinear) stay float."""
    return isinstance(parent, nn.MultiHeadAttention)


def quantize_model(module: nn.Module, config: QuantConfig | None = None,
                   inplace: bool = False) -> nn.Module:  # fmt: skip
    """Replace every ``shrew_nn.Linear`` in ``module`` (recursively) by a QuantizedLinear.

    Args:
        module: the model (a Linear itself is returned quantized).
        config: default int8 per channel.
        inplace: modify ``module`` itself; otherwise a deep copy is quantized and the
            original is left untouched.

    The ``out_proj`` Linear of a MultiHeadAttention stays float (the attention reads its
    weight directly), like torch's ``quantize_dynamic``.
    """
    config = config or QuantConfig.int8_per_channel()
    if not isinstance(module, nn.Module):
        raise TypeError(f"quantize_model: expected a Module, got {type(module).__name__}")
    if not inplace:
        module = copy.deepcopy(module, _tensor_backends(module))
    if isinstance(module, nn.Linear):
        return QuantizedLinear.from_linear(module, config)
    done: dict[int, QuantizedLinear] = {}
    for _, parent in list(module.named_modules()):
        if _skipped(parent):
            continue
        for name, child in list(parent._modules.items()):
            if isinstance(child, nn.Linear):
                if id(child) not in done:
                    done[id(child)] = QuantizedLinear.from_linear(child, config)
                parent._modules[name] = done[id(child)]  # in place: keeps Sequential order
    return module


def quantize_named_parameters(module: nn.Module, config: QuantConfig | None = None
                              ) -> list[tuple[str, QuantizedTensor]]:  # fmt: skip
    """``(name, QuantizedTensor)`` for every float parameter of rank >= 2 (the seed's
    helper: weights quantized, biases and norms left out)."""
    config = config or QuantConfig()
    return [(name, quantize(p, config)) for name, p in _weights(module)]


def _weights(module: nn.Module) -> Iterator[tuple[str, Tensor]]:
    for name, p in module.named_parameters():
        if p.ndim >= 2 and p.dtype.is_float:
            yield name, p


@dataclass(frozen=True)
class QuantizationStats:
    """What quantizing a model saves.

    Attributes:
        quantized_tensors, float_tensors: how many tensors are (would be) quantized / stay float.
        quantized_numel, float_numel: their element counts.
        original_bytes: every tensor in its own dtype.
        quantized_bytes: quantized tensors at ``size_bytes`` + float tensors as they are.
    """

    quantized_tensors: int
    float_tensors: int
    quantized_numel: int
    float_numel: int
    original_bytes: int
    quantized_bytes: int

    @property
    def compression_ratio(self) -> float:
        return self.original_bytes / self.quantized_bytes if self.quantized_bytes else 1.0

    @property
    def memory_savings_bytes(self) -> int:
        return self.original_bytes - self.quantized_bytes

    def __str__(self) -> str:
        return (f"Quantization: {self.quantized_tensors} tensors quantized "
                f"({self.quantized_numel} values), {self.float_tensors} float "
                f"({self.float_numel} values); {self.original_bytes} -> {self.quantized_bytes} "
                f"bytes ({self.compression_ratio:.2f}x)")  # fmt: skip


def quantization_stats(module: nn.Module, config: QuantConfig | None = None) -> QuantizationStats:
    """Sizes before and after quantization.

    With ``config``: what ``quantize_named_parameters(module, config)`` would give (rank >= 2
    float parameters quantized, the rest float). Without: the model as it is, counting
    each QuantizedLinear's weight as quantized (e.g. the result of ``quantize_model``)."""
    quantized: list[QuantizedTensor] = []
    floats: list[Tensor] = []
    if config is not None:
        by_name = dict(quantize_named_parameters(module, config))
        for name, p in module.named_parameters():
            if name in by_name:
                quantized.append(by_name[name])
            else:
                floats.append(p)
    else:
        for mod in module.modules():
            if isinstance(mod, QuantizedLinear):
                quantized.append(mod.qweight)
                floats.extend([] if mod.bias is None else [mod.bias])
            else:
                floats.extend(mod.parameters(recurse=False))
    float_bytes = sum(t.numel * t.dtype.itemsize for t in floats)
    return QuantizationStats(
        quantized_tensors=len(quantized),
        float_tensors=len(floats),
        quantized_numel=sum(q.numel for q in quantized),
        float_numel=sum(t.numel for t in floats),
        original_bytes=sum(q.numel * q.dtype.itemsize for q in quantized) + float_bytes,
        quantized_bytes=sum(q.size_bytes for q in quantized) + float_bytes,
    )
