"""Per-op shape/dtype inference rules, referenced from the op table in ops.py.

Each rule is `rule(ctx, types, attrs) -> Type`. `types` are the input types,
`attrs` the node's attributes with defaults applied. A rule reports a real
mismatch with `ctx.error(message, hint)` and returns UNKNOWN; it returns
UNKNOWN silently when inputs are not known well enough to decide. Symbolic
dims (Batch, SeqLen) flow through unchanged.
"""

from __future__ import annotations

from .ir import (
    DYNAMIC,
    UNKNOWN,
    Dim,
    DimExpr,
    Dynamic,
    Fixed,
    ListType,
    NullType,
    ScalarType,
    StrType,
    Symbolic,
    TensorType,
    TupleType,
    Type,
    dim_binop,
    is_float,
    is_int,
)


class RuleContext:
    """What a rule may use besides its inputs: constant values of inputs and error reporting."""

    def __init__(self, op: str, const_values: list, report) -> None:
        self.op = op
        self.const_values = const_values
        self._report = report

    def error(self, message: str, hint: str | None = None) -> Type:
        self._report(f"{self.op}: {message}", hint)
        return UNKNOWN


def fmt_dims(dims) -> str:
    return "[" + ", ".join(str(d) for d in dims) + "]"


def normalize_dim(dim: int, rank: int) -> int | None:
    d = dim + rank if dim < 0 else dim
    return d if 0 <= d < rank else None


# --------------------------------------------------------------------------- dtypes


def promote(ctx: RuleContext, a: Type, b: Type) -> str | None:
    """Result dtype of a binary elementwise op, or None when unknown/mismatched (reported)."""
    da = a.dtype if isinstance(a, (TensorType, ScalarType)) else None
    db = b.dtype if isinstance(b, (TensorType, ScalarType)) else None
    if da is None or db is None:
        return None
    weak_a = isinstance(a, ScalarType) and a.weak
    weak_b = isinstance(b, ScalarType) and b.weak
    if da == db:
        return da
    if weak_a != weak_b:
        strong, weak = (db, da) if weak_a else (da, db)
        if is_float(weak) and not is_float(strong):
            return "f32"  # int tensor * 1.5 -> float, as in PyTorch
        return strong
    if weak_a and weak_b:
        return "f64" if is_float(da) or is_float(db) else "i64"
    ctx.error(
        f"dtype mismatch: {a} vs {b}",
        "cast one operand with cast(x, dtype: \"...\") so both have the same dtype",
    )
    return None


# --------------------------------------------------------------------------- helpers


def broadcast_dims(ctx: RuleContext, a, b) -> tuple[Dim, ...] | None:
    out: list[Dim] = []
    n = max(len(a), len(b))
    pa = (Fixed(1),) * (n - len(a)) + tuple(a)
    pb = (Fixed(1),) * (n - len(b)) + tuple(b)
    for x, y in zip(pa, pb):
        if x == y:
            out.append(x)
        elif x == Fixed(1):
            out.append(y)
        elif y == Fixed(1):
            out.append(x)
        elif isinstance(x, Fixed) and isinstance(y, Fixed):
            ctx.error(
                f"cannot broadcast shapes {fmt_dims(a)} and {fmt_dims(b)} ({x} vs {y})",
                "dimensions must be equal or 1 (aligned from the right)",
            )
            return None
        elif isinstance(x, Fixed) or isinstance(y, Fixed):
            out.append(x if isinstance(x, Fixed) else y)
        else:
            out.append(DYNAMIC)
    return tuple(out)


def _shape_of(t: Type):
    if isinstance(t, TensorType):
        return t.dims
    if isinstance(t, ScalarType):
        return ()
    return None


# --------------------------------------------------------------------------- rules


def same_as_first(ctx, types, attrs) -> Type:
    return types[0] if types else UNKNOWN


def unary_float(ctx, types, attrs) -> Type:
    t = types[0]
    if isinstance(t, TensorType) and is_int(t.dtype):
        return TensorType(t.dims, "f32")
    return t


def to_bool(ctx, types, attrs) -> Type:
    t = types[0]
    if isinstance(t, TensorType):
        return TensorType(t.dims, "bool")
    if isinstance(t, ScalarType):
        return ScalarType("bool")
    return UNKNOWN


def _elementwise(ctx, types, dtype_override: str | None) -> Type:
    shapes = [_shape_of(t) for t in types]
    if any(s is None for s in shapes):
        return UNKNOWN
    dims = shapes[0]
    for s in shapes[1:]:
        dims = broadcast_dims(ctx, dims, s)
        if dims is None:
            return UNKNOWN
    acc = types[0]
    for t in types[1:]:
        dtype = promote(ctx, acc, t)
        if dtype is None:
            return UNKNOWN
        if isinstance(acc, TensorType) or isinstance(t, TensorType):
            acc = TensorType((), dtype)
        else:
            acc = ScalarType(dtype, acc.weak and t.weak)
    dtype = dtype_override or acc.dtype
    if isinstance(acc, ScalarType):
        return ScalarType(dtype, acc.weak and dtype_override is None)
    return TensorType(tuple(dims), dtype)


def broadcast(ctx, types, attrs) -> Type:
    return _elementwise(ctx, types, None)


def compare(ctx, types, attrs) -> Type:
    return _elementwise(ctx, types, "bool")


def where(ctx, types, attrs) -> Type:
    cond, a, b = types
    result = _elementwise(ctx, [a, b], None)
    if result is UNKNOWN or _shape_of(cond) is None:
        return result
    dims = broadcast_dims(ctx, _shape_of(cond), _shape_of(result))
    return UNKNOWN if dims is None else TensorType(dims, result.dtype)


def coalesce(ctx, types, attrs) -> Type:
    a, b = types
    if isinstance(a, NullType):
        return b
    return a if a is not UNKNOWN else b


def matmul(ctx, types, attrs) -> Type:
    a, b = types[0], types[1]
    if not isinstance(a, TensorType) or not isinstance(b, TensorType):
        return UNKNOWN
    if a.dtype != b.dtype:
        return ctx.error(f"dtype mismatch: {a} vs {b}", "both operands need the same dtype")
    if a.rank == 0 or b.rank == 0:
        return ctx.error("operands must have at least one dimension", "use mul for scalars")
    ad, bd = list(a.dims), list(b.dims)
    a_vec, b_vec = len(ad) == 1, len(bd) == 1
    if a_vec:
        ad = [Fixed(1)] + ad
    if b_vec:
        bd = bd + [Fixed(1)]
    k1, k2 = ad[-1], bd[-2]
    if isinstance(k1, Fixed) and isinstance(k2, Fixed) and k1 != k2:
        return ctx.error(
            f"inner dimensions differ: {a} @ {b} ({k1} vs {k2})",
            "for x @ w the last dim of x must equal the second-to-last dim of w;"
            " transpose(w) may be what you meant",
        )
    batch = broadcast_dims(ctx, ad[:-2], bd[:-2])
    if batch is None:
        return UNKNOWN
    dims = list(batch)
    if not a_vec:
        dims.append(ad[-2])
    if not b_vec:
        dims.append(bd[-1])
    return TensorType(tuple(dims), a.dtype)


def matmul_add(ctx, types, attrs) -> Type:
    mm = matmul(ctx, types[:2], attrs)
    return broadcast(ctx, [mm, types[2]], attrs) if mm is not UNKNOWN else UNKNOWN


def linear(ctx, types, attrs) -> Type:
    x, w = types[0], types[1]
    if not isinstance(x, TensorType) or not isinstance(w, TensorType):
        return UNKNOWN
    if w.rank != 2:
        return ctx.error(f"weight must be 2-D [out, in], got {w}")
    if x.rank == 0:
        return ctx.error("input must have at least one dimension")
    if x.dtype != w.dtype:
        return ctx.error(f"dtype mismatch: input {x} vs weight {w}")
    k1, k2 = x.dims[-1], w.dims[1]
    if isinstance(k1, Fixed) and isinstance(k2, Fixed) and k1 != k2:
        return ctx.error(
            f"input features {k1} do not match weight {w} (expects [out, in] = [.., {k1}])",
            "linear computes x @ transpose(weight) + bias",
        )
    out = TensorType(x.dims[:-1] + (w.dims[0],), x.dtype)
    if len(types) > 2:
        return broadcast(ctx, [out, types[2]], attrs)
    return out


def _reduce_dims(attrs, rank: int):
    dim = attrs.get("dim")
    if dim is None:
        return list(range(rank))
    dims = dim if isinstance(dim, list) else [dim]
    return [normalize_dim(d, rank) for d in dims]


def reduction(ctx, types, attrs, dtype: str | None = None) -> Type:
    t = types[0]
    if isinstance(t, ScalarType):
        return t
    if not isinstance(t, TensorType):
        return UNKNOWN
    dims = _reduce_dims(attrs, t.rank)
    if any(d is None for d in dims):
        return ctx.error(f"dim {attrs.get('dim')} out of range for rank-{t.rank} tensor {t}")
    keep = attrs.get("keepdim", False)
    out = []
    for i, d in enumerate(t.dims):
        if i in dims:
            if keep:
                out.append(Fixed(1))
        else:
            out.append(d)
    dt = dtype or t.dtype
    if not out and not keep:
        return ScalarType(dt)
    return TensorType(tuple(out), dt)


def arg_reduction(ctx, types, attrs) -> Type:
    return reduction(ctx, types, attrs, "i64")


def softmax(ctx, types, attrs) -> Type:
    t = types[0]
    if isinstance(t, TensorType):
        if normalize_dim(attrs["dim"], t.rank) is None:
            return ctx.error(f"dim {attrs['dim']} out of range for rank-{t.rank} tensor {t}")
        if is_int(t.dtype):
            return ctx.error(f"expects a floating-point tensor, got {t}")
    return t


def norm(ctx, types, attrs) -> Type:
    x = types[0]
    if not isinstance(x, TensorType):
        return x
    for name, w in zip(("weight", "bias"), types[1:3]):
        if isinstance(w, TensorType) and ctx.op in ("layer_norm", "rms_norm"):
            if w.rank > x.rank:
                return ctx.error(f"{name} {w} has more dims than the input {x}")
            tail = x.dims[x.rank - w.rank :]
            for a, b in zip(tail, w.dims):
                if isinstance(a, Fixed) and isinstance(b, Fixed) and a != b:
                    return ctx.error(
                        f"{name} {w} does not match the trailing dims of the input {x}"
                    )
    return x


def embedding(ctx, types, attrs) -> Type:
    idx, table = types[0], types[1]
    if not isinstance(idx, TensorType) or not isinstance(table, TensorType):
        return UNKNOWN
    if not is_int(idx.dtype):
        return ctx.error(
            f"indices must be an integer tensor, got {idx}",
            "arguments are embedding(indices, table)",
        )
    if table.rank != 2:
        return ctx.error(f"table must be 2-D [num_embeddings, dim], got {table}")
    return TensorType(idx.dims + (table.dims[1],), table.dtype)


def attention(ctx, types, attrs) -> Type:
    q = types[0]
    if isinstance(q, TensorType) and q.rank < 2:
        return ctx.error(f"expects [.., seq, embed] input, got {q}")
    heads = attrs.get("n_heads")
    if isinstance(q, TensorType) and isinstance(q.dims[-1], Fixed) and isinstance(heads, int):
        if heads <= 0 or q.dims[-1].value % heads:
            return ctx.error(
                f"embedding dim {q.dims[-1]} is not divisible by n_heads={heads}",
                "choose n_heads dividing the model dimension",
            )
    return q


def _resolve_shape(ctx, src: TensorType, target: list) -> TensorType | Type:
    dims: list[Dim] = []
    infer_at = None
    for i, d in enumerate(target):
        if d == -1:
            if infer_at is not None:
                return ctx.error("only one dimension can be -1")
            infer_at = i
            dims.append(DYNAMIC)
        elif isinstance(d, int):
            if d < 0:
                return ctx.error(f"invalid dimension {d}")
            dims.append(Fixed(d))
        elif isinstance(d, str):
            dims.append(DYNAMIC if d == "?" else Symbolic(d))
        else:
            dims.append(DYNAMIC)
    total = _numel(src.dims)
    known = _numel([d for i, d in enumerate(dims) if i != infer_at])
    if infer_at is not None and total is not None and known:
        if total % known:
            return ctx.error(f"cannot reshape {src} to {fmt_dims(target)}")
        dims[infer_at] = Fixed(total // known)
    elif infer_at is None and total is not None:
        new_total = _numel(dims)
        if new_total is not None and new_total != total:
            return ctx.error(
                f"cannot reshape {src} ({total} elements) to {fmt_dims(target)}"
                f" ({new_total} elements)"
            )
    return TensorType(tuple(dims), src.dtype)


def _numel(dims) -> int | None:
    total = 1
    for d in dims:
        if not isinstance(d, Fixed):
            return None
        total *= d.value
    return total


def reshape(ctx, types, attrs) -> Type:
    t = types[0]
    if not isinstance(t, TensorType):
        return UNKNOWN
    return _resolve_shape(ctx, t, attrs["shape"])


def expand(ctx, types, attrs) -> Type:
    t = types[0]
    if not isinstance(t, TensorType):
        return UNKNOWN
    target = attrs["shape"]
    if len(target) < t.rank:
        return ctx.error(f"cannot expand {t} to fewer dims {fmt_dims(target)}")
    src = (Fixed(1),) * (len(target) - t.rank) + t.dims
    dims: list[Dim] = []
    for have, want in zip(src, target):
        if want == -1:
            dims.append(have)
        elif isinstance(want, int):
            if isinstance(have, Fixed) and have.value not in (1, want):
                return ctx.error(f"cannot expand {t} to {fmt_dims(target)}")
            dims.append(Fixed(want))
        else:
            dims.append(Symbolic(want) if want != "?" else DYNAMIC)
    return TensorType(tuple(dims), t.dtype)


def flatten(ctx, types, attrs) -> Type:
    t = types[0]
    if not isinstance(t, TensorType):
        return UNKNOWN
    if t.rank == 0:
        return TensorType((Fixed(1),), t.dtype)
    s, e = normalize_dim(attrs["start_dim"], t.rank), normalize_dim(attrs["end_dim"], t.rank)
    if s is None or e is None or s > e:
        return ctx.error(f"invalid dims start_dim={attrs['start_dim']} end_dim={attrs['end_dim']}"
                         f" for {t}")
    merged: Dim = Fixed(1)
    for d in t.dims[s : e + 1]:
        merged = dim_binop("*", merged, d)
    return TensorType(t.dims[:s] + (merged,) + t.dims[e + 1 :], t.dtype)


def squeeze(ctx, types, attrs) -> Type:
    t = types[0]
    if not isinstance(t, TensorType):
        return UNKNOWN
    dim = attrs.get("dim")
    if dim is None:
        return TensorType(tuple(d for d in t.dims if d != Fixed(1)), t.dtype)
    d = normalize_dim(dim, t.rank)
    if d is None:
        return ctx.error(f"dim {dim} out of range for {t}")
    if isinstance(t.dims[d], Fixed) and t.dims[d] != Fixed(1):
        return t
    return TensorType(t.dims[:d] + t.dims[d + 1 :], t.dtype)


def unsqueeze(ctx, types, attrs) -> Type:
    t = types[0]
    if not isinstance(t, TensorType):
        return UNKNOWN
    d = normalize_dim(attrs["dim"], t.rank + 1)
    if d is None:
        return ctx.error(f"dim {attrs['dim']} out of range for {t}")
    return TensorType(t.dims[:d] + (Fixed(1),) + t.dims[d:], t.dtype)


def transpose(ctx, types, attrs) -> Type:
    t = types[0]
    if not isinstance(t, TensorType):
        return UNKNOWN
    if t.rank < 2:
        return t
    a, b = normalize_dim(attrs["dim0"], t.rank), normalize_dim(attrs["dim1"], t.rank)
    if a is None or b is None:
        return ctx.error(f"dims ({attrs['dim0']}, {attrs['dim1']}) out of range for {t}")
    dims = list(t.dims)
    dims[a], dims[b] = dims[b], dims[a]
    return TensorType(tuple(dims), t.dtype)


def permute(ctx, types, attrs) -> Type:
    t = types[0]
    if not isinstance(t, TensorType):
        return UNKNOWN
    order = [normalize_dim(d, t.rank) for d in attrs["dims"]]
    if len(order) != t.rank or None in order or sorted(order) != list(range(t.rank)):
        return ctx.error(f"dims {attrs['dims']} are not a permutation of {t.rank} dims of {t}")
    return TensorType(tuple(t.dims[i] for i in order), t.dtype)


def concat(ctx, types, attrs, new_axis: bool = False) -> Type:
    if not all(isinstance(t, TensorType) for t in types):
        return UNKNOWN
    first = types[0]
    rank = first.rank + (1 if new_axis else 0)
    d = normalize_dim(attrs["dim"], rank)
    if d is None:
        return ctx.error(f"dim {attrs['dim']} out of range for {first}")
    for t in types[1:]:
        if t.rank != first.rank:
            return ctx.error(f"all inputs need the same rank: {first} vs {t}")
        if t.dtype != first.dtype:
            return ctx.error(f"dtype mismatch: {first} vs {t}")
        for i, (x, y) in enumerate(zip(first.dims, t.dims)):
            if (new_axis or i != d) and isinstance(x, Fixed) and isinstance(y, Fixed) and x != y:
                return ctx.error(f"shapes differ outside dim {attrs['dim']}: {first} vs {t}")
    if new_axis:
        dims = first.dims[:d] + (Fixed(len(types)),) + first.dims[d:]
        return TensorType(dims, first.dtype)
    total: Dim = Fixed(0)
    for t in types:
        total = dim_binop("+", total, t.dims[d])
    return TensorType(first.dims[:d] + (total,) + first.dims[d + 1 :], first.dtype)


def stack(ctx, types, attrs) -> Type:
    return concat(ctx, types, attrs, new_axis=True)


def split(ctx, types, attrs) -> Type:
    t = types[0]
    chunks = attrs["chunks"]
    if not isinstance(t, TensorType):
        return UNKNOWN
    d = normalize_dim(attrs["dim"], t.rank)
    if d is None:
        return ctx.error(f"dim {attrs['dim']} out of range for {t}")
    if chunks <= 0:
        return ctx.error(f"chunks must be positive, got {chunks}")
    size = t.dims[d]
    if isinstance(size, Fixed) and size.value % chunks:
        return ctx.error(f"dim {d} of size {size.value} is not divisible into {chunks} chunks")
    part = dim_binop("/", size, Fixed(chunks))
    piece = TensorType(t.dims[:d] + (part,) + t.dims[d + 1 :], t.dtype)
    return TupleType((piece,) * chunks)


def index(ctx, types, attrs) -> Type:
    t = types[0]
    i = attrs["index"]
    if isinstance(t, TupleType):
        if not -len(t.items) <= i < len(t.items):
            return ctx.error(f"index {i} out of range for a {len(t.items)}-tuple")
        return t.items[i]
    if isinstance(t, TensorType):
        d = normalize_dim(attrs["dim"], t.rank)
        if d is None:
            return ctx.error(f"cannot index {t} along dim {attrs['dim']}")
        size = t.dims[d]
        if isinstance(size, Fixed) and not -size.value <= i < size.value:
            return ctx.error(f"index {i} out of range for dim {d} of size {size.value}")
        return TensorType(t.dims[:d] + t.dims[d + 1 :], t.dtype)
    return UNKNOWN


def slice_rule(ctx, types, attrs) -> Type:
    t = types[0]
    if not isinstance(t, TensorType):
        return UNKNOWN
    d = normalize_dim(attrs["dim"], t.rank)
    if d is None:
        return ctx.error(f"dim {attrs['dim']} out of range for {t}")
    size = t.dims[d]
    start, end, step = attrs["start"], attrs["end"], attrs["step"]
    if step <= 0:
        return ctx.error(f"step must be positive, got {step}")
    if isinstance(size, Fixed):
        length = len(range(*slice(start, end, step).indices(size.value)))
        new: Dim = Fixed(length)
    elif end is not None and start >= 0 and end >= 0:
        new = Fixed(len(range(start, end, step)))
    else:
        new = DYNAMIC
    return TensorType(t.dims[:d] + (new,) + t.dims[d + 1 :], t.dtype)


def _pair(value, n: int):
    return list(value) if isinstance(value, list) else [value] * n


def _conv_len(size: Dim, k: int, s: int, p: int, dil: int) -> Dim:
    if isinstance(size, Fixed):
        return Fixed((size.value + 2 * p - dil * (k - 1) - 1) // s + 1)
    return DYNAMIC


def conv(ctx, types, attrs, spatial: int) -> Type:
    x, w = types[0], types[1]
    if not isinstance(x, TensorType) or not isinstance(w, TensorType):
        return UNKNOWN
    if x.rank != spatial + 2 or w.rank != spatial + 2:
        return ctx.error(
            f"expects input [N, C, {'L' if spatial == 1 else 'H, W'}] and weight of rank"
            f" {spatial + 2}, got {x} and {w}"
        )
    groups = attrs["groups"]
    cin, wc = x.dims[1], w.dims[1]
    if isinstance(cin, Fixed) and isinstance(wc, Fixed) and cin.value != wc.value * groups:
        return ctx.error(f"input channels {cin} do not match weight {w} with groups={groups}")
    stride, pad = _pair(attrs["stride"], spatial), _pair(attrs["padding"], spatial)
    dil = _pair(attrs["dilation"], spatial)
    dims = [x.dims[0], w.dims[0]]
    for i in range(spatial):
        k = w.dims[2 + i]
        if not isinstance(k, Fixed):
            dims.append(DYNAMIC)
            continue
        dims.append(_conv_len(x.dims[2 + i], k.value, stride[i], pad[i], dil[i]))
    return TensorType(tuple(dims), x.dtype)


def conv1d(ctx, types, attrs) -> Type:
    return conv(ctx, types, attrs, 1)


def conv2d(ctx, types, attrs) -> Type:
    return conv(ctx, types, attrs, 2)


def pool(ctx, types, attrs, spatial: int) -> Type:
    x = types[0]
    if not isinstance(x, TensorType):
        return UNKNOWN
    if x.rank not in (spatial + 1, spatial + 2):
        return ctx.error(f"expects a rank {spatial + 1} or {spatial + 2} input, got {x}")
    k = _pair(attrs["kernel_size"], spatial)
    stride = attrs.get("stride")
    s = _pair(stride if stride is not None else attrs["kernel_size"], spatial)
    p = _pair(attrs["padding"], spatial)
    lead = x.dims[: x.rank - spatial]
    tail = [_conv_len(x.dims[x.rank - spatial + i], k[i], s[i], p[i], 1) for i in range(spatial)]
    return TensorType(tuple(lead) + tuple(tail), x.dtype)


def pool1d(ctx, types, attrs) -> Type:
    return pool(ctx, types, attrs, 1)


def pool2d(ctx, types, attrs) -> Type:
    return pool(ctx, types, attrs, 2)


def adaptive_pool2d(ctx, types, attrs) -> Type:
    x = types[0]
    if not isinstance(x, TensorType):
        return UNKNOWN
    if x.rank not in (3, 4):
        return ctx.error(f"expects a rank 3 or 4 input, got {x}")
    out = _pair(attrs["output_size"], 2)
    return TensorType(x.dims[:-2] + (Fixed(out[0]), Fixed(out[1])), x.dtype)


def loss(ctx, types, attrs) -> Type:
    pred, target = types[0], types[1]
    if not isinstance(pred, TensorType):
        return UNKNOWN
    if ctx.op in ("mse_loss", "l1_loss", "binary_cross_entropy") and isinstance(
        target, TensorType
    ):
        if broadcast_dims(ctx, pred.dims, target.dims) is None:
            return UNKNOWN
    if attrs.get("reduction", "mean") == "none":
        if ctx.op in ("cross_entropy", "nll_loss"):
            return TensorType(pred.dims[:1], pred.dtype) if pred.rank > 1 else ScalarType(
                pred.dtype
            )
        return pred
    return ScalarType(pred.dtype)


def constant(ctx, types, attrs) -> Type:
    return type_of_value(attrs.get("value"))


def type_of_value(value) -> Type:
    if isinstance(value, bool):
        return ScalarType("bool")
    if isinstance(value, int):
        return ScalarType("i64", weak=True)
    if isinstance(value, float):
        return ScalarType("f32", weak=True)
    if isinstance(value, str):
        return StrType()
    if value is None:
        return NullType()
    if isinstance(value, list):
        dims: list[Dim] = []
        level = value
        while isinstance(level, list):
            dims.append(Fixed(len(level)))
            level = level[0] if level else None
        flat = _flatten(value)
        if flat and all(isinstance(v, bool) for v in flat):
            return TensorType(tuple(dims), "bool")
        if flat and all(isinstance(v, int) and not isinstance(v, bool) for v in flat):
            return TensorType(tuple(dims), "i64")
        if flat and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in flat):
            return TensorType(tuple(dims), "f32")
        return ListType(UNKNOWN)
    return UNKNOWN


def _flatten(value) -> list:
    out, stack = [], [value]
    while stack:
        v = stack.pop()
        if isinstance(v, list):
            stack.extend(v)
        else:
            out.append(v)
    return out


def sym_dim(ctx, types, attrs) -> Type:
    return ScalarType("i64")


def _scalar_dim(ctx, i) -> Dim:
    values = ctx.const_values
    if i < len(values) and isinstance(values[i], int):
        return Fixed(values[i])
    if i < len(values) and isinstance(values[i], (Fixed, Symbolic, DimExpr)):
        return values[i]
    return DYNAMIC


def range_rule(ctx, types, attrs) -> Type:
    n = len(types)
    if n == 0:
        return UNKNOWN
    if any(isinstance(t, TensorType) and t.rank > 0 for t in types):
        return ctx.error("arguments must be scalars")
    start = _scalar_dim(ctx, 0) if n >= 2 else Fixed(0)
    end = _scalar_dim(ctx, 1 if n >= 2 else 0)
    step = _scalar_dim(ctx, 2) if n >= 3 else Fixed(1)
    dtype = "i64"
    if any(isinstance(t, ScalarType) and is_float(t.dtype) for t in types):
        dtype = "f32"
    length: Dim = DYNAMIC
    if step == Fixed(1):
        length = dim_binop("-", end, start)
    elif all(isinstance(x, Fixed) for x in (start, end, step)) and step.value != 0:
        length = Fixed(len(range(start.value, end.value, step.value)))
    if isinstance(length, Fixed) and length.value < 0:
        length = Fixed(0)
    return TensorType((length,), dtype)


def cast(ctx, types, attrs) -> Type:
    t = types[0]
    if isinstance(t, TensorType):
        return TensorType(t.dims, attrs["dtype"])
    if isinstance(t, ScalarType):
        return ScalarType(attrs["dtype"])
    return UNKNOWN


def fused(ctx, types, attrs) -> Type:
    """Type of a fused_elementwise node: replay its steps through the ops' own rules."""
    from .ops import OPS, with_defaults

    results: list[Type] = []
    for step in attrs["steps"]:
        op = OPS.get(step[0])
        if op is None:
            return UNKNOWN
        args = []
        for ref in step[1:]:
            if isinstance(ref, str) and ref.startswith("$"):
                args.append(types[int(ref[1:])])
            elif isinstance(ref, str) and ref.startswith("%"):
                args.append(results[int(ref[1:])])
            else:
                args.append(type_of_value(ref))
        sub = RuleContext(op.name, [], lambda msg, hint: None)
        results.append(op.infer(sub, args, with_defaults(op, {})))
    return results[-1] if results else UNKNOWN


def unknown(ctx, types, attrs) -> Type:
    return UNKNOWN


def is_dynamic(dim: Dim) -> bool:
    return isinstance(dim, Dynamic)
