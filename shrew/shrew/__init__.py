"""Shrew facade: executor, JIT, trainer, checkpoints, safetensors, ONNX, quantization, profiling, distributed training."""

__version__ = "0.1.0"
