"""shrew.quantization: post-training INT8 / INT4 weight quantization.

>>> import shrew_core as sc, shrew_nn as nn
>>> from shrew.quantization import QuantConfig, quantize, quantize_model
>>> q = quantize(sc.randn(16, 64), QuantConfig.int4().per_group(32))
>>> q.int_values().shape, q.scales.shape, q.size_bytes
((16, 64), (16, 2), 672)
>>> model = quantize_model(nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 4)))
>>> type(model[0]).__name__
'QuantizedLinear'

Integer codes match ``torch.quantize_per_tensor`` / ``quantize_per_channel`` given the same
scale and zero point; int4 is packed two per byte; ``QuantizedLinear`` runs on the
backend's ``quantized_linear`` kernel without building the float weight.
"""

from .config import QuantConfig, QuantizationError, config_from_spec
from .executor import inference_config, quantize_executor
from .linear import (
    QuantizationStats,
    QuantizedLinear,
    quantization_stats,
    quantize_model,
    quantize_named_parameters,
)
from .tensor import QuantizedTensor, pack_int4, quantize, quantize_with_params

__all__ = [
    "QuantConfig",
    "QuantizationError",
    "QuantizationStats",
    "QuantizedLinear",
    "QuantizedTensor",
    "config_from_spec",
    "inference_config",
    "pack_int4",
    "quantization_stats",
    "quantize",
    "quantize_executor",
    "quantize_model",
    "quantize_named_parameters",
    "quantize_with_params",
]
