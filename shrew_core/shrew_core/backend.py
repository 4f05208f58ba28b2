"""The Backend protocol: everything a compute backend must (and may) provide.

A backend owns *storage* (an opaque buffer: a 1-D NumPy array on CPU, a device
array on CUDA) and computes on ``(storage, Layout)`` pairs. The tensor front end
(shrew_core) does all validation, dtype promotion, broadcasting and view
arithmetic *before* calling a backend, so a kernel sees:

* one dtype per call (``dtype`` argument; f16/bf16 kernels may compute in f32),
* inputs whose layouts already have the output's shape (stride 0 on broadcast
  dims, arbitrary strides and offsets otherwise),
* validated dims (non-negative, in range) and shapes.

Unless stated otherwise a primitive returns **new contiguous storage** holding
the result in row-major order for the result shape. Primitives never modify
their inputs, except the ``copy_into`` primitive and the in-place optimizer
updates, which say so.

Required primitives are abstract. Optional fused kernels have default
implementations in ``shrew_core.fused_defaults`` that compose the primitives
(through no-grad tensors), so a backend implementing only the required set is a
complete backend; overriding an optional kernel only makes it faster.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from . import fused_defaults as _fd
from .device import Device
from .dtypes import DType
from .layout import Layout

Storage = Any

UNARY_OPS = (
    "neg",
    "abs",
    "exp",
    "log",
    "sqrt",
    "rsqrt",
    "square",
    "reciprocal",
    "sin",
    "cos",
    "tanh",
    "sigmoid",
    "relu",
    "gelu",
    "gelu_tanh",
    "silu",
    "erf",
    "floor",
    "ceil",
    "round",
    "sign",
    "log1p",
    "expm1",
)
BINARY_OPS = ("add", "sub", "mul", "div", "pow", "maximum", "minimum", "floor_divide", "remainder")
COMPARE_OPS = ("eq", "ne", "lt", "le", "gt", "ge")
REDUCE_OPS = ("sum", "prod", "max", "min")
ARG_REDUCE_OPS = ("argmax", "argmin")


class Backend(ABC):
    """One instance per device. Subclasses set ``name`` and implement the primitives."""

    name: str = "abstract"

    def __init__(self, device: Device):
        self.device = device

    # ------------------------------------------------------------------ storage
    @abstractmethod
    def full(self, shape: tuple[int, ...], value: float | int | bool, dtype: DType) -> Storage:
        """Contiguous storage of ``prod(shape)`` elements all equal to ``value``."""

    @abstractmethod
    def from_numpy(self, array: np.ndarray) -> Storage:
        """Storage holding a C-contiguous 1-D array (host backends may keep it zero-copy)."""

    @abstractmethod
    def to_numpy(self, storage: Storage, layout: Layout, dtype: DType) -> np.ndarray:
        """A host array with ``layout``'s shape (a view sharing memory when possible)."""

    @abstractmethod
    def copy(self, x: Storage, layout: Layout, dtype: DType) -> Storage:
        """Materialise a strided view into new contiguous storage."""

    @abstractmethod
    def copy_into(
        self, dst: Storage, dst_layout: Layout, src: Storage, src_layout: Layout, dtype: DType
    ) -> None:
        """IN PLACE: write ``src`` (layout of dst's shape, maybe broadcast) into ``dst``'s view."""

    @abstractmethod
    def cast(self, x: Storage, layout: Layout, src: DType, dst: DType) -> Storage:
        """Convert dtype like NumPy ``astype`` (float->int truncates toward zero)."""

    # ------------------------------------------------------------------ elementwise
    @abstractmethod
    def unary(self, op: str, x: Storage, layout: Layout, dtype: DType) -> Storage:
        """``op`` in UNARY_OPS. ``round`` is half-to-even; ``gelu`` is the erf form;
        ``sign`` of NaN is 0 (like torch)."""

    @abstractmethod
    def affine(self, x: Storage, layout: Layout, dtype: DType, mul: float, add: float) -> Storage:
        """``x * mul + add``."""

    @abstractmethod
    def binary(
        self, op: str, a: Storage, a_layout: Layout, b: Storage, b_layout: Layout, dtype: DType
    ) -> Storage:
        """``op`` in BINARY_OPS; both layouts have the result's shape. Integer ``div`` is
        never requested (core promotes true division to float); integer division by
        zero in floor_divide/remainder must raise ZeroDivisionError, not crash. Integer
        ``pow`` with a negative exponent gives 1 for base 1, ±1 for base -1, else 0 (torch)."""

    @abstractmethod
    def compare(
        self, op: str, a: Storage, a_layout: Layout, b: Storage, b_layout: Layout, dtype: DType
    ) -> Storage:
        """``op`` in COMPARE_OPS; returns bool storage."""

    @abstractmethod
    def where(
        self,
        cond: Storage,
        cond_layout: Layout,
        a: Storage,
        a_layout: Layout,
        b: Storage,
        b_layout: Layout,
        dtype: DType,
    ) -> Storage:
        """``cond ? a : b``; ``cond`` is bool; the three layouts have the result's shape."""

    # ------------------------------------------------------------------ reductions
    @abstractmethod
    def reduce(
        self, op: str, x: Storage, layout: Layout, dtype: DType, dims: tuple[int, ...]
    ) -> Storage:
        """``op`` in REDUCE_OPS over ``dims`` (sorted, unique, non-empty); result shape is
        ``layout.shape`` without ``dims``. Float sums accumulate in at least f32 and
        pairwise/compensated on long axes; integer sums wrap like NumPy. Max/min
        propagate NaN. Never called with an empty reduced extent for max/min."""

    @abstractmethod
    def arg_reduce(self, op: str, x: Storage, layout: Layout, dtype: DType, dim: int) -> Storage:
        """``argmax``/``argmin`` along ``dim`` as i64; ties pick the first index, NaN wins."""

    @abstractmethod
    def cumsum(self, x: Storage, layout: Layout, dtype: DType, dim: int) -> Storage:
        """Inclusive prefix sum along ``dim``."""

    @abstractmethod
    def sort(
        self, x: Storage, layout: Layout, dtype: DType, dim: int, descending: bool
    ) -> tuple[Storage, Storage]:
        """Stable sort along ``dim``: (values, i64 indices); NaN sorts as largest."""

    # ------------------------------------------------------------------ linear algebra
    @abstractmethod
    def matmul(
        self, a: Storage, a_layout: Layout, b: Storage, b_layout: Layout, dtype: DType
    ) -> Storage:
        """Batched ``(*B, M, K) @ (*B, K, N) -> (*B, M, N)``; the batch dims of both
        layouts are equal (broadcast ones have stride 0). Integers are exact."""

    # ------------------------------------------------------------------ indexing
    @abstractmethod
    def index_select(
        self,
        x: Storage,
        layout: Layout,
        dtype: DType,
        dim: int,
        index: Storage,
        index_layout: Layout,
    ) -> Storage:
        """Pick positions ``index`` (1-D i64) along ``dim``. Out-of-range indices raise
        ``IndexOutOfRangeError`` naming the bad index (negative indices are already
        wrapped by core)."""

    @abstractmethod
    def index_add(
        self,
        shape: tuple[int, ...],
        dim: int,
        index: Storage,
        index_layout: Layout,
        src: Storage,
        src_layout: Layout,
        dtype: DType,
    ) -> Storage:
        """Adjoint of index_select: zeros of ``shape`` with ``src`` slices added at ``index``."""

    @abstractmethod
    def gather(
        self,
        x: Storage,
        layout: Layout,
        dtype: DType,
        dim: int,
        index: Storage,
        index_layout: Layout,
    ) -> Storage:
        """torch.gather: ``out[..i..] = x[..index[..i..] at dim..]``; result has the index's
        shape (index is i64, same rank as x, both at least 1-D and non-empty: core handles
        0-d and empty operands). Out-of-range raises IndexOutOfRangeError."""

    @abstractmethod
    def scatter_add(
        self,
        shape: tuple[int, ...],
        dim: int,
        index: Storage,
        index_layout: Layout,
        src: Storage,
        src_layout: Layout,
        dtype: DType,
    ) -> Storage:
        """Adjoint of gather: zeros of ``shape``, ``out[..index[..i..]..] += src[..i..]``."""

    # ------------------------------------------------------------------ convolution, pooling
    @abstractmethod
    def conv2d(
        self,
        x: Storage,
        x_layout: Layout,
        w: Storage,
        w_layout: Layout,
        dtype: DType,
        stride: tuple[int, int],
        padding: tuple[int, int],
        dilation: tuple[int, int],
        groups: int,
    ) -> Storage:
        """NCHW cross-correlation like torch.nn.functional.conv2d, without bias."""

    @abstractmethod
    def conv2d_grad_input(
        self,
        grad: Storage,
        grad_layout: Layout,
        w: Storage,
        w_layout: Layout,
        dtype: DType,
        input_shape: tuple[int, ...],
        stride: tuple[int, int],
        padding: tuple[int, int],
        dilation: tuple[int, int],
        groups: int,
    ) -> Storage:
        """Gradient of conv2d with respect to its input (a transposed convolution)."""

    @abstractmethod
    def conv2d_grad_weight(
        self,
        grad: Storage,
        grad_layout: Layout,
        x: Storage,
        x_layout: Layout,
        dtype: DType,
        weight_shape: tuple[int, ...],
        stride: tuple[int, int],
        padding: tuple[int, int],
        dilation: tuple[int, int],
        groups: int,
    ) -> Storage:
        """Gradient of conv2d with respect to its weight."""

    @abstractmethod
    def max_pool2d(
        self,
        x: Storage,
        layout: Layout,
        dtype: DType,
        kernel: tuple[int, int],
        stride: tuple[int, int],
        padding: tuple[int, int],
        dilation: tuple[int, int],
        ceil_mode: bool,
    ) -> tuple[Storage, Storage]:
        """(values, i64 indices into each flattened H*W input plane), like torch with
        ``return_indices=True``. Padding cells never win."""

    @abstractmethod
    def max_pool2d_backward(
        self,
        grad: Storage,
        grad_layout: Layout,
        indices: Storage,
        indices_layout: Layout,
        input_shape: tuple[int, ...],
        dtype: DType,
    ) -> Storage:
        """Scatter-add ``grad`` to the positions in ``indices``."""

    @abstractmethod
    def avg_pool2d(
        self,
        x: Storage,
        layout: Layout,
        dtype: DType,
        kernel: tuple[int, int],
        stride: tuple[int, int],
        padding: tuple[int, int],
        ceil_mode: bool,
        count_include_pad: bool,
    ) -> Storage:
        """Average pooling like torch.nn.functional.avg_pool2d."""

    @abstractmethod
    def avg_pool2d_backward(
        self,
        grad: Storage,
        grad_layout: Layout,
        input_shape: tuple[int, ...],
        dtype: DType,
        kernel: tuple[int, int],
        stride: tuple[int, int],
        padding: tuple[int, int],
        ceil_mode: bool,
        count_include_pad: bool,
    ) -> Storage:
        """Gradient of avg_pool2d."""

    @abstractmethod
    def adaptive_avg_pool2d(
        self, x: Storage, layout: Layout, dtype: DType, output_size: tuple[int, int]
    ) -> Storage:
        """torch.nn.functional.adaptive_avg_pool2d (window i spans
        ``floor(i*H/OH) .. ceil((i+1)*H/OH)``)."""

    @abstractmethod
    def adaptive_avg_pool2d_backward(
        self, grad: Storage, grad_layout: Layout, input_shape: tuple[int, ...], dtype: DType
    ) -> Storage:
        """Gradient of adaptive_avg_pool2d."""

    # ------------------------------------------------------------------ random fills
    @abstractmethod
    def rand_uniform(
        self, shape: tuple[int, ...], dtype: DType, low: float, high: float, seed: int
    ) -> Storage:
        """U[low, high); the same seed gives the same values."""

    @abstractmethod
    def rand_normal(
        self, shape: tuple[int, ...], dtype: DType, mean: float, std: float, seed: int
    ) -> Storage:
        """N(mean, std^2); the same seed gives the same values."""

    @abstractmethod
    def bernoulli(self, shape: tuple[int, ...], p: float, dtype: DType, seed: int) -> Storage:
        """1 with probability ``p``, else 0, in ``dtype`` (dropout masks)."""

    # ================================================================== optional fused kernels
    # Each default composes the primitives above; override to fuse.
    def softmax(self, x: Storage, layout: Layout, dtype: DType, dim: int) -> Storage:
        return _fd.softmax(self, x, layout, dtype, dim)

    def log_softmax(self, x: Storage, layout: Layout, dtype: DType, dim: int) -> Storage:
        return _fd.log_softmax(self, x, layout, dtype, dim)

    def softmax_backward(
        self,
        y: Storage,
        grad: Storage,
        shape: tuple[int, ...],
        dtype: DType,
        dim: int,
        log: bool,
    ) -> Storage:
        """Gradient of (log_)softmax from its contiguous output ``y`` and ``grad``."""
        return _fd.softmax_backward(self, y, grad, shape, dtype, dim, log)

    def layer_norm(
        self,
        x: Storage,
        layout: Layout,
        weight: Storage | None,
        bias: Storage | None,
        dtype: DType,
        normalized_ndim: int,
        eps: float,
    ) -> tuple[Storage, Storage, Storage]:
        """Normalise over the last ``normalized_ndim`` dims; weight/bias are contiguous of
        that trailing shape (or None). Returns (y, mean, rstd), mean/rstd f32 for
        half inputs, one per normalised row."""
        return _fd.layer_norm(self, x, layout, weight, bias, dtype, normalized_ndim, eps)

    def layer_norm_backward(
        self,
        grad: Storage,
        x: Storage,
        shape: tuple[int, ...],
        weight: Storage | None,
        mean: Storage,
        rstd: Storage,
        dtype: DType,
        normalized_ndim: int,
    ) -> tuple[Storage, Storage | None, Storage | None]:
        """(grad_x, grad_weight, grad_bias) from contiguous grad and x."""
        return _fd.layer_norm_backward(
            self, grad, x, shape, weight, mean, rstd, dtype, normalized_ndim
        )

    def rms_norm(
        self,
        x: Storage,
        layout: Layout,
        weight: Storage | None,
        dtype: DType,
        normalized_ndim: int,
        eps: float,
    ) -> tuple[Storage, Storage]:
        """``x * rsqrt(mean(x^2) + eps) * weight`` over trailing dims; returns (y, rstd)."""
        return _fd.rms_norm(self, x, layout, weight, dtype, normalized_ndim, eps)

    def rms_norm_backward(
        self,
        grad: Storage,
        x: Storage,
        shape: tuple[int, ...],
        weight: Storage | None,
        rstd: Storage,
        dtype: DType,
        normalized_ndim: int,
    ) -> tuple[Storage, Storage | None]:
        """(grad_x, grad_weight) from contiguous grad and x."""
        return _fd.rms_norm_backward(self, grad, x, shape, weight, rstd, dtype, normalized_ndim)

    def cross_entropy(
        self,
        logits: Storage,
        layout: Layout,
        target: Storage,
        dtype: DType,
        ignore_index: int,
        label_smoothing: float,
    ) -> tuple[Storage, Storage]:
        """Per-row loss of ``logits`` [N, C] against i64 class indices [N] (contiguous).
        Rows whose target is ``ignore_index`` get loss 0; any other target outside [0, C)
        raises IndexOutOfRangeError. Returns (loss [N], lse [N])."""
        return _fd.cross_entropy(self, logits, layout, target, dtype, ignore_index, label_smoothing)

    def cross_entropy_backward(
        self,
        grad_rows: Storage,
        logits: Storage,
        shape: tuple[int, int],
        target: Storage,
        lse: Storage,
        dtype: DType,
        ignore_index: int,
        label_smoothing: float,
    ) -> Storage:
        """d loss / d logits for contiguous logits, given d total / d row-loss [N]."""
        return _fd.cross_entropy_backward(
            self, grad_rows, logits, shape, target, lse, dtype, ignore_index, label_smoothing
        )

    def unary_backward(
        self, op: str, x: Storage, grad: Storage, shape: tuple[int, ...], dtype: DType
    ) -> Storage:
        """Gradient of ``unary(op)`` for op in gelu, gelu_tanh, silu, sigmoid, tanh (contiguous
        inputs)."""
        return _fd.unary_backward(self, op, x, grad, shape, dtype)

    def fused_elementwise(
        self,
        program: tuple,
        inputs: list[tuple[Storage, Layout, DType]],
        shape: tuple[int, ...],
        dtype: DType,
    ) -> Storage:
        """Evaluate a chain of elementwise ops in one pass. ``program`` is a tuple of
        instructions ``(op, arg_slots...)``; slots ``0..len(inputs)-1`` are inputs, each
        instruction appends one slot; the last slot is the result. Ops are UNARY_OPS,
        BINARY_OPS, or ("const", value)."""
        return _fd.fused_elementwise(self, program, inputs, shape, dtype)

    # --- optimizer updates: IN PLACE on contiguous storages of ``numel`` elements each
    def sgd_update(
        self,
        numel: int,
        param: Storage,
        grad: Storage,
        momentum_buf: Storage | None,
        dtype: DType,
        *,
        lr: float,
        momentum: float,
        dampening: float,
        nesterov: bool,
        weight_decay: float,
        maximize: bool,
        first_step: bool,
    ) -> None:
        """torch.optim.SGD for one parameter."""
        _fd.sgd_update(
            self,
            numel,
            param,
            grad,
            momentum_buf,
            dtype,
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            nesterov=nesterov,
            weight_decay=weight_decay,
            maximize=maximize,
            first_step=first_step,
        )

    def adam_update(
        self,
        numel: int,
        param: Storage,
        grad: Storage,
        exp_avg: Storage,
        exp_avg_sq: Storage,
        max_exp_avg_sq: Storage | None,
        dtype: DType,
        *,
        lr: float,
        beta1: float,
        beta2: float,
        eps: float,
        weight_decay: float,
        decoupled: bool,
        step: int,
        maximize: bool,
    ) -> None:
        """torch.optim.Adam (decoupled=False) / AdamW (decoupled=True) for one parameter;
        amsgrad when ``max_exp_avg_sq`` is given. ``step`` counts from 1."""
        _fd.adam_update(
            self,
            numel,
            param,
            grad,
            exp_avg,
            exp_avg_sq,
            max_exp_avg_sq,
            dtype,
            lr=lr,
            beta1=beta1,
            beta2=beta2,
            eps=eps,
            weight_decay=weight_decay,
            decoupled=decoupled,
            step=step,
            maximize=maximize,
        )

    def radam_update(
        self,
        numel: int,
        param: Storage,
        grad: Storage,
        exp_avg: Storage,
        exp_avg_sq: Storage,
        dtype: DType,
        *,
        lr: float,
        beta1: float,
        beta2: float,
        eps: float,
        weight_decay: float,
        decoupled: bool,
        step: int,
        maximize: bool = False,
    ) -> None:
        """torch.optim.RAdam for one parameter (``maximize``: the gradient is negated
        first, like torch)."""
        _fd.radam_update(
            self,
            numel,
            param,
            grad,
            exp_avg,
            exp_avg_sq,
            dtype,
            lr=lr,
            beta1=beta1,
            beta2=beta2,
            eps=eps,
            weight_decay=weight_decay,
            decoupled=decoupled,
            step=step,
            maximize=maximize,
        )

    def rmsprop_update(
        self,
        numel: int,
        param: Storage,
        grad: Storage,
        square_avg: Storage,
        momentum_buf: Storage | None,
        grad_avg: Storage | None,
        dtype: DType,
        *,
        lr: float,
        alpha: float,
        eps: float,
        weight_decay: float,
        momentum: float,
        centered: bool,
        maximize: bool = False,
    ) -> None:
        """torch.optim.RMSprop for one parameter (``grad_avg`` given when centered;
        ``maximize``: the gradient is negated first, like torch)."""
        _fd.rmsprop_update(
            self,
            numel,
            param,
            grad,
            square_avg,
            momentum_buf,
            grad_avg,
            dtype,
            lr=lr,
            alpha=alpha,
            eps=eps,
            weight_decay=weight_decay,
            momentum=momentum,
            centered=centered,
            maximize=maximize,
        )

    def batched_updates(self) -> contextlib.AbstractContextManager:
        """A context in which the optimizer updates above may be queued and run together
        when it exits (one parallel region for a whole optimizer step instead of one per
        parameter). Inside it the caller must not read or write the storages it passed
        until the context has exited, and the updates must touch disjoint storages.
        Default: run each update at once (``contextlib.nullcontext()``)."""
        return contextlib.nullcontext()

    # ------------------------------------------------------------------ misc
    def synchronize(self) -> None:  # noqa: B027 - a no-op unless the backend is asynchronous
        """Wait for queued work (asynchronous backends override)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.device}>"

    # ============================================== recurrent cells and masked softmax
    # Optional fused kernels for shrew_nn's recurrent layers and attention. Storages without
    # a layout argument are contiguous row-major from offset 0 and have the stated shape;
    # ``dtype`` is a float dtype shared by every operand (f16/bf16 may compute in f32, results
    # are rounded to ``dtype`` once); ``batch`` B >= 1 and ``hidden`` H >= 1. Every result is
    # new contiguous storage; inputs are never modified.
    def lstm_cell_forward(
        self, gates: Storage, c_prev: Storage, dtype: DType, batch: int, hidden: int
    ) -> tuple[Storage, Storage, Storage, Storage]:
        """One LSTM step from the pre-activations ``gates`` [B, 4H] (x W_ihᵀ + b_ih +
        h W_hhᵀ + b_hh, gate order i, f, g, o) and the cell state ``c_prev`` [B, H].

        Returns ``(h [B, H], c [B, H], act [B, 4H], tanh_c [B, H])`` where
        ``act = [σ(i), σ(f), tanh(g), σ(o)]``, ``c = σ(f) c_prev + σ(i) tanh(g)``,
        ``tanh_c = tanh(c)`` and ``h = σ(o) tanh_c``; ``act`` and ``tanh_c`` are what
        ``lstm_cell_backward`` needs."""
        return _fd.lstm_cell_forward(self, gates, c_prev, dtype, batch, hidden)

    def lstm_cell_backward(
        self,
        dh: Storage,
        dc: Storage,
        act: Storage,
        c_prev: Storage,
        tanh_c: Storage,
        dtype: DType,
        batch: int,
        hidden: int,
    ) -> tuple[Storage, Storage]:
        """Gradient of one ``lstm_cell_forward`` step: ``dh``, ``dc`` [B, H] are the total
        gradients reaching that step's h and c; ``act`` [B, 4H], ``tanh_c`` [B, H] its saved
        results and ``c_prev`` [B, H] its input cell state. Returns
        ``(d_gates [B, 4H], dc_prev [B, H])``."""
        return _fd.lstm_cell_backward(self, dh, dc, act, c_prev, tanh_c, dtype, batch, hidden)

    def gru_cell_forward(
        self,
        xg: Storage,
        xg_layout: Layout,
        hg: Storage,
        h_prev: Storage,
        dtype: DType,
        batch: int,
        hidden: int,
    ) -> tuple[Storage, Storage, Storage]:
        """One GRU step with PyTorch's equations (gate order r, z, n). ``xg`` is the input
        part x W_ihᵀ + b_ih seen through ``xg_layout`` (shape [B, 3H], any strides and offset:
        typically one time step of the projected sequence), ``hg`` [B, 3H] the hidden part
        h W_hhᵀ + b_hh, ``h_prev`` [B, H]::

            r, z = σ(xg_r + hg_r), σ(xg_z + hg_z)
            n = tanh(xg_n + r * hg_n)
            h_new = (1 - z) n + z h_prev

        Returns ``(h_new [B, H], rz [B, 2H] = [r, z], n [B, H])``."""
        return _fd.gru_cell_forward(self, xg, xg_layout, hg, h_prev, dtype, batch, hidden)

    def gru_cell_backward(
        self,
        dh: Storage,
        h_prev: Storage,
        hg: Storage,
        rz: Storage,
        n: Storage,
        dtype: DType,
        batch: int,
        hidden: int,
    ) -> tuple[Storage, Storage, Storage]:
        """Gradient of one ``gru_cell_forward`` step from the total gradient ``dh`` [B, H]
        reaching ``h_new``, the step's ``h_prev`` [B, H] and ``hg`` [B, 3H], and its saved
        ``rz`` [B, 2H] and ``n`` [B, H]. Returns ``(d_xg [B, 3H], d_hg [B, 3H],
        dh_prev_direct [B, H])``: gradients of the input part, of the hidden part (whose
        product with W_hh is the rest of dh_prev) and the direct term ``dh * z``."""
        return _fd.gru_cell_backward(self, dh, h_prev, hg, rz, n, dtype, batch, hidden)

    def masked_softmax(
        self,
        x: Storage,
        layout: Layout,
        mask: Storage | None,
        mask_layout: Layout | None,
        dtype: DType,
        dim: int,
        scale: float,
    ) -> Storage:
        """``softmax(x * scale + mask)`` along ``dim`` in one pass (attention weights).
        ``mask`` is additive (0 / -inf, or any float) in ``dtype``, seen through
        ``mask_layout`` which has x's shape (stride 0 on broadcast dims), or None. A row
        whose every entry is -inf yields NaN, as torch does."""
        return _fd.masked_softmax(self, x, layout, mask, mask_layout, dtype, dim, scale)

    def masked_softmax_backward(
        self,
        y: Storage,
        grad: Storage,
        shape: tuple[int, ...],
        dtype: DType,
        dim: int,
        scale: float,
    ) -> Storage:
        """Gradient with respect to ``x`` of ``masked_softmax`` from its contiguous output
        ``y`` and ``grad`` (both of ``shape``): ``scale * y * (grad - sum(grad * y, dim))``.
        (With ``scale=1`` this is the gradient with respect to the additive mask, before
        summing over the mask's broadcast dims.)"""
        return _fd.masked_softmax_backward(self, y, grad, shape, dtype, dim, scale)

    # ============================================== low-bit weights (shrew.quantization)
    def quantized_linear(
        self,
        x: Storage,
        x_layout: Layout,
        dtype: DType,
        weight: Storage,
        scales: Storage,
        zero_points: Storage | None,
        *,
        bits: int,
        out_features: int,
        in_features: int,
        groups: int,
    ) -> Storage:
        """``x @ Wᵀ`` for a weight W [N, K] (N = ``out_features``, K = ``in_features``) given
        as integers, computed without a float copy of W where the backend can.

        ``x`` is [M, K] seen through ``x_layout`` (any strides) in a float ``dtype``; the
        result is contiguous [M, N] in ``dtype``, accumulated in f32 (f64 for f64).
        ``weight`` is u8 storage of the N*K integers in row-major order: ``bits=8`` one
        two's-complement int8 per byte; ``bits=4`` two per byte (element i in byte i // 2,
        the low nibble for even i) stored as ``q + 8`` in 0..15, ceil(N*K / 2) bytes.
        ``scales`` is contiguous f32 [N, groups] and ``zero_points`` f32 [N, groups] or
        None (all zero); group g of row n covers columns [g*K/groups, (g+1)*K/groups) and
        ``W[n, k] = (q[n, k] - zero_points[n, g]) * scales[n, g]``."""
        return _fd.quantized_linear(
            self, x, x_layout, dtype, weight, scales, zero_points, bits, out_features,
            in_features, groups,
        )  # fmt: skip
