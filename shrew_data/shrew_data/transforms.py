"""Transforms: callables applied to one sample (``dataset[i]``) or, vectorised, to a whole
batch (``DataLoader(batch_transform=...)``).

Images are channel-first: one image is ``(C, H, W)``, a batch ``(N, C, H, W)``; every
transform below accepts both and handles a batch in one NumPy expression (random ones draw
one parameter per image). Inputs may be NumPy arrays or shrew tensors; outputs have the
input's kind (tensors come back on their device with their dtype).

Random transforms draw from the DataLoader's per-batch generator while a loader builds a
batch (reproducible for a loader seed, whatever worker runs it), else from their own
generator seeded by ``seed`` (or from ``shrew_core``'s global generator).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import shrew_core as sc
from shrew_core import Tensor
from shrew_core.errors import ShapeError, fmt_shape

from ._rng import current_generator
from .collate import array_to_tensor
from .errors import DataError
from .sampler import resolve_seed


class Transform:
    """Base class: ``__call__(x) -> x'``."""

    def __call__(self, x: Any) -> Any:
        raise NotImplementedError

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({fields})"


class Compose(Transform):
    """Apply ``transforms`` in order."""

    def __init__(self, transforms: Sequence[Callable[[Any], Any]]) -> None:
        self.transforms = list(transforms)

    def __call__(self, x: Any) -> Any:
        for t in self.transforms:
            x = t(x)
        return x


class Lambda(Transform):
    """Wrap any callable as a transform."""

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        if not callable(fn):
            raise DataError(f"Lambda: expected a callable, got {type(fn).__name__}")
        self.fn = fn

    def __call__(self, x: Any) -> Any:
        return self.fn(x)


def _as_array(x: Any) -> tuple[np.ndarray, Any]:
    """(array view, how to turn a result back into the input's kind)."""
    if isinstance(x, Tensor):
        device, dtype = x.device, x.dtype
        return np.asarray(x.numpy()), lambda a: sc.from_numpy(
            np.ascontiguousarray(a), device=device, dtype=dtype
        )
    return np.asarray(x), lambda a: a


def _image_dims(arr: np.ndarray, op: str) -> None:
    if arr.ndim not in (3, 4):
        raise ShapeError(
            f"{op}: expected an image (C, H, W) or a batch (N, C, H, W), got shape "
            f"{fmt_shape(arr.shape)}"
        )


class ToTensor(Transform):
    """Image array -> float tensor, channel-first, ``uint8`` scaled to [0, 1].

    One image: ``(H, W)`` -> ``(1, H, W)``; ``(H, W, C)`` -> ``(C, H, W)``. With
    ``batched=True``: ``(N, H, W)`` -> ``(N, 1, H, W)``; ``(N, H, W, C)`` -> ``(N, C, H, W)``.
    Tensors and arrays that are already channel-first can skip the transpose with
    ``channels_last=False``.
    """

    def __init__(
        self,
        dtype: Any = "f32",
        device: Any = None,
        batched: bool = False,
        channels_last: bool = True,
    ) -> None:
        self.dtype = sc.as_dtype(dtype)
        self.device = device
        self.batched = batched
        self.channels_last = channels_last

    def __call__(self, x: Any) -> Tensor:
        arr = np.asarray(x.numpy()) if isinstance(x, Tensor) else np.asarray(x)
        lead = 1 if self.batched else 0
        if arr.ndim == lead + 2:
            arr = np.expand_dims(arr, lead)
        elif arr.ndim == lead + 3:
            if self.channels_last:
                arr = np.moveaxis(arr, -1, lead)
        else:
            want = "(N, H, W) or (N, H, W, C)" if self.batched else "(H, W) or (H, W, C)"
            raise ShapeError(f"ToTensor: expected {want}, got shape {fmt_shape(arr.shape)}")
        scale = 1.0 / 255.0 if arr.dtype == np.uint8 else None
        out = arr.astype(self.dtype.np_dtype)
        if scale is not None:
            out *= np.asarray(scale, dtype=out.dtype)
        return array_to_tensor(out, self.device)


class Normalize(Transform):
    """``(x - mean[c]) / std[c]`` per channel (dim -3); scalars apply to every element."""

    def __init__(self, mean: float | Sequence[float], std: float | Sequence[float]) -> None:
        self.mean = np.atleast_1d(np.asarray(mean, dtype=np.float64))
        self.std = np.atleast_1d(np.asarray(std, dtype=np.float64))
        if self.mean.ndim != 1 or self.std.ndim != 1:
            raise DataError("Normalize: mean and std must be scalars or 1-D sequences")
        if np.any(self.std == 0):
            raise DataError(f"Normalize: std must be non-zero, got {self.std.tolist()}")

    def _shape(self, ndim: int, channels: int) -> tuple[int, ...]:
        size = max(len(self.mean), len(self.std))
        if size == 1:
            return (1,)
        if ndim < 3 or channels != size:
            raise ShapeError(
                f"Normalize: {size} channel statistics but the input has "
                f"{channels if ndim >= 3 else 'no'} channels at dim -3 (ndim={ndim})"
            )
        return (size, 1, 1)

    def __call__(self, x: Any) -> Any:
        channels = x.shape[-3] if len(x.shape) >= 3 else 0
        shape = self._shape(len(x.shape), channels)
        mean = np.broadcast_to(self.mean, shape[:1]).reshape(shape)
        inv = (1.0 / np.broadcast_to(self.std, shape[:1])).reshape(shape)
        if isinstance(x, Tensor):
            if not x.dtype.is_float:
                x = x.to(sc.get_default_dtype())
            m = sc.from_numpy(mean.astype(x.dtype.np_dtype), device=x.device)
            s = sc.from_numpy(inv.astype(x.dtype.np_dtype), device=x.device)
            return (x - m) * s
        arr = np.asarray(x)
        dtype = arr.dtype if arr.dtype.kind == "f" else np.float32
        return ((arr - mean.astype(dtype)) * inv.astype(dtype)).astype(dtype, copy=False)


class _RandomTransform(Transform):
    def __init__(self, seed: int | None) -> None:
        self._rng_own = np.random.default_rng(resolve_seed(seed))
        self._lock = threading.Lock()

    def _draw(self, fn: Callable[[np.random.Generator], Any]) -> Any:
        rng = current_generator()
        if rng is not None:
            return fn(rng)
        with self._lock:
            return fn(self._rng_own)


class RandomHorizontalFlip(_RandomTransform):
    """Flip each image left-right with probability ``p``."""

    def __init__(self, p: float = 0.5, seed: int | None = None) -> None:
        if not 0.0 <= p <= 1.0:
            raise DataError(f"RandomHorizontalFlip: p must be in [0, 1], got {p}")
        super().__init__(seed)
        self.p = p

    def __call__(self, x: Any) -> Any:
        arr, back = _as_array(x)
        _image_dims(arr, "RandomHorizontalFlip")
        n = arr.shape[0] if arr.ndim == 4 else 1
        flip = self._draw(lambda g: g.random(n) < self.p)
        if arr.ndim == 3:
            return back(arr[..., ::-1]) if flip[0] else x
        return back(np.where(flip[:, None, None, None], arr[..., ::-1], arr))


class RandomCrop(_RandomTransform):
    """Crop a random ``size`` window of each image after zero (or ``fill``) ``padding`` on
    every side (``padding_mode`` as ``numpy.pad``: "constant", "edge", "reflect")."""

    def __init__(
        self,
        size: int | tuple[int, int],
        padding: int = 0,
        fill: float = 0,
        padding_mode: str = "constant",
        seed: int | None = None,
    ) -> None:
        super().__init__(seed)
        self.size = (size, size) if isinstance(size, int) else tuple(int(s) for s in size)
        if len(self.size) != 2 or min(self.size) <= 0:
            raise DataError(f"RandomCrop: size must be a positive int or (h, w), got {size!r}")
        if padding < 0:
            raise DataError(f"RandomCrop: padding must be >= 0, got {padding}")
        if padding_mode not in ("constant", "edge", "reflect"):
            raise DataError(f"RandomCrop: unknown padding_mode {padding_mode!r}")
        self.padding = int(padding)
        self.fill = fill
        self.padding_mode = padding_mode

    def __call__(self, x: Any) -> Any:
        arr, back = _as_array(x)
        _image_dims(arr, "RandomCrop")
        single = arr.ndim == 3
        batch = arr[None] if single else arr
        p = self.padding
        if p:
            widths = ((0, 0), (0, 0), (p, p), (p, p))
            kw = {"constant_values": self.fill} if self.padding_mode == "constant" else {}
            batch = np.pad(batch, widths, mode=self.padding_mode, **kw)
        n, _, hp, wp = batch.shape
        h, w = self.size
        if h > hp or w > wp:
            raise ShapeError(
                f"RandomCrop: crop {self.size} is larger than the padded image {(hp, wp)}"
            )
        oy, ox = self._draw(
            lambda g: (g.integers(0, hp - h + 1, size=n), g.integers(0, wp - w + 1, size=n))
        )
        rows = (oy[:, None] + np.arange(h))[:, None, :, None]
        cols = (ox[:, None] + np.arange(w))[:, None, None, :]
        images = np.arange(n)[:, None, None, None]
        channels = np.arange(batch.shape[1])[None, :, None, None]
        out = batch[images, channels, rows, cols]
        return back(out[0] if single else out)


def one_hot(labels: Any, num_classes: int, dtype: Any = "f32", device: Any = None) -> Tensor:
    """Integer labels of any shape -> a ``labels.shape + (num_classes,)`` tensor of 0/1."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes <= 0:
        raise DataError(f"one_hot: num_classes must be a positive int, got {num_classes!r}")
    if isinstance(labels, Tensor):
        device = labels.device if device is None else device
        labels = labels.numpy()
    arr = np.asarray(labels)
    if arr.dtype.kind not in "iub":
        raise DataError(f"one_hot: labels must be integers, got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
        bad = arr[(arr < 0) | (arr >= num_classes)].reshape(-1)[0]
        raise DataError(f"one_hot: label {int(bad)} is outside [0, {num_classes})")
    out = np.zeros(arr.shape + (num_classes,), dtype=sc.as_dtype(dtype).np_dtype)
    np.put_along_axis(out, arr.astype(np.int64)[..., None], 1, axis=-1)
    return array_to_tensor(out, device)


class OneHot(Transform):
    """Transform form of ``one_hot`` (for ``target_transform``)."""

    def __init__(self, num_classes: int, dtype: Any = "f32", device: Any = None) -> None:
        self.num_classes = num_classes
        self.dtype = dtype
        self.device = device

    def __call__(self, labels: Any) -> Tensor:
        return one_hot(labels, self.num_classes, self.dtype, self.device)
