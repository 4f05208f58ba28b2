"""The elementwise family: unary, affine, binary, compare, where, cast, copy, fills and
fused elementwise chains — all one kernel, a tiny register machine.

``vm`` walks the output in a grid-stride loop. For each element it unravels the flat
index once over the canonical shape (``layouts.canonical``: strided and broadcast inputs
are read in place, never copied) into the offsets of up to four inputs and the output,
then runs a short program over a local register file: ``LOAD k``, ``CONST``, ``UNARY op``,
``BINARY op``, ``AFFINE``, ``COMPARE op``, ``WHERE``; the last register is stored. The
program lives in a small device array cached per program, so a chain of ops (the fused
elementwise entry point, the unary backwards) costs one pass over memory. One kernel is
compiled per (accumulator type, output store kind, argument types). The common one-op
programs (copy/cast, one unary, affine, one binary) take a fast path that does not touch
the register file (local memory on a GPU).
"""

from __future__ import annotations

import functools
import math

import numba
import numpy as np
from numba import cuda

from shrew_core.backend import BINARY_OPS, COMPARE_OPS, UNARY_OPS
from shrew_core.errors import DTypeError

from . import _access as A
from . import _runtime, memory
from ._intrinsics import device_fn, math_for
from .layouts import canonical, contiguous_strides, storage_dtype

UNARY_CODE = {name: i for i, name in enumerate(UNARY_OPS)}
BINARY_CODE = {name: i for i, name in enumerate(BINARY_OPS)}
COMPARE_CODE = {name: i for i, name in enumerate(COMPARE_OPS)}
LOAD, CONST, UNARY, BINARY, AFFINE, COMPARE, WHERE = range(7)
FAST_NONE, FAST_COPY, FAST_UNARY, FAST_AFFINE, FAST_BINARY = range(5)
MAX_INPUTS = 4
MAX_PROGRAM = 48
FLOAT_ONLY = frozenset(UNARY_OPS) - {"neg", "abs", "square", "relu", "floor", "ceil",
                                      "round", "sign"}  # fmt: skip


# ----------------------------------------------------------------------------- scalar ops
@functools.cache
def float_ops(acc: str):
    """(unary(op, x), binary(op, a, b)) device functions for a float accumulator."""
    T = A.ACC_TYPES[acc]
    M = math_for(A.np_acc(acc))
    exp, log, sqrt, rsqrt, sin, cos, tanh, erf = (M.exp, M.log, M.sqrt, M.rsqrt, M.sin,
                                                  M.cos, M.tanh, M.erf)  # fmt: skip
    floor, ceil, rint, log1p, expm1, fabs = M.floor, M.ceil, M.rint, M.log1p, M.expm1, M.fabs
    powf, fmod = M.pow, M.fmod
    Z, ONE, HALF = T(0.0), T(1.0), T(0.5)
    SQ12, K, C3 = T(0.7071067811865476), T(0.7978845608028654), T(0.044715)

    @device_fn
    def unary(op, x):
        if op == 0:
            return -x
        elif op == 1:
            return fabs(x)
        elif op == 2:
            return exp(x)
        elif op == 3:
            return log(x)
        elif op == 4:
            return sqrt(x)
        elif op == 5:
            return rsqrt(x)
        elif op == 6:
            return x * x
        elif op == 7:
            return ONE / x
        elif op == 8:
            return sin(x)
        elif op == 9:
            return cos(x)
        elif op == 10:
            return tanh(x)
        elif op == 11:
            return ONE / (ONE + exp(-x))
        elif op == 12:
            return Z if x < Z else x
        elif op == 13:
            return HALF * x * (ONE + erf(x * SQ12))
        elif op == 14:
            return HALF * x * (ONE + tanh(K * (x + C3 * x * x * x)))
        elif op == 15:
            return x / (ONE + exp(-x))
        elif op == 16:
            return erf(x)
        elif op == 17:
            return floor(x)
        elif op == 18:
            return ceil(x)
        elif op == 19:
            return rint(x)
        elif op == 20:
            return ONE if x > Z else (-ONE if x < Z else x)
        elif op == 21:
            return log1p(x)
        return expm1(x)

    @device_fn
    def binary(op, a, b):
        if op == 0:
            return a + b
        elif op == 1:
            return a - b
        elif op == 2:
            return a * b
        elif op == 3:
            return a / b
        elif op == 4:
            return powf(a, b)
        elif op == 5:
            return a if (a > b or a != a) else b
        elif op == 6:
            return a if (a < b or a != a) else b
        elif op == 7:
            return floor(a / b)
        r = fmod(a, b)
        if r != Z and ((r < Z) != (b < Z)):
            r = r + b
        return r

    return unary, binary


@functools.cache
def int_ops():
    """(unary, binary) device functions on i64 (wrapping like NumPy; division by zero is
    checked on the host first)."""
    T = numba.int64
    Z, ONE = T(0), T(1)

    @device_fn
    def unary(op, x):
        if op == 0:
            return -x
        elif op == 1:
            return x if x >= Z else -x
        elif op == 6:
            return x * x
        elif op == 12:
            return x if x > Z else Z
        elif op == 20:
            return ONE if x > Z else (-ONE if x < Z else Z)
        return x

    @device_fn
    def binary(op, a, b):
        if op == 0:
            return a + b
        elif op == 1:
            return a - b
        elif op == 2:
            return a * b
        elif op == 4:
            r = ONE
            base = a
            e = b
            while e > Z:
                if e & ONE:
                    r = r * base
                base = base * base
                e = e >> ONE
            return r
        elif op == 5:
            return a if a > b else b
        elif op == 6:
            return a if a < b else b
        elif op == 7:
            return a // b if b != Z else Z
        elif op == 8:
            return a % b if b != Z else Z
        return a // b if b != Z else Z

    return unary, binary


@functools.cache
def compare_op():
    @device_fn
    def compare(op, a, b):
        if op == 0:
            return a == b
        elif op == 1:
            return a != b
        elif op == 2:
            return a < b
        elif op == 3:
            return a <= b
        elif op == 4:
            return a > b
        return a >= b

    return compare


# ----------------------------------------------------------------------------- the kernel
@_runtime.kernel_factory
def vm_kernel(acc: str, store_kind: int):
    T = A.ACC_TYPES[acc]
    unary, binary = int_ops() if acc == "i64" else float_ops(acc)
    compare = compare_op()
    load = A.loader(acc)
    store = A.storer(store_kind, acc)
    ZERO, ONE = T(0), T(1)
    NREG = MAX_PROGRAM

    @cuda.jit(cache=True)
    def vm(n, shape, prog, nprog, consts, x0, o0, s0, k0, x1, o1, s1, k1, x2, o2, s2, k2,
           x3, o3, s3, k3, out, oo, so, p0, p1, fast, fcode):  # fmt: skip
        regs = cuda.local.array(NREG, T)
        start = cuda.grid(1)
        step = cuda.gridsize(1)
        rank = len(shape)
        for i in range(start, n, step):
            rem = i
            a0, a1, a2, a3, ao = o0, o1, o2, o3, oo
            for d in range(rank - 1, -1, -1):
                if rem == 0:
                    break
                sz = shape[d]
                q = rem // sz
                idx = rem - q * sz
                rem = q
                a0 += idx * s0[d]
                a1 += idx * s1[d]
                a2 += idx * s2[d]
                a3 += idx * s3[d]
                ao += idx * so[d]
            if fast == FAST_COPY:  # one-instruction programs skip the register file
                store(out, ao, load(x0, a0, k0))
                continue
            elif fast == FAST_UNARY:
                store(out, ao, unary(fcode, load(x0, a0, k0)))
                continue
            elif fast == FAST_AFFINE:
                store(out, ao, load(x0, a0, k0) * p0 + p1)
                continue
            elif fast == FAST_BINARY:
                store(out, ao, binary(fcode, load(x0, a0, k0), load(x1, a1, k1)))
                continue
            for pc in range(nprog):
                kind = prog[pc, 0]
                code = prog[pc, 1]
                if kind == 0:
                    if code == 0:
                        v = load(x0, a0, k0)
                    elif code == 1:
                        v = load(x1, a1, k1)
                    elif code == 2:
                        v = load(x2, a2, k2)
                    else:
                        v = load(x3, a3, k3)
                elif kind == 1:
                    v = consts[code]
                elif kind == 2:
                    v = unary(code, regs[prog[pc, 2]])
                elif kind == 3:
                    v = binary(code, regs[prog[pc, 2]], regs[prog[pc, 3]])
                elif kind == 4:
                    v = regs[prog[pc, 2]] * p0 + p1
                elif kind == 5:
                    v = ONE if compare(code, regs[prog[pc, 2]], regs[prog[pc, 3]]) else ZERO
                else:
                    v = regs[prog[pc, 3]] if regs[prog[pc, 2]] != ZERO else regs[prog[pc, 4]]
                regs[pc] = v
            store(out, ao, regs[nprog - 1])

    return vm


@_runtime.kernel_factory
def fill_kernel():

    @cuda.jit(cache=True)
    def fill(out, n, value):
        start = cuda.grid(1)
        step = cuda.gridsize(1)
        for i in range(start, n, step):
            out[i] = value

    return fill


# ----------------------------------------------------------------------------- programs
class Program:
    """Builds a register program: each method appends one instruction, returns its slot."""

    def __init__(self):
        self.rows: list[tuple[int, int, int, int, int]] = []
        self.consts: list[float] = []

    def _add(self, kind, code=0, a=0, b=0, c=0) -> int:
        self.rows.append((kind, code, a, b, c))
        return len(self.rows) - 1

    def load(self, k: int) -> int:
        return self._add(LOAD, k)

    def const(self, value: float) -> int:
        self.consts.append(float(value))
        return self._add(CONST, len(self.consts) - 1)

    def unary(self, op: str, x: int) -> int:
        return self._add(UNARY, UNARY_CODE[op], x)

    def binary(self, op: str, a: int, b: int) -> int:
        return self._add(BINARY, BINARY_CODE[op], a, b)

    def affine(self, x: int) -> int:
        return self._add(AFFINE, 0, x)

    def compare(self, op: str, a: int, b: int) -> int:
        return self._add(COMPARE, COMPARE_CODE[op], a, b)

    def where(self, c: int, a: int, b: int) -> int:
        return self._add(WHERE, 0, c, a, b)

    def key(self) -> tuple:
        return tuple(self.rows), tuple(self.consts)


_device_cache: dict = {}


def _cached_device(key, make):
    arr = _device_cache.get(key)
    if arr is None:
        if len(_device_cache) > 4096:
            _device_cache.clear()
        arr = _device_cache[key] = _runtime.cuda().to_device(make())
    return arr


def _dummy(acc: str):
    return _cached_device(("dummy", acc), lambda: np.zeros(1, A.np_acc(acc)))


def run(prog: Program, inputs, shape, out_dtype, *, acc: str | None = None, out=None,
        out_layout=None, p0: float = 0.0, p1: float = 0.0):  # fmt: skip
    """Evaluate ``prog`` over ``shape``. ``inputs``: (storage, layout of ``shape``, dtype);
    writes into ``out`` through ``out_layout`` when given, else returns new contiguous
    storage of ``out_dtype``."""
    n = math.prod(shape)
    if out is None:
        out = memory.empty(n, storage_dtype(out_dtype))
        o_off, o_strides = 0, contiguous_strides(shape)
    else:
        o_off, o_strides = out_layout.offset, out_layout.strides
    if n == 0:
        return out
    acc = acc or A.acc_name(*[d for _, _, d in inputs], out_dtype)
    cshape, cstrides = canonical(shape, o_strides, *[lay.strides for _, lay, _ in inputs])
    rows, consts = prog.key()
    dprog = _cached_device(("prog", rows), lambda: np.array(rows, np.int64).reshape(-1, 5))
    dconst = _cached_device(("const", acc, consts),
                            lambda: np.array(consts + (0.0,), A.np_acc(acc)))  # fmt: skip
    args = []
    zeros = tuple([0] * len(cshape))
    for k in range(MAX_INPUTS):
        if k < len(inputs):
            s, lay, dt = inputs[k]
            args += [s, lay.offset, cstrides[k + 1], A.load_kind(dt)]
        else:
            args += [_dummy(acc), 0, zeros, 0]
    T = A.np_acc(acc)
    fast, fcode = _fast_path(rows)
    kernel = vm_kernel(acc, A.store_kind(out_dtype, acc))
    blocks, threads = _runtime.grid(n)
    kernel[blocks, threads](n, cshape, dprog, len(rows), dconst, *args, out, o_off,
                            cstrides[0], T(p0), T(p1), fast, fcode)  # fmt: skip
    return out


def _fast_path(rows) -> tuple[int, int]:
    """(fast-path code, op code) for the one-op programs the kernel runs without its
    register file: a copy/cast, ``unary(x0)``, ``affine(x0)``, ``binary(x0, x1)``."""
    if rows == ((LOAD, 0, 0, 0, 0),):
        return FAST_COPY, 0
    if len(rows) == 2 and rows[0] == (LOAD, 0, 0, 0, 0) and rows[1][2] == 0:
        if rows[1][0] == UNARY:
            return FAST_UNARY, rows[1][1]
        if rows[1][0] == AFFINE:
            return FAST_AFFINE, 0
    if (len(rows) == 3 and rows[:2] == ((LOAD, 0, 0, 0, 0), (LOAD, 1, 0, 0, 0))
            and rows[2][0] == BINARY and rows[2][2:4] == (0, 1)):  # fmt: skip
        return FAST_BINARY, rows[2][1]
    return FAST_NONE, 0


# ----------------------------------------------------------------------------- the family
def _one(op_builder, x, layout, dtype, out_dtype, **kw):
    p = Program()
    op_builder(p, p.load(0))
    return run(p, [(x, layout, dtype)], layout.shape, out_dtype, **kw)


def unary(op: str, x, layout, dtype):
    if not dtype.is_float and op in FLOAT_ONLY:
        raise DTypeError(f"unary {op}: not defined for {dtype} on cuda (cast to a float first)")
    return _one(lambda p, a: p.unary(op, a), x, layout, dtype, dtype)


def affine(x, layout, dtype, mul: float, add: float):
    acc = A.acc_name(dtype) if dtype.is_float else "f64"
    return _one(lambda p, a: p.affine(a), x, layout, dtype, dtype, acc=acc, p0=mul, p1=add)


def binary(op: str, a, la, b, lb, dtype):
    p = Program()
    p.binary(op, p.load(0), p.load(1))
    return run(p, [(a, la, dtype), (b, lb, dtype)], la.shape, dtype)


def compare(op: str, a, la, b, lb, dtype, bool_dtype):
    p = Program()
    p.compare(op, p.load(0), p.load(1))
    acc = A.acc_name(dtype)
    return run(p, [(a, la, dtype), (b, lb, dtype)], la.shape, bool_dtype, acc=acc)


def where(c, lc, a, la, b, lb, dtype, bool_dtype):
    p = Program()
    p.where(p.load(0), p.load(1), p.load(2))
    acc = A.acc_name(dtype)
    return run(p, [(c, lc, bool_dtype), (a, la, dtype), (b, lb, dtype)], la.shape, dtype,
               acc=acc)  # fmt: skip


def _bits_dtype(dtype):
    """bf16 copies move bit patterns through i64 registers (exact, NaN payloads too)."""
    from shrew_core.dtypes import u32

    return u32 if dtype.name == "bfloat16" else dtype


def cast(x, layout, src, dst):
    return _one(lambda p, a: a, x, layout, src, dst)


def copy(x, layout, dtype):
    if dtype.name == "bfloat16":
        from shrew_core.layout import Layout

        out = memory.empty(layout.numel, storage_dtype(dtype))
        copy_into(out, Layout.contiguous(layout.shape), x, layout, dtype)
        return out
    return _one(lambda p, a: a, x, layout, dtype, dtype)


def copy_into(dst, dst_layout, src, src_layout, dtype) -> None:
    p = Program()
    p.load(0)
    bits = _bits_dtype(dtype)
    run(p, [(src, src_layout, bits)], dst_layout.shape, bits, out=dst, out_layout=dst_layout)


def fill(shape, value, dtype):
    n = math.prod(shape)
    sdt = storage_dtype(dtype)
    out = memory.empty(n, sdt)
    if n:
        v = np.array(value).astype(dtype.np_dtype).reshape(1).view(sdt)[0]
        blocks, threads = _runtime.grid(n)
        fill_kernel()[blocks, threads](out, n, v)
    return out


# ----------------------------------------------------------------------------- fused programs
def _unary_backward_program(op: str) -> Program:
    """grad * d op(x)/dx with x in slot 0 and grad in slot 1."""
    p = Program()
    x, g = p.load(0), p.load(1)
    one = p.const(1.0)
    if op == "sigmoid" or op == "silu":
        s = p.unary("sigmoid", x)
        one_minus = p.binary("sub", one, s)
        if op == "sigmoid":
            d = p.binary("mul", s, one_minus)
        else:  # s * (1 + x * (1 - s))
            d = p.binary("mul", s, p.binary("add", one, p.binary("mul", x, one_minus)))
    elif op == "tanh":
        t = p.unary("tanh", x)
        d = p.binary("sub", one, p.binary("mul", t, t))
    elif op == "gelu":
        half = p.const(0.5)
        cdf = p.binary("mul", half, p.binary("add", one, p.unary(
            "erf", p.binary("mul", x, p.const(1.0 / math.sqrt(2.0))))))  # fmt: skip
        e = p.unary("exp", p.binary("mul", p.const(-0.5), p.binary("mul", x, x)))
        pdf = p.binary("mul", e, p.const(1.0 / math.sqrt(2.0 * math.pi)))
        d = p.binary("add", cdf, p.binary("mul", x, pdf))
    elif op == "gelu_tanh":
        k = math.sqrt(2.0 / math.pi)
        half = p.const(0.5)
        x2 = p.binary("mul", x, x)
        inner = p.binary("mul", p.const(k), p.binary(
            "add", x, p.binary("mul", p.const(0.044715), p.binary("mul", x2, x))))  # fmt: skip
        t = p.unary("tanh", inner)
        left = p.binary("mul", half, p.binary("add", one, t))
        sech2 = p.binary("sub", one, p.binary("mul", t, t))
        dinner = p.binary("mul", p.const(k), p.binary(
            "add", one, p.binary("mul", p.const(3 * 0.044715), x2)))  # fmt: skip
        right = p.binary("mul", p.binary("mul", p.binary("mul", half, x), sech2), dinner)
        d = p.binary("add", left, right)
    else:
        raise ValueError(op)
    p.binary("mul", g, d)
    return p


BACKWARD_OPS = ("gelu", "gelu_tanh", "silu", "sigmoid", "tanh")


def unary_backward(op: str, x, grad, shape, dtype):
    from shrew_core.layout import Layout

    lay = Layout.contiguous(tuple(shape))
    return run(_unary_backward_program(op), [(x, lay, dtype), (grad, lay, dtype)],
               tuple(shape), dtype)  # fmt: skip


def fused(program, inputs, shape, dtype):
    """The fused elementwise entry point; None when the program does not fit the machine
    (more than four inputs, too long, or non-float data): the caller composes it."""
    if len(inputs) > MAX_INPUTS or len(inputs) + len(program) > MAX_PROGRAM:
        return None
    if not dtype.is_float or not all(dt.is_float for _, _, dt in inputs):
        return None
    shape = tuple(shape)
    p = Program()
    ins = []
    for k, (s, lay, dt) in enumerate(inputs):
        lay = lay if lay.shape == shape else lay.broadcast_to(shape)
        if lay is None:
            return None
        ins.append((s, lay, dt))
        p.load(k)
    for op, *args in program:
        if op == "const":
            p.const(args[0])
        elif len(args) == 1:
            if op not in UNARY_CODE:
                return None
            p.unary(op, args[0])
        else:
            if op not in BINARY_CODE:
                return None
            p.binary(op, args[0], args[1])
    return run(p, ins, shape, dtype)
