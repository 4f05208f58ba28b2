"""A NumPy reference backend: every *required* Backend primitive, no optional kernel.

It exists to prove the Backend contract is complete (the whole op-spec suite runs on
it through shrew_core's default compositions) and to give fast, JIT-free tests. It
is installed as a separate distribution registered in the ``shrew.backends``
entry-point group, exactly like a third-party backend, with no change to shrew.
Clarity beats speed here; loops are over output positions of small test tensors.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import as_strided, sliding_window_view

from shrew_core.backend import Backend
from shrew_core.errors import IndexOutOfRangeError

_erf_scalar = np.frompyfunc(math.erf, 1, 1)


def _erf(x: np.ndarray) -> np.ndarray:
    return np.asarray(_erf_scalar(x)).astype(x.dtype)


def _view(storage: np.ndarray, layout) -> np.ndarray:
    isz = storage.itemsize
    base = storage[layout.offset :] if layout.numel else storage[:0]
    if layout.numel == 0:
        return np.zeros(layout.shape, storage.dtype)
    return as_strided(base, layout.shape, tuple(s * isz for s in layout.strides), writeable=True)


def _flat(a: np.ndarray, dtype) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=dtype.np_dtype).reshape(-1)


def _compute_dtype(dtype):
    """Half types compute in f32, like every backend is asked to."""
    return np.float32 if dtype.is_float and dtype.itemsize == 2 else dtype.np_dtype


def _in(storage, layout, dtype):
    return _view(storage, layout).astype(_compute_dtype(dtype), copy=False)


_UNARY = {
    "neg": np.negative,
    "abs": np.abs,
    "exp": np.exp,
    "log": np.log,
    "sqrt": np.sqrt,
    "rsqrt": lambda x: 1.0 / np.sqrt(x),
    "square": np.square,
    "reciprocal": lambda x: 1.0 / x,
    "sin": np.sin,
    "cos": np.cos,
    "tanh": np.tanh,
    "sigmoid": lambda x: 0.5 * (1.0 + np.tanh(0.5 * x)),
    "relu": lambda x: np.maximum(x, 0),
    "gelu": lambda x: 0.5 * x * (1.0 + _erf(x / np.sqrt(2.0))),
    "gelu_tanh": lambda x: 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3))),
    "silu": lambda x: x * (0.5 * (1.0 + np.tanh(0.5 * x))),
    "erf": lambda x: _erf(x),
    "floor": np.floor,
    "ceil": np.ceil,
    "round": np.round,
    "sign": lambda x: np.nan_to_num(np.sign(x), nan=0.0) if x.dtype.kind == "f" else np.sign(x),
    "log1p": np.log1p,
    "expm1": np.expm1,
}
_BINARY = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "div": np.true_divide,
    "pow": np.power,
    "maximum": np.maximum,
    "minimum": np.minimum,
    "floor_divide": np.floor_divide,
    "remainder": np.remainder,
}
_COMPARE = {
    "eq": np.equal,
    "ne": np.not_equal,
    "lt": np.less,
    "le": np.less_equal,
    "gt": np.greater,
    "ge": np.greater_equal,
}


class ReferenceBackend(Backend):
    name = "reference"

    # storage ------------------------------------------------------------------
    def full(self, shape, value, dtype):
        return np.full(int(np.prod(shape, dtype=np.int64)), value, dtype=dtype.np_dtype)

    def from_numpy(self, array):
        return array

    def to_numpy(self, storage, layout, dtype):
        return _view(storage, layout)

    def copy(self, x, layout, dtype):
        return np.array(_view(x, layout), dtype=dtype.np_dtype, order="C").reshape(-1)

    def copy_into(self, dst, dst_layout, src, src_layout, dtype):
        if dst_layout.numel:
            _view(dst, dst_layout)[...] = _view(src, src_layout)

    def cast(self, x, layout, src, dst):
        v = _view(x, layout)
        if dst.is_int and src.is_float:
            v = np.trunc(v.astype(np.float64))
        with np.errstate(invalid="ignore"):
            return _flat(v.astype(dst.np_dtype), dst)

    # elementwise --------------------------------------------------------------
    def unary(self, op, x, layout, dtype):
        with np.errstate(all="ignore"):
            return _flat(_UNARY[op](_in(x, layout, dtype)), dtype)

    def affine(self, x, layout, dtype, mul, add):
        return _flat(_in(x, layout, dtype) * mul + add, dtype)

    def binary(self, op, a, al, b, bl, dtype):
        va, vb = _in(a, al, dtype), _in(b, bl, dtype)
        if op in ("floor_divide", "remainder") and dtype.is_int and np.any(vb == 0):
            raise ZeroDivisionError(f"{op}: integer division by zero")
        if op == "pow" and dtype.is_int and np.any(vb < 0):  # like torch: 0 unless |a| == 1
            tiny = np.where(va == 1, 1, np.where(va == -1, 1 - 2 * (vb % 2), 0))
            return _flat(np.where(vb < 0, tiny, np.power(va, np.maximum(vb, 0))), dtype)
        with np.errstate(all="ignore"):
            return _flat(_BINARY[op](va, vb), dtype)

    def compare(self, op, a, al, b, bl, dtype):
        return _flat(_COMPARE[op](_in(a, al, dtype), _in(b, bl, dtype)), _BOOL)

    def where(self, cond, cl, a, al, b, bl, dtype):
        return _flat(np.where(_view(cond, cl), _view(a, al), _view(b, bl)), dtype)

    # reductions ---------------------------------------------------------------
    def reduce(self, op, x, layout, dtype, dims):
        v = _view(x, layout)
        if dtype.is_float:
            v = v.astype(np.float64)  # reference accuracy
        fn = {"sum": np.sum, "prod": np.prod, "max": np.max, "min": np.min}[op]
        with np.errstate(all="ignore"):  # inf - inf, NaN inputs: IEEE results, no warnings
            return _flat(fn(v, axis=dims), dtype)

    def arg_reduce(self, op, x, layout, dtype, dim):
        v = _in(x, layout, dtype)
        fn = np.argmax if op == "argmax" else np.argmin
        return _flat(fn(v, axis=dim), _I64)

    def cumsum(self, x, layout, dtype, dim):
        return _flat(np.cumsum(_in(x, layout, dtype), axis=dim), dtype)

    def sort(self, x, layout, dtype, dim, descending):
        v = _in(x, layout, dtype)
        if descending:  # stable: equal values keep their original order
            rev = np.argsort(np.flip(v, dim), axis=dim, kind="stable")
            idx = v.shape[dim] - 1 - np.flip(rev, dim)
        else:
            idx = np.argsort(v, axis=dim, kind="stable")
        return _flat(np.take_along_axis(v, idx, dim), dtype), _flat(idx, _I64)

    # linear algebra -----------------------------------------------------------
    def matmul(self, a, al, b, bl, dtype):
        return _flat(np.matmul(_in(a, al, dtype), _in(b, bl, dtype)), dtype)

    # indexing -----------------------------------------------------------------
    @staticmethod
    def _check(op, idx, size):
        if idx.size and (idx.min() < 0 or idx.max() >= size):
            bad = idx.min() if idx.min() < 0 else idx.max()
            raise IndexOutOfRangeError(f"{op}: index {bad} is out of range for size {size}")

    def index_select(self, x, layout, dtype, dim, index, index_layout):
        idx = _view(index, index_layout)
        self._check("index_select", idx, layout.shape[dim])
        return _flat(np.take(_view(x, layout), idx, axis=dim), dtype)

    def index_add(self, shape, dim, index, index_layout, src, src_layout, dtype):
        idx = _view(index, index_layout)
        self._check("index_add", idx, shape[dim])
        out = np.zeros(shape, _compute_dtype(dtype))
        np.add.at(np.moveaxis(out, dim, 0), idx, np.moveaxis(_in(src, src_layout, dtype), dim, 0))
        return _flat(out, dtype)

    def gather(self, x, layout, dtype, dim, index, index_layout):
        idx = _view(index, index_layout)
        self._check("gather", idx, layout.shape[dim])
        v = _view(x, layout)
        sl = tuple(slice(0, n) if i != dim else slice(None) for i, n in enumerate(idx.shape))
        return _flat(np.take_along_axis(v[sl], idx, dim), dtype)

    def scatter_add(self, shape, dim, index, index_layout, src, src_layout, dtype):
        idx = _view(index, index_layout)
        self._check("scatter_add", idx, shape[dim])
        out = np.zeros(shape, _compute_dtype(dtype))
        grids = list(np.indices(idx.shape, sparse=True))
        grids[dim] = idx
        np.add.at(out, tuple(grids), _in(src, src_layout, dtype))
        return _flat(out, dtype)

    # convolution and pooling ----------------------------------------------------
    @staticmethod
    def _windows(x, kernel, stride, padding, dilation, value=0.0):
        """[N, C, OH, OW, kh, kw] windows of the padded input."""
        (ph, pw), (dh, dw), (kh, kw) = padding, dilation, kernel
        xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)
        win = sliding_window_view(xp, ((kh - 1) * dh + 1, (kw - 1) * dw + 1), axis=(2, 3))
        return win[:, :, :: stride[0], :: stride[1], ::dh, ::dw]

    def conv2d(self, x, xl, w, wl, dtype, stride, padding, dilation, groups):
        xv, wv = _in(x, xl, dtype), _in(w, wl, dtype)
        win = self._windows(xv, wv.shape[2:], stride, padding, dilation)
        n, c = xv.shape[:2]
        o = wv.shape[0]
        cg, og = c // groups, o // groups
        outs = [
            np.einsum("nchwij,ocij->nohw", win[:, g * cg : (g + 1) * cg], wv[g * og : (g + 1) * og])
            for g in range(groups)
        ]
        return _flat(np.concatenate(outs, axis=1), dtype)

    def conv2d_grad_input(
        self, grad, gl, w, wl, dtype, input_shape, stride, padding, dilation, groups
    ):
        g, wv = _in(grad, gl, dtype), _in(w, wl, dtype)
        n, c, h, wd = input_shape
        o, cg, kh, kw = wv.shape
        og = o // groups
        (ph, pw), (sh, sw), (dh, dw) = padding, stride, dilation
        out = np.zeros((n, c, h + 2 * ph, wd + 2 * pw), g.dtype)
        oh, ow = g.shape[2:]
        for gi in range(groups):
            gg = g[:, gi * og : (gi + 1) * og]
            wg = wv[gi * og : (gi + 1) * og]
            for i in range(kh):
                for j in range(kw):
                    contrib = np.einsum("nohw,oc->nchw", gg, wg[:, :, i, j])
                    out[
                        :,
                        gi * cg : (gi + 1) * cg,
                        i * dh : i * dh + sh * oh : sh,
                        j * dw : j * dw + sw * ow : sw,
                    ] += contrib
        return _flat(out[:, :, ph : ph + h, pw : pw + wd], dtype)

    def conv2d_grad_weight(
        self, grad, gl, x, xl, dtype, weight_shape, stride, padding, dilation, groups
    ):
        g, xv = _in(grad, gl, dtype), _in(x, xl, dtype)
        o, cg, kh, kw = weight_shape
        og = o // groups
        win = self._windows(xv, (kh, kw), stride, padding, dilation)
        outs = [
            np.einsum(
                "nohw,nchwij->ocij", g[:, gi * og : (gi + 1) * og], win[:, gi * cg : (gi + 1) * cg]
            )
            for gi in range(groups)
        ]
        return _flat(np.concatenate(outs, axis=0), dtype)

    @staticmethod
    def _pool_pad(x, kernel, stride, padding, dilation, ceil_mode, value):
        """Pad on the right as much as ceil_mode needs, so windows can be taken plainly."""
        h, w = x.shape[2:]
        extra = []
        for size, k, s, p, d in zip((h, w), kernel, stride, padding, dilation):
            eff = d * (k - 1) + 1
            num = size + 2 * p - eff
            o = (-(-num // s) if ceil_mode else num // s) + 1
            if ceil_mode and (o - 1) * s >= size + p:
                o -= 1
            extra.append(max(0, (o - 1) * s + eff - (size + 2 * p)))
        (ph, pw) = padding
        return np.pad(
            x, ((0, 0), (0, 0), (ph, ph + extra[0]), (pw, pw + extra[1])), constant_values=value
        ), extra

    def max_pool2d(self, x, layout, dtype, kernel, stride, padding, dilation, ceil_mode):
        xv = _in(x, layout, dtype)
        n, c, h, w = xv.shape
        pos = np.arange(h * w, dtype=np.int64).reshape(1, 1, h, w).repeat(n, 0).repeat(c, 1)
        xp, _ = self._pool_pad(xv, kernel, stride, padding, dilation, ceil_mode, -np.inf)
        pp, _ = self._pool_pad(pos, kernel, stride, padding, dilation, ceil_mode, -1)
        win = self._windows(xp, kernel, stride, (0, 0), dilation)
        pwin = self._windows(pp, kernel, stride, (0, 0), dilation)
        flat = win.reshape(win.shape[:4] + (-1,))
        am = np.argmax(flat, axis=-1)
        vals = np.take_along_axis(flat, am[..., None], -1)[..., 0]
        idx = np.take_along_axis(pwin.reshape(pwin.shape[:4] + (-1,)), am[..., None], -1)[..., 0]
        return _flat(vals, dtype), _flat(idx, _I64)

    def max_pool2d_backward(self, grad, gl, indices, il, input_shape, dtype):
        g, idx = _in(grad, gl, dtype), _view(indices, il)
        n, c, h, w = input_shape
        out = np.zeros((n, c, h * w), g.dtype)
        for i in range(n):
            for j in range(c):
                np.add.at(out[i, j], idx[i, j].reshape(-1), g[i, j].reshape(-1))
        return _flat(out, dtype)

    def _avg_counts(self, input_shape, kernel, stride, padding, ceil_mode, count_include_pad):
        """Divisor per output cell: padded cells count only with count_include_pad; cells
        past the padding (added by ceil_mode) never count."""
        h, w = input_shape[2:]
        (ph, pw) = padding
        ones = np.ones((1, 1, h, w))
        if count_include_pad:
            ones = np.pad(ones, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=1.0)
            padding = (0, 0)
        padded, _ = self._pool_pad(ones, kernel, stride, padding, (1, 1), ceil_mode, 0.0)
        return self._windows(padded, kernel, stride, (0, 0), (1, 1)).sum(axis=(-1, -2))

    def avg_pool2d(self, x, layout, dtype, kernel, stride, padding, ceil_mode, count_include_pad):
        xv = _in(x, layout, dtype)
        xp, _ = self._pool_pad(xv, kernel, stride, padding, (1, 1), ceil_mode, 0.0)
        sums = self._windows(xp, kernel, stride, (0, 0), (1, 1)).sum(axis=(-1, -2))
        counts = self._avg_counts(xv.shape, kernel, stride, padding, ceil_mode, count_include_pad)
        return _flat(sums / counts, dtype)

    def avg_pool2d_backward(
        self, grad, gl, input_shape, dtype, kernel, stride, padding, ceil_mode, count_include_pad
    ):
        g = _in(grad, gl, dtype)
        counts = self._avg_counts(
            input_shape, kernel, stride, padding, ceil_mode, count_include_pad
        )
        g = g / counts
        n, c, h, w = input_shape
        (ph, pw), (sh, sw), (kh, kw) = padding, stride, kernel
        _, extra = self._pool_pad(
            np.zeros((1, 1, h, w)), kernel, stride, padding, (1, 1), ceil_mode, 0.0
        )
        out = np.zeros((n, c, h + 2 * ph + extra[0], w + 2 * pw + extra[1]), g.dtype)
        oh, ow = g.shape[2:]
        for i in range(kh):
            for j in range(kw):
                out[:, :, i : i + sh * oh : sh, j : j + sw * ow : sw] += g
        return _flat(out[:, :, ph : ph + h, pw : pw + w], dtype)

    @staticmethod
    def _adaptive_bounds(size, out):
        return [(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]

    def adaptive_avg_pool2d(self, x, layout, dtype, output_size):
        xv = _in(x, layout, dtype)
        h, w = xv.shape[2:]
        rows = self._adaptive_bounds(h, output_size[0])
        cols = self._adaptive_bounds(w, output_size[1])
        out = np.stack(
            [
                np.stack([xv[:, :, a:b, c:d].mean(axis=(2, 3)) for c, d in cols], -1)
                for a, b in rows
            ],
            -2,
        )
        return _flat(out, dtype)

    def adaptive_avg_pool2d_backward(self, grad, gl, input_shape, dtype):
        g = _in(grad, gl, dtype)
        n, c, h, w = input_shape
        out = np.zeros(input_shape, g.dtype)
        rows = self._adaptive_bounds(h, g.shape[2])
        cols = self._adaptive_bounds(w, g.shape[3])
        for i, (a, b) in enumerate(rows):
            for j, (cc, d) in enumerate(cols):
                out[:, :, a:b, cc:d] += g[:, :, i : i + 1, j : j + 1] / ((b - a) * (d - cc))
        return _flat(out, dtype)

    # random -------------------------------------------------------------------
    @staticmethod
    def _gen(seed):
        return np.random.Generator(np.random.PCG64(seed))

    def rand_uniform(self, shape, dtype, low, high, seed):
        return _flat(self._gen(seed).uniform(low, high, int(np.prod(shape))), dtype)

    def rand_normal(self, shape, dtype, mean, std, seed):
        return _flat(self._gen(seed).normal(mean, std, int(np.prod(shape))), dtype)

    def bernoulli(self, shape, p, dtype, seed):
        return _flat(self._gen(seed).random(int(np.prod(shape))) < p, dtype)


def _dt(name):
    from shrew_core.dtypes import as_dtype

    return as_dtype(name)


_BOOL = _dt("bool")
_I64 = _dt("i64")
