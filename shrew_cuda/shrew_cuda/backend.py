"""CudaBackend: the ``cuda`` backend. Thin: each method dispatches to the module of its op
family (elementwise, reduce, gemm, index, conv, pool, norm, rnn, optim, random).

Storage is a 1-D numba.cuda device array of ``layouts.storage_dtype(dtype)`` (bf16 as
uint16 bits) from the caching pool (``memory``); it exposes ``__cuda_array_interface__``,
so ``cupy.asarray(storage)`` shares it without a copy. Kernels run on numba's default
stream, as do the cuBLAS calls; reading a result on the host synchronises.
"""

from __future__ import annotations

import numpy as np

from shrew_core.backend import Backend
from shrew_core.dtypes import bool_
from shrew_core.errors import DeviceError, ShrewError
from shrew_core.layout import Layout

from . import _runtime, memory
from .layouts import storage_dtype


class CudaBackend(Backend):
    """numba.cuda kernels over device memory. One instance per CUDA device."""

    name = "cuda"

    def __init__(self, device):
        super().__init__(device)
        _runtime.require_device(device.index)
        memory.install()
        from . import conv, elementwise, gemm, index, norm, optim, pool, random, reduce, rnn

        self._ew, self._red, self._gemm, self._idx = elementwise, reduce, gemm, index
        self._conv, self._pool, self._norm, self._optim = conv, pool, norm, optim
        self._rand, self._rnn = random, rnn
        self._index = device.index
        if not _runtime.simulated():
            _runtime.cuda().select_device(device.index)

    @classmethod
    def is_available(cls) -> bool:
        """True when a real GPU is present (used by ``device="auto"``)."""
        return _runtime.gpu_present()

    # ------------------------------------------------------------------ storage
    def full(self, shape, value, dtype):
        return self._ew.fill(tuple(shape), value, dtype)

    def from_numpy(self, array):
        host = np.ascontiguousarray(array).reshape(-1)
        if host.dtype.name == "bfloat16":
            host = host.view(np.uint16)
        out = memory.empty(host.size, host.dtype)
        if host.size:
            out.copy_to_device(host)
        return out

    def to_numpy(self, storage, layout, dtype):
        n = layout.numel
        if n == 0:
            return np.empty(layout.shape, dtype.np_dtype)
        if not (layout.offset == 0 and storage.size == n and layout.is_contiguous()):
            storage = self.copy(storage, layout, dtype)
        host = storage.copy_to_host()
        if dtype.name == "bfloat16":
            host = host.view(dtype.np_dtype)
        return host.reshape(layout.shape)

    def copy(self, x, layout, dtype):
        return self._ew.copy(x, layout, dtype)

    def copy_into(self, dst, dst_layout, src, src_layout, dtype):
        self._ew.copy_into(dst, dst_layout, src, src_layout, dtype)

    def cast(self, x, layout, src, dst):
        return self._ew.cast(x, layout, src, dst)

    # ------------------------------------------------------------------ elementwise
    def unary(self, op, x, layout, dtype):
        return self._ew.unary(op, x, layout, dtype)

    def affine(self, x, layout, dtype, mul, add):
        return self._ew.affine(x, layout, dtype, mul, add)

    def _any(self, op, b, layout, dtype, value) -> bool:
        """True if any element of the view compares ``op`` to ``value`` (one host read)."""
        if layout.numel == 0:
            return False
        s = self._ew.fill((), value, dtype)
        bl = Layout(layout.shape, (0,) * len(layout.shape), 0)
        mask = self._ew.compare(op, b, layout, s, bl, dtype, bool_)
        flat = Layout.contiguous((layout.numel,))
        return bool(self._red.reduce("max", mask, flat, bool_, (0,)).copy_to_host()[0])

    def binary(self, op, a, a_layout, b, b_layout, dtype):
        if dtype.is_int or dtype.is_bool:
            if op in ("floor_divide", "remainder") and self._any("eq", b, b_layout, dtype, 0):
                raise ZeroDivisionError(f"{op}: integer division by zero")
            if op == "pow" and dtype.name == "int64" and self._any("lt", b, b_layout, dtype, 0):
                raise ShrewError("pow: integers to negative integer powers are not allowed")
        return self._ew.binary(op, a, a_layout, b, b_layout, dtype)

    def compare(self, op, a, a_layout, b, b_layout, dtype):
        return self._ew.compare(op, a, a_layout, b, b_layout, dtype, bool_)

    def where(self, cond, cond_layout, a, a_layout, b, b_layout, dtype):
        return self._ew.where(cond, cond_layout, a, a_layout, b, b_layout, dtype, bool_)

    # ------------------------------------------------------------------ reductions
    def reduce(self, op, x, layout, dtype, dims):
        return self._red.reduce(op, x, layout, dtype, tuple(dims))

    def arg_reduce(self, op, x, layout, dtype, dim):
        return self._red.arg_reduce(op, x, layout, dtype, dim)

    def cumsum(self, x, layout, dtype, dim):
        return self._red.cumsum(x, layout, dtype, dim)

    def sort(self, x, layout, dtype, dim, descending):
        return self._red.sort(x, layout, dtype, dim, descending)

    # ------------------------------------------------------------------ linear algebra
    def matmul(self, a, a_layout, b, b_layout, dtype):
        return self._gemm.matmul(a, a_layout, b, b_layout, dtype, self._index,
                                 copy=lambda s, lay: self.copy(s, lay, dtype))  # fmt: skip

    # ------------------------------------------------------------------ indexing
    def index_select(self, x, layout, dtype, dim, index, index_layout):
        return self._idx.index_select(x, layout, dtype, dim, index, index_layout)

    def index_add(self, shape, dim, index, index_layout, src, src_layout, dtype):
        return self._idx.index_add(tuple(shape), dim, index, index_layout, src, src_layout,
                                   dtype)  # fmt: skip

    def gather(self, x, layout, dtype, dim, index, index_layout):
        return self._idx.gather(x, layout, dtype, dim, index, index_layout)

    def scatter_add(self, shape, dim, index, index_layout, src, src_layout, dtype):
        return self._idx.scatter_add(tuple(shape), dim, index, index_layout, src, src_layout,
                                     dtype)  # fmt: skip

    # ------------------------------------------------------------------ conv / pool
    def conv2d(self, x, x_layout, w, w_layout, dtype, stride, padding, dilation, groups):
        return self._conv.conv2d(self, x, x_layout, w, w_layout, dtype, stride, padding,
                                 dilation, groups)  # fmt: skip

    def conv2d_grad_input(self, grad, grad_layout, w, w_layout, dtype, input_shape, stride,
                          padding, dilation, groups):  # fmt: skip
        return self._conv.conv2d_grad_input(self, grad, grad_layout, w, w_layout, dtype,
                                            tuple(input_shape), stride, padding, dilation,
                                            groups)  # fmt: skip

    def conv2d_grad_weight(self, grad, grad_layout, x, x_layout, dtype, weight_shape, stride,
                           padding, dilation, groups):  # fmt: skip
        return self._conv.conv2d_grad_weight(self, grad, grad_layout, x, x_layout, dtype,
                                             tuple(weight_shape), stride, padding, dilation,
                                             groups)  # fmt: skip

    def max_pool2d(self, x, layout, dtype, kernel, stride, padding, dilation, ceil_mode):
        return self._pool.max_pool2d(x, layout, dtype, kernel, stride, padding, dilation,
                                     ceil_mode)  # fmt: skip

    def max_pool2d_backward(self, grad, grad_layout, indices, indices_layout, input_shape,
                            dtype):  # fmt: skip
        return self._pool.max_pool2d_backward(grad, grad_layout, indices, indices_layout,
                                              tuple(input_shape), dtype)  # fmt: skip

    def avg_pool2d(self, x, layout, dtype, kernel, stride, padding, ceil_mode,
                   count_include_pad):  # fmt: skip
        return self._pool.avg_pool2d(x, layout, dtype, kernel, stride, padding, ceil_mode,
                                     count_include_pad)  # fmt: skip

    def avg_pool2d_backward(self, grad, grad_layout, input_shape, dtype, kernel, stride,
                            padding, ceil_mode, count_include_pad):  # fmt: skip
        return self._pool.avg_pool2d_backward(grad, grad_layout, tuple(input_shape), dtype,
                                              kernel, stride, padding, ceil_mode,
                                              count_include_pad)  # fmt: skip

    def adaptive_avg_pool2d(self, x, layout, dtype, output_size):
        return self._pool.adaptive_avg_pool2d(x, layout, dtype, tuple(output_size))

    def adaptive_avg_pool2d_backward(self, grad, grad_layout, input_shape, dtype):
        return self._pool.adaptive_avg_pool2d_backward(grad, grad_layout, tuple(input_shape),
                                                       dtype)  # fmt: skip

    # ------------------------------------------------------------------ random
    def rand_uniform(self, shape, dtype, low, high, seed):
        return self._rand.rand_uniform(tuple(shape), dtype, low, high, seed, self.from_numpy)

    def rand_normal(self, shape, dtype, mean, std, seed):
        return self._rand.rand_normal(tuple(shape), dtype, mean, std, seed, self.from_numpy)

    def bernoulli(self, shape, p, dtype, seed):
        return self._rand.bernoulli(tuple(shape), p, dtype, seed)

    # ================================================================== fused kernels
    def softmax(self, x, layout, dtype, dim):
        return self._norm.softmax(x, layout, None, None, dtype, dim, 1.0, False)

    def log_softmax(self, x, layout, dtype, dim):
        return self._norm.softmax(x, layout, None, None, dtype, dim, 1.0, True)

    def softmax_backward(self, y, grad, shape, dtype, dim, log):
        return self._norm.softmax_backward(y, grad, tuple(shape), dtype, dim, 1.0, log)

    def masked_softmax(self, x, layout, mask, mask_layout, dtype, dim, scale):
        return self._norm.softmax(x, layout, mask, mask_layout, dtype, dim, scale, False)

    def masked_softmax_backward(self, y, grad, shape, dtype, dim, scale):
        return self._norm.softmax_backward(y, grad, tuple(shape), dtype, dim, scale, False)

    def layer_norm(self, x, layout, weight, bias, dtype, normalized_ndim, eps):
        return self._norm.layer_norm(self, x, layout, weight, bias, dtype, normalized_ndim,
                                     eps, rms=False)  # fmt: skip

    def layer_norm_backward(self, grad, x, shape, weight, mean, rstd, dtype, normalized_ndim):
        return self._norm.layer_norm_backward(grad, x, tuple(shape), weight, mean, rstd, dtype,
                                              normalized_ndim, rms=False)  # fmt: skip

    def rms_norm(self, x, layout, weight, dtype, normalized_ndim, eps):
        y, _, rstd = self._norm.layer_norm(self, x, layout, weight, None, dtype,
                                           normalized_ndim, eps, rms=True)  # fmt: skip
        return y, rstd

    def rms_norm_backward(self, grad, x, shape, weight, rstd, dtype, normalized_ndim):
        gx, gw, _ = self._norm.layer_norm_backward(grad, x, tuple(shape), weight, None, rstd,
                                                   dtype, normalized_ndim, rms=True)  # fmt: skip
        return gx, gw

    def cross_entropy(self, logits, layout, target, dtype, ignore_index, label_smoothing):
        return self._norm.cross_entropy(self, logits, layout, target, dtype, ignore_index,
                                        label_smoothing)  # fmt: skip

    def cross_entropy_backward(self, grad_rows, logits, shape, target, lse, dtype, ignore_index,
                               label_smoothing):  # fmt: skip
        return self._norm.cross_entropy_backward(grad_rows, logits, tuple(shape), target, lse,
                                                 dtype, ignore_index, label_smoothing)

    def unary_backward(self, op, x, grad, shape, dtype):
        if op not in self._ew.BACKWARD_OPS:
            return super().unary_backward(op, x, grad, shape, dtype)
        return self._ew.unary_backward(op, x, grad, shape, dtype)

    def fused_elementwise(self, program, inputs, shape, dtype):
        out = self._ew.fused(program, inputs, shape, dtype)
        if out is None:
            return super().fused_elementwise(program, inputs, shape, dtype)
        return out

    # --- recurrent cells ------------------------------------------------------------------
    def lstm_cell_forward(self, gates, c_prev, dtype, batch, hidden):
        return self._rnn.lstm_forward(gates, c_prev, dtype, batch, hidden)

    def lstm_cell_backward(self, dh, dc, act, c_prev, tanh_c, dtype, batch, hidden):
        return self._rnn.lstm_backward(dh, dc, act, c_prev, tanh_c, dtype, batch, hidden)

    def gru_cell_forward(self, xg, xg_layout, hg, h_prev, dtype, batch, hidden):
        return self._rnn.gru_forward(xg, xg_layout, hg, h_prev, dtype, batch, hidden)

    def gru_cell_backward(self, dh, h_prev, hg, rz, n, dtype, batch, hidden):
        return self._rnn.gru_backward(dh, h_prev, hg, rz, n, dtype, batch, hidden)

    # --- optimizer updates, IN PLACE -------------------------------------------------------
    def sgd_update(self, numel, param, grad, momentum_buf, dtype, **kw):
        self._optim.sgd(numel, param, grad, momentum_buf, dtype, **kw)

    def adam_update(self, numel, param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, dtype, **kw):
        self._optim.adam(numel, param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, dtype, **kw)

    def radam_update(self, numel, param, grad, exp_avg, exp_avg_sq, dtype, **kw):
        self._optim.radam(numel, param, grad, exp_avg, exp_avg_sq, dtype, **kw)

    def rmsprop_update(self, numel, param, grad, square_avg, momentum_buf, grad_avg, dtype,
                       **kw):  # fmt: skip
        self._optim.rmsprop(numel, param, grad, square_avg, momentum_buf, grad_avg, dtype, **kw)

    # ------------------------------------------------------------------ misc
    def synchronize(self) -> None:
        if not _runtime.simulated():
            _runtime.cuda().synchronize()

    def dlpack(self, storage, layout, dtype, stream=None):
        """A DLPack capsule viewing the tensor (zero-copy, through CuPy; bf16 is exported as
        its uint16 bit patterns, since CuPy has no bfloat16)."""
        return as_cupy(storage, layout, dtype).__dlpack__(stream=stream)

    def dlpack_device(self) -> tuple[int, int]:
        return (2, self._index)  # kDLCUDA

    def from_dlpack(self, obj):
        """(storage, layout, dtype) sharing memory with a CUDA ``__dlpack__`` object."""
        import cupy

        from shrew_core.dtypes import as_dtype

        arr = cupy.from_dlpack(obj)
        dtype = as_dtype(arr.dtype)
        itemsize = arr.dtype.itemsize
        strides = tuple(s // itemsize for s in arr.strides)
        if any(s < 0 for s in strides):
            raise DeviceError("from_dlpack: negative strides are not supported on cuda")
        span = 1 + sum((d - 1) * s for d, s in zip(arr.shape, strides)) if arr.size else 0
        base = _runtime.cuda().as_cuda_array(_FlatView(arr, span))
        return base, Layout(tuple(arr.shape), strides, 0), dtype


def as_cupy(storage, layout, dtype):
    """A CuPy array viewing ``storage`` through ``layout`` (shares memory; bf16 storage is
    seen as uint16 bit patterns, since CuPy has no bfloat16)."""
    import cupy

    sdt = storage_dtype(dtype)
    base = cupy.asarray(storage)
    itemsize = sdt.itemsize
    mem = base.data + layout.offset * itemsize
    return cupy.ndarray(layout.shape, sdt, mem,
                        strides=tuple(s * itemsize for s in layout.strides))  # fmt: skip


class _FlatView:
    """A 1-D uint view of a CuPy array's memory span, for numba's as_cuda_array."""

    def __init__(self, arr, span: int):
        self._keep = arr
        self.__cuda_array_interface__ = {
            "shape": (span,),
            "strides": None,
            "typestr": arr.dtype.str,
            "data": (arr.data.ptr, False),
            "version": 3,
        }


__all__ = ["CudaBackend", "as_cupy"]
