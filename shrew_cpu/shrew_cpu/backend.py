"""CpuBackend: the ``cpu`` backend. Thin: each method unpacks dtypes and dispatches to
the host module of its op family (elementwise, reduce, gemm, index, conv, pool, norm,
optim, random), which picks NumPy or a Numba kernel by size and dtype. The recurrent-cell
and low-bit linear kernels come from the ``RnnKernels`` and ``QuantKernels`` mixins.

Storage is a 1-D C-contiguous ``numpy.ndarray`` of ``dtype.np_dtype``.
"""

from __future__ import annotations

import numpy as np

from shrew_core.backend import Backend
from shrew_core.layout import Layout

from . import conv, gemm, index, norm, optim, pool, random
from . import elementwise as ew
from . import reduce as red
from .quant import QuantKernels
from .rnn import RnnKernels
from .strided import fp_quiet, fp_restore, view

_FILLABLE = (np.dtype(np.float32), np.dtype(np.float64))  # full(): fill() casts as np.full


class CpuBackend(QuantKernels, RnnKernels, Backend):
    """Numba/NumPy kernels over host memory. One instance per CPU device."""

    name = "cpu"

    def __init__(self, device):
        super().__init__(device)

    # ------------------------------------------------------------------ storage
    def full(self, shape, value, dtype):
        n = 1
        for d in shape:
            n *= d
        if value == 0:  # calloc: large buffers come as fresh zero pages, no memset pass
            return np.zeros(n, dtype.np_dtype)
        np_dtype = dtype.np_dtype
        if np_dtype in _FILLABLE:  # a float fill converts like np.full, at a third the cost
            out = np.empty(n, np_dtype)
            out.fill(value)
            return out
        if dtype.is_float:  # f16/bf16: a value past the range rounds to inf, silently
            tok = fp_quiet()
            try:
                return np.full(n, value, np_dtype)
            finally:
                fp_restore(tok)
        return np.full(n, value, np_dtype)

    def from_numpy(self, array):
        return np.ascontiguousarray(array).ravel()  # ravel: no shape argument to parse

    def to_numpy(self, storage, layout, dtype):
        return view(storage, layout)

    def copy(self, x, layout, dtype):
        return ew.copy(x, layout)

    def copy_into(self, dst, dst_layout, src, src_layout, dtype):
        ew.copy_into(dst, dst_layout, src, src_layout)

    def cast(self, x, layout, src, dst):
        return ew.cast(x, layout, dst.np_dtype)

    # ------------------------------------------------------------------ elementwise
    def unary(self, op, x, layout, dtype):
        return ew.unary(op, x, layout, dtype.np_dtype)

    def affine(self, x, layout, dtype, mul, add):
        return ew.affine(x, layout, dtype.np_dtype, mul, add)

    def binary(self, op, a, a_layout, b, b_layout, dtype):
        return ew.binary(op, a, a_layout, b, b_layout, dtype.np_dtype)

    def compare(self, op, a, a_layout, b, b_layout, dtype):
        return ew.compare(op, a, a_layout, b, b_layout, dtype.np_dtype)

    def where(self, cond, cond_layout, a, a_layout, b, b_layout, dtype):
        return ew.where(cond, cond_layout, a, a_layout, b, b_layout, dtype.np_dtype)

    # ------------------------------------------------------------------ reductions
    def reduce(self, op, x, layout, dtype, dims):
        return red.reduce(op, x, layout, dtype.np_dtype, tuple(dims))

    def arg_reduce(self, op, x, layout, dtype, dim):
        return red.arg_reduce(op, x, layout, dtype.np_dtype, dim)

    def cumsum(self, x, layout, dtype, dim):
        return red.cumsum(x, layout, dtype.np_dtype, dim)

    def sort(self, x, layout, dtype, dim, descending):
        return red.sort(x, layout, dtype.np_dtype, dim, descending)

    # ------------------------------------------------------------------ linear algebra
    def matmul(self, a, a_layout, b, b_layout, dtype):
        return gemm.matmul(a, a_layout, b, b_layout, dtype.np_dtype)

    # ------------------------------------------------------------------ indexing
    def index_select(self, x, layout, dtype, dim, index_, index_layout):
        return index.index_select(x, layout, dtype.np_dtype, dim, index_, index_layout)

    def index_add(self, shape, dim, index_, index_layout, src, src_layout, dtype):
        return index.index_add(tuple(shape), dim, index_, index_layout, src, src_layout,
                               dtype.np_dtype)  # fmt: skip

    def gather(self, x, layout, dtype, dim, index_, index_layout):
        return index.gather(x, layout, dtype.np_dtype, dim, index_, index_layout)

    def scatter_add(self, shape, dim, index_, index_layout, src, src_layout, dtype):
        return index.scatter_add(tuple(shape), dim, index_, index_layout, src, src_layout,
                                 dtype.np_dtype)  # fmt: skip

    # ------------------------------------------------------------------ conv / pool
    def conv2d(self, x, x_layout, w, w_layout, dtype, stride, padding, dilation, groups):
        return conv.conv2d(x, x_layout, w, w_layout, dtype.np_dtype, stride, padding, dilation,
                           groups)  # fmt: skip

    def conv2d_grad_input(self, grad, grad_layout, w, w_layout, dtype, input_shape, stride,
                          padding, dilation, groups):  # fmt: skip
        return conv.conv2d_grad_input(grad, grad_layout, w, w_layout, dtype.np_dtype,
                                      tuple(input_shape), stride, padding, dilation, groups)

    def conv2d_grad_weight(self, grad, grad_layout, x, x_layout, dtype, weight_shape, stride,
                           padding, dilation, groups):  # fmt: skip
        return conv.conv2d_grad_weight(grad, grad_layout, x, x_layout, dtype.np_dtype,
                                       tuple(weight_shape), stride, padding, dilation, groups)

    def max_pool2d(self, x, layout, dtype, kernel, stride, padding, dilation, ceil_mode):
        return pool.max_pool2d(x, layout, dtype.np_dtype, kernel, stride, padding, dilation,
                               ceil_mode)  # fmt: skip

    def max_pool2d_backward(self, grad, grad_layout, indices, indices_layout, input_shape,
                            dtype):  # fmt: skip
        return pool.max_pool2d_backward(grad, grad_layout, indices, indices_layout,
                                        tuple(input_shape), dtype.np_dtype)  # fmt: skip

    def avg_pool2d(self, x, layout, dtype, kernel, stride, padding, ceil_mode,
                   count_include_pad):  # fmt: skip
        return pool.avg_pool2d(x, layout, dtype.np_dtype, kernel, stride, padding, ceil_mode,
                               count_include_pad)  # fmt: skip

    def avg_pool2d_backward(self, grad, grad_layout, input_shape, dtype, kernel, stride,
                            padding, ceil_mode, count_include_pad):  # fmt: skip
        return pool.avg_pool2d_backward(grad, grad_layout, tuple(input_shape), dtype.np_dtype,
                                        kernel, stride, padding, ceil_mode, count_include_pad)

    def adaptive_avg_pool2d(self, x, layout, dtype, output_size):
        return pool.adaptive_avg_pool2d(x, layout, dtype.np_dtype, tuple(output_size))

    def adaptive_avg_pool2d_backward(self, grad, grad_layout, input_shape, dtype):
        return pool.adaptive_avg_pool2d_backward(grad, grad_layout, tuple(input_shape),
                                                 dtype.np_dtype)  # fmt: skip

    # ------------------------------------------------------------------ random
    def rand_uniform(self, shape, dtype, low, high, seed):
        return random.rand_uniform(tuple(shape), dtype.np_dtype, low, high, seed)

    def rand_normal(self, shape, dtype, mean, std, seed):
        return random.rand_normal(tuple(shape), dtype.np_dtype, mean, std, seed)

    def bernoulli(self, shape, p, dtype, seed):
        return random.bernoulli(tuple(shape), p, dtype.np_dtype, seed)


    # ================================================================== fused kernels
    def softmax(self, x, layout, dtype, dim):
        return norm.softmax(x, layout, dtype.np_dtype, dim, False)

    def log_softmax(self, x, layout, dtype, dim):
        return norm.softmax(x, layout, dtype.np_dtype, dim, True)

    def softmax_backward(self, y, grad, shape, dtype, dim, log):
        return norm.softmax_backward(y, grad, tuple(shape), dtype.np_dtype, dim, log)

    def layer_norm(self, x, layout, weight, bias, dtype, normalized_ndim, eps):
        return norm.layer_norm(x, layout, weight, bias, dtype.np_dtype, normalized_ndim, eps)

    def layer_norm_backward(self, grad, x, shape, weight, mean, rstd, dtype, normalized_ndim):
        return norm.layer_norm_backward(grad, x, shape, weight, mean, rstd, dtype.np_dtype,
                                        normalized_ndim)  # fmt: skip

    def rms_norm(self, x, layout, weight, dtype, normalized_ndim, eps):
        return norm.rms_norm(x, layout, weight, dtype.np_dtype, normalized_ndim, eps)

    def rms_norm_backward(self, grad, x, shape, weight, rstd, dtype, normalized_ndim):
        return norm.rms_norm_backward(grad, x, shape, weight, rstd, dtype.np_dtype,
                                      normalized_ndim)  # fmt: skip

    def cross_entropy(self, logits, layout, target, dtype, ignore_index, label_smoothing):
        return norm.cross_entropy(logits, layout, target, dtype.np_dtype, ignore_index,
                                  label_smoothing)  # fmt: skip

    def cross_entropy_backward(self, grad_rows, logits, shape, target, lse, dtype, ignore_index,
                               label_smoothing):  # fmt: skip
        return norm.cross_entropy_backward(grad_rows, logits, tuple(shape), target, lse,
                                           dtype.np_dtype, ignore_index, label_smoothing)

    def unary_backward(self, op, x, grad, shape, dtype):
        out = ew.unary_backward(op, x, grad, dtype.np_dtype)
        return super().unary_backward(op, x, grad, shape, dtype) if out is None else out

    def fused_elementwise(self, program, inputs, shape, dtype):
        out = ew.fused_elementwise(program, inputs, tuple(shape), dtype.np_dtype)
        if out is None:
            return super().fused_elementwise(program, inputs, shape, dtype)
        return out

    # --- optimizer updates, IN PLACE ----------------------------------------------------------
    def sgd_update(self, numel, param, grad, momentum_buf, dtype, *, lr, momentum, dampening,
                   nesterov, weight_decay, maximize, first_step):  # fmt: skip
        optim.sgd(numel, param, grad, momentum_buf, lr=lr, momentum=momentum,
                  dampening=dampening, nesterov=nesterov, weight_decay=weight_decay,
                  maximize=maximize, first_step=first_step)  # fmt: skip

    def adam_update(self, numel, param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, dtype, *, lr,
                    beta1, beta2, eps, weight_decay, decoupled, step, maximize):  # fmt: skip
        optim.adam(numel, param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, lr=lr, beta1=beta1,
                   beta2=beta2, eps=eps, weight_decay=weight_decay, decoupled=decoupled,
                   step=step, maximize=maximize)  # fmt: skip

    def radam_update(self, numel, param, grad, exp_avg, exp_avg_sq, dtype, *, lr, beta1, beta2,
                     eps, weight_decay, decoupled, step, maximize=False):  # fmt: skip
        optim.radam(numel, param, grad, exp_avg, exp_avg_sq, lr=lr, beta1=beta1, beta2=beta2,
                    eps=eps, weight_decay=weight_decay, decoupled=decoupled, step=step,
                    maximize=maximize)  # fmt: skip

    def batched_updates(self):
        return optim.batched()

    def rmsprop_update(self, numel, param, grad, square_avg, momentum_buf, grad_avg, dtype, *,
                       lr, alpha, eps, weight_decay, momentum, centered,
                       maximize=False):  # fmt: skip
        optim.rmsprop(numel, param, grad, square_avg, momentum_buf, grad_avg, lr=lr,
                      alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                      centered=centered, maximize=maximize)  # fmt: skip


__all__ = ["CpuBackend", "Layout"]
