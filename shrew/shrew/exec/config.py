"""RuntimeConfig: how a .sw program is executed (symbolic dims, dtype, device, mode, seed)."""

from __future__ import annotations

from dataclasses import dataclass, field

import shrew_core as sc


@dataclass
class RuntimeConfig:
    """Settings for ``load_program`` / ``load_trainer``.

    Attributes:
        dims: sizes for symbolic dims that params need (``{"Batch": 32}``); dims of inputs
            are bound from the tensors at run time.
        dtype: the float dtype for params declared f32 (``None`` keeps declared dtypes).
        device: where params and computation live (``"cpu"``, ``"reference"``, ...); None
            takes the program's ``@config { device: ...; }`` (``"auto"`` picks cuda when
            a GPU is present), else ``"cpu"``. ``dtype`` and ``seed`` default from @config
            the same way.
        training: dropout active and batch-norm statistics updated.
        seed: if given, ``manual_seed(seed)`` before params are initialised.
        optimize_level: shrew_ir optimisation level (0, 1 or 2) applied before execution.
    """

    dims: dict[str, int] = field(default_factory=dict)
    dtype: str | None = None
    device: str | None = None
    training: bool = False
    seed: int | None = None
    optimize_level: int = 2

    def resolved(self, program_config: dict) -> RuntimeConfig:
        """A copy with device/dtype/seed filled from the program's @config where unset."""
        device = self.device or program_config.get("device") or "cpu"
        if device == "auto":
            device = str(sc.as_device("auto"))  # cuda only when a GPU is present
        dtype = self.dtype or program_config.get("dtype")
        seed = self.seed if self.seed is not None else program_config.get("seed")
        return RuntimeConfig(
            dict(self.dims),
            dtype,
            str(device),
            self.training,
            None if seed is None else int(seed),
            self.optimize_level,
        )

    def set_dim(self, name: str, size: int) -> RuntimeConfig:
        self.dims[name] = int(size)
        return self

    def with_dtype(self, dtype) -> RuntimeConfig:
        self.dtype = sc.as_dtype(dtype).name
        return self

    def with_training(self, training: bool = True) -> RuntimeConfig:
        self.training = training
        return self
