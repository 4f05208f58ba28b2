"""Elementwise kernels: unary maps (+ affine), binary maps, over strided operands.

One serial kernel per family walks a canonical 4-D layout (see ``strided.canonical``)
in runs along the innermost dim, choosing a vectorisable loop per run kind (both
contiguous, one side a broadcast scalar, general stride). The op is an integer code
switched inside an ``inline='always'`` helper: LLVM unswitches the loop, so each op
still gets a tight SIMD loop, while one compilation per dtype (f32, f64) covers every
op. The serial kernels take an output range ``[lo, hi)`` and release the GIL
(``nogil``): large outputs are split into ranges run on the backend's worker threads
(``shrew_cpu.threads``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from shrew_core.backend import BINARY_OPS, UNARY_OPS

from .vmath import ferf, fexp, ftanh, gelu_tanh_arg

UNARY_CODE = {name: i for i, name in enumerate(UNARY_OPS)}
AFFINE = len(UNARY_OPS)
BINARY_CODE = {name: i for i, name in enumerate(BINARY_OPS)}

_SQRT1_2 = 0.7071067811865476
_SQRT_2_PI = 0.7978845608028654

# codes (must match UNARY_OPS / BINARY_OPS order; checked in tests)
(NEG, ABS, EXP, LOG, SQRT, RSQRT, SQUARE, RECIP, SIN, COS, TANH, SIGMOID, RELU, GELU,
 GELU_TANH, SILU, ERF, FLOOR, CEIL, ROUND, SIGN, LOG1P, EXPM1) = range(23)  # fmt: skip
ADD, SUB, MUL, DIV, POW, MAXIMUM, MINIMUM, FLOORDIV, REM = range(9)


@njit(inline="always", error_model="numpy")
def _round_half_even(x):
    r = np.floor(x)
    d = x - r
    if d > 0.5 or (d == 0.5 and r - 2.0 * np.floor(r * 0.5) == 1.0):
        r += 1.0
    return r


def _uop(op, x, p0, p1):
    """Scalar unary op ``op`` (a code) on a float; p0/p1 are the affine mul/add."""
    if op == NEG:
        return -x
    elif op == ABS:
        return abs(x)
    elif op == EXP:
        return fexp(x)
    elif op == LOG:
        return math.log(x) if x > 0 else (-math.inf if x == 0 else math.nan)
    elif op == SQRT:
        return math.sqrt(x) if x >= 0 else math.nan
    elif op == RSQRT:
        return 1.0 / math.sqrt(x) if x >= 0 else math.nan
    elif op == SQUARE:
        return x * x
    elif op == RECIP:
        return 1.0 / x
    elif op == SIN:
        return math.sin(x)
    elif op == COS:
        return math.cos(x)
    elif op == TANH:
        return ftanh(x)
    elif op == SIGMOID:
        return 1.0 / (1.0 + fexp(-x))
    elif op == RELU:
        return 0.0 if x < 0 else x
    elif op == GELU:
        return 0.5 * x * (1.0 + math.erf(x * _SQRT1_2))
    elif op == GELU_TANH:
        return 0.5 * x * (1.0 + ftanh(gelu_tanh_arg(x)))
    elif op == SILU:
        return x / (1.0 + fexp(-x))
    elif op == ERF:
        return math.erf(x)
    elif op == FLOOR:
        return np.floor(x)
    elif op == CEIL:
        return np.ceil(x)
    elif op == ROUND:
        return _round_half_even(x)
    elif op == SIGN:
        return 1.0 if x > 0 else (-1.0 if x < 0 else 0.0)
    elif op == LOG1P:
        return math.log1p(x) if x >= -1.0 else math.nan
    elif op == EXPM1:
        return math.expm1(x)
    else:  # AFFINE
        return x * p0 + p1


def _bop(op, x, y):
    """Scalar binary op ``op`` (a code) on floats, NumPy semantics."""
    if op == ADD:
        return x + y
    elif op == SUB:
        return x - y
    elif op == MUL:
        return x * y
    elif op == DIV:
        return x / y
    elif op == POW:
        return x**y
    elif op == MAXIMUM:
        return x if (x >= y or x != x) else y
    elif op == MINIMUM:
        return x if (x <= y or x != x) else y
    elif op == FLOORDIV:
        if y == 0:
            return x / y
        mod = np.fmod(x, y)
        div = (x - mod) / y
        if mod != 0 and ((y < 0) != (mod < 0)):
            div -= 1.0
        if div != 0:
            fd = np.floor(div)
            if div - fd > 0.5:
                fd += 1.0
            return fd
        return np.copysign(0.0, x / y)
    else:  # REM
        if y == 0:
            return np.fmod(x, y)
        mod = np.fmod(x, y)
        if mod != 0:
            if (y < 0) != (mod < 0):
                mod += y
        else:
            mod = np.copysign(0.0, y)
        return mod


# The scalar ops are compiled twice. ``uop`` / ``bop`` are ordinary functions, compiled once
# per kernel signature and called from the generic loops: inlining the whole switch into
# every loop made the binary family take 6.0 s to compile on its first call (now 2.8 s) and
# gelu's unary family 4.5 s (2.4), with no runtime loss (the hot ops have explicit loops).
# The fused tape evaluates one op per loop and needs them inlined (2x faster there).
uop = njit(error_model="numpy")(_uop)
bop = njit(error_model="numpy")(_bop)
uop_inline = njit(inline="always", error_model="numpy")(_uop)
bop_inline = njit(inline="always", error_model="numpy")(_bop)


# ---------------------------------------------------------------------------- unary
@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def _unary_contig_special(op, xs, o):
    """Contiguous exp/tanh/erf-based ops, one explicit loop each: a loop around the whole ``uop``
    switch is too big for LLVM to unswitch, so it would stay scalar. Arithmetic in the
    data's dtype (f32 SIMD exp/tanh from ``vmath``)."""
    n = o.size
    one = o.dtype.type(1.0)
    half = o.dtype.type(0.5)
    if op == EXP:
        for i in range(n):
            o[i] = fexp(xs[i])
    elif op == SIGMOID:
        for i in range(n):
            o[i] = one / (one + fexp(-xs[i]))
    elif op == SILU:
        for i in range(n):
            v = xs[i]
            o[i] = v / (one + fexp(-v))
    elif op == TANH:
        for i in range(n):
            o[i] = ftanh(xs[i])
    elif op == GELU_TANH:
        for i in range(n):
            v = xs[i]
            o[i] = half * v * (one + ftanh(gelu_tanh_arg(v)))
    elif op == GELU:
        r2 = o.dtype.type(_SQRT1_2)
        for i in range(n):
            v = xs[i]
            o[i] = half * v * (one + ferf(v * r2))
    else:  # ERF
        for i in range(n):
            o[i] = ferf(xs[i])


@njit(cache=True, nogil=True, error_model="numpy")
def _unary_run(op, x, px, sx, o, p0, p1):
    n = o.size
    if sx == 1:
        xs = x[px : px + n]
        if (op == EXP or op == SIGMOID or op == SILU or op == TANH or op == GELU_TANH
                or op == GELU or op == ERF):  # fmt: skip
            _unary_contig_special(op, xs, o)
            return
        for i in range(n):
            o[i] = uop(op, xs[i], p0, p1)
    elif sx == 0:
        v = uop(op, x[px], p0, p1)
        for i in range(n):
            o[i] = v
    else:
        for i in range(n):
            o[i] = uop(op, x[px + i * sx], p0, p1)


@njit(cache=True, nogil=True, error_model="numpy")
def unary_serial(op, x, xo, xs, out, shape, p0, p1, lo, hi):
    """out[lo:hi] = op(x viewed through (shape, xs, xo)); shape/xs are 4-tuples."""
    s1, s2, s3 = shape[1], shape[2], shape[3]
    i = lo
    while i < hi:
        i3 = i % s3
        r = i // s3
        i2 = r % s2
        r = r // s2
        i1 = r % s1
        i0 = r // s1
        m = min(s3 - i3, hi - i)
        px = xo + i0 * xs[0] + i1 * xs[1] + i2 * xs[2] + i3 * xs[3]
        _unary_run(op, x, px, xs[3], out[i : i + m], p0, p1)
        i += m



# ---------------------------------------------------------------------------- binary
@njit(cache=True, nogil=True, error_model="numpy")
def _binary_contig(op, xa, xb, o):
    """Both operands contiguous: explicit loops for the hot ops so each one vectorises
    in the operands' own precision (no round trip through f64)."""
    n = o.size
    if op == ADD:
        for i in range(n):
            o[i] = xa[i] + xb[i]
    elif op == SUB:
        for i in range(n):
            o[i] = xa[i] - xb[i]
    elif op == MUL:
        for i in range(n):
            o[i] = xa[i] * xb[i]
    elif op == DIV:
        for i in range(n):
            o[i] = xa[i] / xb[i]
    else:
        for i in range(n):
            o[i] = bop(op, xa[i], xb[i])


@njit(cache=True, nogil=True, error_model="numpy")
def _binary_scalar(op, xa, vb, o, swap):
    """One operand a broadcast scalar ``vb`` (on the left when ``swap``)."""
    n = o.size
    if op == ADD:
        for i in range(n):
            o[i] = xa[i] + vb
    elif op == MUL:
        for i in range(n):
            o[i] = xa[i] * vb
    elif op == SUB and not swap:
        for i in range(n):
            o[i] = xa[i] - vb
    elif op == DIV and not swap:
        for i in range(n):
            o[i] = xa[i] / vb
    elif swap:
        for i in range(n):
            o[i] = bop(op, vb, xa[i])
    else:
        for i in range(n):
            o[i] = bop(op, xa[i], vb)


@njit(cache=True, nogil=True, error_model="numpy")
def _binary_run(op, a, pa, sa, b, pb, sb, o):
    n = o.size
    if sa == 1 and sb == 1:
        _binary_contig(op, a[pa : pa + n], b[pb : pb + n], o)
    elif sb == 0 and sa == 1:
        _binary_scalar(op, a[pa : pa + n], b[pb], o, False)
    elif sa == 0 and sb == 1:
        _binary_scalar(op, b[pb : pb + n], a[pa], o, True)
    elif sa == 0 and sb == 0:
        v = bop(op, a[pa], b[pb])
        for i in range(n):
            o[i] = v
    else:
        for i in range(n):
            o[i] = bop(op, a[pa + i * sa], b[pb + i * sb])


@njit(cache=True, nogil=True, error_model="numpy")
def binary_serial(op, a, ao, ast, b, bo, bst, out, shape, lo, hi):
    """out[lo:hi] = a op b, both viewed through canonical 4-D layouts."""
    s1, s2, s3 = shape[1], shape[2], shape[3]
    i = lo
    while i < hi:
        i3 = i % s3
        r = i // s3
        i2 = r % s2
        r = r // s2
        i1 = r % s1
        i0 = r // s1
        m = min(s3 - i3, hi - i)
        pa = ao + i0 * ast[0] + i1 * ast[1] + i2 * ast[2] + i3 * ast[3]
        pb = bo + i0 * bst[0] + i1 * bst[1] + i2 * bst[2] + i3 * bst[3]
        _binary_run(op, a, pa, ast[3], b, pb, bst[3], out[i : i + m])
        i += m



# ---------------------------------------------------------------------------- NumPy paths
def _sigmoid(x, out):
    np.negative(x, out=out)
    np.exp(out, out=out)
    out += 1
    np.reciprocal(out, out=out)
    return out


def _sign(x, out):
    out[...] = np.greater(x, 0)
    out -= np.less(x, 0)
    return out


def _round(x, out):
    return np.rint(x, out=out) if x.dtype.kind == "f" else _ident(x, out)


def _ident(x, out):
    np.copyto(out, x)
    return out


def _relu(x, out):
    return np.maximum(x, 0, out=out)


def _silu(x, out):
    _sigmoid(x, out)
    out *= x
    return out


def _rsqrt(x, out):
    np.sqrt(x, out=out)
    return np.reciprocal(out, out=out)


#: NumPy implementations used below the parallel threshold (and for integer dtypes).
#: ``None``: no NumPy ufunc (erf and the erf/tanh GELUs): the serial Numba kernel runs.
NUMPY_UNARY = {
    "neg": lambda x, o: np.negative(x, out=o),
    "abs": lambda x, o: np.abs(x, out=o) if x.dtype.kind != "u" else _ident(x, o),
    "exp": lambda x, o: np.exp(x, out=o),
    "log": lambda x, o: np.log(x, out=o),
    "sqrt": lambda x, o: np.sqrt(x, out=o),
    "rsqrt": _rsqrt,
    "square": lambda x, o: np.multiply(x, x, out=o),
    "reciprocal": lambda x, o: np.reciprocal(x, out=o),
    "sin": lambda x, o: np.sin(x, out=o),
    "cos": lambda x, o: np.cos(x, out=o),
    "tanh": lambda x, o: np.tanh(x, out=o),
    "sigmoid": _sigmoid,
    "relu": _relu,
    "gelu": None,
    "gelu_tanh": None,
    "silu": _silu,
    "erf": None,
    "floor": lambda x, o: np.floor(x, out=o) if x.dtype.kind == "f" else _ident(x, o),
    "ceil": lambda x, o: np.ceil(x, out=o) if x.dtype.kind == "f" else _ident(x, o),
    "round": _round,
    "sign": _sign,
    "log1p": lambda x, o: np.log1p(x, out=o),
    "expm1": lambda x, o: np.expm1(x, out=o),
}

NUMPY_BINARY = {
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

NUMPY_COMPARE = {
    "eq": np.equal,
    "ne": np.not_equal,
    "lt": np.less,
    "le": np.less_equal,
    "gt": np.greater,
    "ge": np.greater_equal,
}


# ---------------------------------------------------------------------------- unary backward
@njit(inline="always", error_model="numpy")
def dop(op, x):
    """d/dx of unary op ``op`` (gelu, gelu_tanh, silu, sigmoid, tanh) at x."""
    if op == GELU:
        cdf = 0.5 * (1.0 + math.erf(x * _SQRT1_2))
        pdf = math.exp(-0.5 * x * x) * 0.3989422804014327
        return cdf + x * pdf
    elif op == GELU_TANH:  # f64 tanh: 1 + th and 1 - th**2 cancel for large |x|
        th = math.tanh(_SQRT_2_PI * (x + 0.044715 * x * x * x))
        return 0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * _SQRT_2_PI * (
            1.0 + 3 * 0.044715 * x * x
        )
    elif op == SILU:
        s = 1.0 / (1.0 + fexp(-x))
        return s * (1.0 + x * (1.0 - s))
    elif op == SIGMOID:
        s = 1.0 / (1.0 + fexp(-x))
        return s * (1.0 - s)
    else:  # TANH
        th = ftanh(x)
        return 1.0 - th * th


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def unary_bwd_serial(op, x, g, out, lo, hi):
    xs = x[lo:hi]
    gs = g[lo:hi]
    o = out[lo:hi]
    one = o.dtype.type(1.0)
    if op == SIGMOID:  # explicit loops (SIMD) for the exp/tanh-based ops
        for i in range(o.size):
            s = one / (one + fexp(-xs[i]))
            o[i] = gs[i] * (s * (one - s))
    elif op == SILU:
        for i in range(o.size):
            v = xs[i]
            s = one / (one + fexp(-v))
            o[i] = gs[i] * (s * (one + v * (one - s)))
    elif op == TANH:
        for i in range(o.size):
            th = ftanh(xs[i])
            o[i] = gs[i] * (one - th * th)
    elif op == GELU:
        half = o.dtype.type(0.5)
        r2 = o.dtype.type(_SQRT1_2)
        rpi = o.dtype.type(0.3989422804014327)  # 1 / sqrt(2 pi)
        for i in range(o.size):
            v = xs[i]
            o[i] = gs[i] * (half * (one + ferf(v * r2)) + v * fexp(-half * v * v) * rpi)
    else:
        for i in range(o.size):
            o[i] = gs[i] * dop(op, xs[i])



# ---------------------------------------------------------------------------- fused chains
FUSED_UNARY, FUSED_BINARY, FUSED_CONST, FUSED_INPUT = 0, 1, 2, 3
FUSED_BLOCK = 1024


@njit(cache=True, nogil=True, error_model="numpy")
def fused_serial(prog, consts, inputs, out, lo, hi):
    """Evaluate an instruction tape over out[lo:hi] in blocks of FUSED_BLOCK elements.

    ``prog`` rows are (kind, code, arg0, arg1): kind FUSED_INPUT loads ``inputs[code]``
    (a contiguous array of out's size), FUSED_CONST broadcasts ``consts[code]``,
    FUSED_UNARY / FUSED_BINARY apply op ``code`` to earlier slots. The last slot is
    the result. Slots live in a small scratch matrix that stays in cache.
    """
    ns = prog.shape[0]
    scratch = np.empty((ns, FUSED_BLOCK), out.dtype)
    for b0 in range(lo, hi, FUSED_BLOCK):
        m = min(FUSED_BLOCK, hi - b0)
        for k in range(ns):
            kind = prog[k, 0]
            code = prog[k, 1]
            dst = scratch[k, :m]
            if kind == FUSED_INPUT:
                src = inputs[code][b0 : b0 + m]
                for i in range(m):
                    dst[i] = src[i]
            elif kind == FUSED_CONST:
                c = consts[code]
                for i in range(m):
                    dst[i] = c
            elif kind == FUSED_UNARY:
                a = scratch[prog[k, 2], :m]
                for i in range(m):
                    dst[i] = uop_inline(code, a[i], 0.0, 0.0)
            else:
                a = scratch[prog[k, 2], :m]
                bb = scratch[prog[k, 3], :m]
                for i in range(m):
                    dst[i] = bop_inline(code, a[i], bb[i])
        res = scratch[ns - 1, :m]
        o = out[b0 : b0 + m]
        for i in range(m):
            o[i] = res[i]
