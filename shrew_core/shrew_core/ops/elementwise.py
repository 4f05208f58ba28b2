"""Elementwise ops: unary math, binary arithmetic, comparisons, where, affine, clamp, cast."""

from __future__ import annotations

from ..autograd import no_grad, record
from ..dtypes import DType, as_dtype, bool_, f32
from ..errors import DTypeError
from ..tensor import Tensor
from ._base import (
    broadcast_pair,
    broadcast_shape,
    float_dtype_for,
    operands,
    require_float,
    scalar_tensor,
    wrap,
)

# Unary ops whose result is always floating point (integer inputs compute in f32).
_FLOAT_VALUED = frozenset(
    {
        "exp",
        "log",
        "sqrt",
        "rsqrt",
        "reciprocal",
        "sin",
        "cos",
        "tanh",
        "sigmoid",
        "gelu",
        "gelu_tanh",
        "silu",
        "erf",
        "log1p",
        "expm1",
    }
)
_NO_BOOL = frozenset({"neg", "sign", "abs", "square", "relu"})


def cast(x: Tensor, dtype) -> Tensor:
    """A copy of ``x`` in ``dtype`` (``x`` itself when the dtype already matches)."""
    dtype = as_dtype(dtype)
    if dtype is x.dtype:
        return x
    out = wrap(x._backend.cast(x._storage, x.layout, x.dtype, dtype), x.shape, dtype, x._backend)
    if dtype.is_float and x.dtype.is_float:
        record("cast", out, (x,))
    return out


def unary(op: str, x: Tensor) -> Tensor:
    if op in _FLOAT_VALUED and not x.dtype.is_float:
        x = cast(x, f32)
    elif x.dtype is bool_ and op in _NO_BOOL:
        raise DTypeError(f"{op}: not supported for bool tensors")
    out = wrap(x._backend.unary(op, x._storage, x.layout, x.dtype), x.layout.shape, x.dtype,
               x._backend)  # fmt: skip
    if x._requires_grad:  # the saved output is built only when a node will keep it
        record(op, out, (x,), out.detach())
    return out


def _unary_fn(op: str):
    def fn(x: Tensor) -> Tensor:
        return unary(op, x)

    fn.__name__ = op
    fn.__doc__ = f"Elementwise ``{op}``."
    return fn


neg = _unary_fn("neg")
exp = _unary_fn("exp")
log = _unary_fn("log")
sqrt = _unary_fn("sqrt")
rsqrt = _unary_fn("rsqrt")
square = _unary_fn("square")
reciprocal = _unary_fn("reciprocal")
sin = _unary_fn("sin")
cos = _unary_fn("cos")
tanh = _unary_fn("tanh")
sigmoid = _unary_fn("sigmoid")
relu = _unary_fn("relu")
silu = _unary_fn("silu")
erf = _unary_fn("erf")
floor = _unary_fn("floor")
ceil = _unary_fn("ceil")
sign = _unary_fn("sign")
log1p = _unary_fn("log1p")
expm1 = _unary_fn("expm1")
abs = _unary_fn("abs")  # noqa: A001 - tensor method name


def round(x: Tensor, decimals: int = 0) -> Tensor:  # noqa: A001
    """Round half to even, like torch.round / numpy.round."""
    if decimals == 0:
        return unary("round", x)
    scale = 10.0**decimals
    return unary("round", x * scale) / scale


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """GELU: ``"none"`` is the exact erf form, ``"tanh"`` the tanh approximation."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return unary("gelu" if approximate == "none" else "gelu_tanh", x)


def binary(op: str, a, b) -> Tensor:
    a, b, dtype = operands(op, a, b)
    if not dtype.is_float:
        if dtype is bool_:
            raise DTypeError(f"{op}: arithmetic on bool tensors is not supported; cast first")
        if op == "div":
            dtype = f32
    if a.dtype is not dtype:
        a = cast(a, dtype)
    if b.dtype is not dtype:
        b = cast(b, dtype)
    shape, la, lb = broadcast_pair(op, a.layout, b.layout)
    storage = a._backend.binary(op, a._storage, la, b._storage, lb, dtype)
    out = wrap(storage, shape, dtype, a._backend)
    if dtype.is_float:
        record(op, out, (a, b), out.detach() if op == "pow" else None)
    return out


def add(a, b, alpha=1) -> Tensor:
    return binary("add", a, b if alpha == 1 else b * alpha)


def sub(a, b, alpha=1) -> Tensor:
    return binary("sub", a, b if alpha == 1 else b * alpha)


def mul(a, b) -> Tensor:
    return binary("mul", a, b)


def div(a, b, rounding_mode: str | None = None) -> Tensor:
    if rounding_mode is None:
        return binary("div", a, b)
    if rounding_mode == "floor":
        return binary("floor_divide", a, b)
    if rounding_mode == "trunc":
        return _div_trunc(a, b)
    raise ValueError(f"div: rounding_mode must be None, 'floor' or 'trunc', got {rounding_mode!r}")


def _div_trunc(a, b) -> Tensor:
    """Quotient rounded toward zero: exact in integer arithmetic for integer operands (like
    torch, the result stays integer); for floats its gradient is zero everywhere."""
    a, b, dtype = operands("div", a, b)
    if not dtype.is_float:
        q, r = binary("floor_divide", a, b), binary("remainder", a, b)
        return where((r != 0) & ((a < 0) != (b < 0)), q + 1, q)
    with no_grad():
        q = binary("div", a, b)
        out = unary("sign", q) * unary("floor", unary("abs", q))
    return record("div_trunc", out, (a, b))


def pow(a, b) -> Tensor:  # noqa: A001
    """``a ** b``. Like torch, an integer tensor to a negative Python-int power is an error
    (a negative integer *tensor* exponent gives 0 unless the base is ±1)."""
    if isinstance(b, int) and b < 0 and isinstance(a, Tensor) and not a.dtype.is_float:
        raise ValueError(f"pow: integers to negative integer powers are not allowed (got {b})")
    return binary("pow", a, b)


def powf(x: Tensor, exponent: float) -> Tensor:
    """The seed's ``powf``: ``x ** exponent`` for a scalar exponent."""
    return binary("pow", x, float(exponent))


def maximum(a, b) -> Tensor:
    return binary("maximum", a, b)


def minimum(a, b) -> Tensor:
    return binary("minimum", a, b)


def floor_divide(a, b) -> Tensor:
    return binary("floor_divide", a, b)


def remainder(a, b) -> Tensor:
    return binary("remainder", a, b)


def compare(op: str, a, b) -> Tensor:
    a, b, dtype = operands(op, a, b)
    if a.dtype is not dtype:
        a = cast(a, dtype)
    if b.dtype is not dtype:
        b = cast(b, dtype)
    shape, la, lb = broadcast_pair(op, a.layout, b.layout)
    storage = a._backend.compare(op, a._storage, la, b._storage, lb, dtype)
    return wrap(storage, shape, bool_, a._backend)


def eq(a, b) -> Tensor:
    return compare("eq", a, b)


def ne(a, b) -> Tensor:
    return compare("ne", a, b)


def lt(a, b) -> Tensor:
    return compare("lt", a, b)


def le(a, b) -> Tensor:
    return compare("le", a, b)


def gt(a, b) -> Tensor:
    return compare("gt", a, b)


def ge(a, b) -> Tensor:
    return compare("ge", a, b)


def _as_bool(x: Tensor) -> Tensor:
    return x if x.dtype is bool_ else compare("ne", x, 0)


def logical_not(x: Tensor) -> Tensor:
    return compare("eq", _as_bool(x), False)


def logical_and(a: Tensor, b) -> Tensor:
    return where(_as_bool(a), _as_bool(b) if isinstance(b, Tensor) else bool(b), False)


def logical_or(a: Tensor, b) -> Tensor:
    return where(_as_bool(a), True, _as_bool(b) if isinstance(b, Tensor) else bool(b))


def logical_xor(a: Tensor, b) -> Tensor:
    return compare("ne", _as_bool(a), _as_bool(b) if isinstance(b, Tensor) else bool(b))


def where(cond: Tensor, a, b) -> Tensor:
    """``cond ? a : b`` with broadcasting; ``a``/``b`` may be scalars. Non-bool conds mean != 0."""
    if not isinstance(cond, Tensor):
        raise TypeError("where: condition must be a Tensor")
    cond = _as_bool(cond)
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        a = scalar_tensor(a, _scalar_only_dtype(a, b), cond)
    a, b, dtype = operands("where", a, b)
    if a.dtype is not dtype:
        a = cast(a, dtype)
    if b.dtype is not dtype:
        b = cast(b, dtype)
    lc, la, lb = cond.layout, a.layout, b.layout
    shape = lc.shape
    if la.shape != shape or lb.shape != shape:
        shape = broadcast_shape("where", shape, la.shape, lb.shape)
        lc, la, lb = (lay if lay.shape == shape else lay.broadcast_to(shape)
                      for lay in (lc, la, lb))  # fmt: skip
    storage = cond._backend.where(cond._storage, lc, a._storage, la, b._storage, lb, dtype)
    out = wrap(storage, shape, dtype, cond._backend)
    if dtype.is_float:
        record("where", out, (a, b), cond)
    return out


def _scalar_only_dtype(a, b) -> DType:
    from ..dtypes import result_type_with_scalar

    return result_type_with_scalar(result_type_with_scalar(bool_, a), b)


def where_cond(mask: Tensor, on_true, on_false) -> Tensor:
    """The seed's ``mask.where_cond(on_true, on_false)``."""
    return where(mask, on_true, on_false)


def tensor_where(x: Tensor, cond: Tensor, other) -> Tensor:
    """PyTorch's method form ``x.where(cond, other)``: ``cond ? x : other``."""
    return where(cond, x, other)


def masked_fill(x: Tensor, mask: Tensor, value) -> Tensor:
    """``value`` where ``mask`` is true, else ``x`` (mask broadcasts to x's shape)."""
    if isinstance(value, Tensor):
        value = value.to(x.dtype)
    out = where(mask, value, x)
    return out if out.dtype is x.dtype else cast(out, x.dtype)


def affine(x: Tensor, mul: float, add: float) -> Tensor:
    """``x * mul + add`` in one kernel."""
    require_float("affine", x)
    storage = x._backend.affine(x._storage, x.layout, x.dtype, float(mul), float(add))
    return record("affine", wrap(storage, x.shape, x.dtype, x._backend), (x,), float(mul))


def clamp(x: Tensor, min=None, max=None) -> Tensor:  # noqa: A002 - PyTorch keywords
    """Limit values to ``[min, max]``; the gradient passes where ``min <= x <= max``."""
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        return _clamp_tensor(x, min, max)
    dtype = x.dtype
    for bound in (min, max):
        if bound is not None:
            dtype = float_dtype_for("clamp", dtype) if isinstance(bound, float) else dtype
    src = cast(x, dtype) if dtype is not x.dtype else x
    b = src._backend
    storage, layout = src._storage, src.layout
    if min is not None:
        lo = scalar_tensor(min, dtype, src)
        storage = b.binary(
            "maximum", storage, layout, lo._storage, lo.layout.broadcast_to(src.shape), dtype
        )
        layout = type(layout).contiguous(src.shape)
    if max is not None:
        hi = scalar_tensor(max, dtype, src)
        storage = b.binary(
            "minimum", storage, layout, hi._storage, hi.layout.broadcast_to(src.shape), dtype
        )
    out = wrap(storage, src.shape, dtype, b)
    if dtype.is_float:
        record("clamp", out, (src,), (min, max))
    return out


def _clamp_tensor(x: Tensor, lo, hi) -> Tensor:
    """clamp with tensor bounds (broadcast, promoted): ``min(max(x, lo), hi)``. Gradients as
    torch: x where ``lo <= x <= hi``, lo where ``x < lo < hi``, hi where ``x > hi`` or
    ``hi < lo`` (so ties go to x and no gradient is split)."""
    with no_grad():
        out = x if lo is None else maximum(x, lo)
        out = out if hi is None else minimum(out, hi)
    if out.dtype.is_float:
        inputs = tuple(v if isinstance(v, Tensor) else None for v in (x, lo, hi))
        record("clamp_tensor", out, inputs, (lo, hi))
    return out


clip = clamp


def hardtanh(x: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    """``clamp(x, min_val, max_val)`` whose gradient is 0 at the bounds themselves and passes
    through NaN, like torch.nn.functional.hardtanh. Integer inputs stay integer (the bounds
    are truncated toward zero)."""
    if not x.dtype.is_float:
        return clamp(x, int(min_val), int(max_val))
    with no_grad():
        out = clamp(x, min_val, max_val)
    return record("hardtanh", out, (x,), (min_val, max_val))


def elu(x: Tensor, alpha: float = 1.0) -> Tensor:
    """``x`` where ``x > 0``, else ``alpha * (exp(x) - 1)``; the gradient passes through NaN
    like torch.nn.functional.elu."""
    require_float("elu", x)
    with no_grad():
        out = where(x > 0, x, unary("expm1", clamp(x, max=0.0)) * alpha)
    return record("elu", out, (x,), alpha)
