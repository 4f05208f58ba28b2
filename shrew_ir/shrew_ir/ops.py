"""The op table: the one place that says which ops exist.

Each `OpDef` gives the op's canonical name, the names of its inputs (in
order), how many inputs it accepts, its attributes (name -> AttrSpec with type
and default), its shape-inference rule, whether it is elementwise (fusable),
whether it is pure (safe for CSE: not random, no implicit parameters) and the
aliases accepted in source. Lowering, validation, shape inference, the passes
and the README's op reference all read this table.

Attribute types: "int", "float" (an int is accepted), "bool", "str",
"int_list", "int_or_list" (an int or a list of ints), "dims" (a list of ints,
-1 or symbolic names), "any", and "int?"/"float?"/... for optional (None) values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import shape_rules as R

REQUIRED = object()


@dataclass(frozen=True, slots=True)
class AttrSpec:
    type: str
    default: Any = None

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


@dataclass(frozen=True, slots=True)
class OpDef:
    name: str
    inputs: tuple[str, ...]  # input names; a trailing "*" marks a variadic tail
    min_inputs: int
    max_inputs: int  # -1: unbounded
    attrs: dict[str, AttrSpec] = field(default_factory=dict)
    infer: Any = R.unknown
    elementwise: bool = False
    pure: bool = True
    commutative: bool = False
    category: str = ""
    aliases: tuple[str, ...] = ()
    doc: str = ""


OPS: dict[str, OpDef] = {}
ALIASES: dict[str, str] = {}


def _op(name, inputs, min_in=None, max_in=None, attrs=None, **kw) -> None:
    names = tuple(inputs)
    optional = sum(1 for n in names if n.endswith("?"))
    variadic = any(n.endswith("*") for n in names)
    if min_in is None:
        min_in = len(names) - optional - (1 if variadic else 0) + (1 if variadic else 0)
    if max_in is None:
        max_in = -1 if variadic else len(names)
    specs = {k: (v if isinstance(v, AttrSpec) else AttrSpec(*v)) for k, v in (attrs or {}).items()}
    op = OpDef(name, names, min_in, max_in, specs, **kw)
    OPS[name] = op
    for alias in op.aliases:
        ALIASES[alias] = name


# --------------------------------------------------------------------------- elementwise

UNARY = "elementwise unary"
for _name, _rule, _doc in [
    ("neg", R.same_as_first, "-x"),
    ("abs", R.same_as_first, "absolute value"),
    ("relu", R.same_as_first, "max(x, 0)"),
    ("silu", R.unary_float, "x * sigmoid(x)"),
    ("sigmoid", R.unary_float, "1 / (1 + exp(-x))"),
    ("tanh", R.unary_float, "tanh(x)"),
    ("exp", R.unary_float, "e ** x"),
    ("log", R.unary_float, "natural log"),
    ("sqrt", R.unary_float, "square root"),
    ("rsqrt", R.unary_float, "1 / sqrt(x)"),
    ("sin", R.unary_float, "sine"),
    ("cos", R.unary_float, "cosine"),
    ("reciprocal", R.unary_float, "1 / x"),
    ("square", R.same_as_first, "x * x"),
    ("sign", R.same_as_first, "-1, 0 or 1"),
    ("floor", R.same_as_first, "round down"),
    ("ceil", R.same_as_first, "round up"),
    ("round", R.same_as_first, "round half to even"),
    ("not", R.to_bool, "logical not (`!x`)"),
    ("bitnot", R.same_as_first, "bitwise not (`~x`), integer tensors"),
]:
    _op(
        _name,
        ["x"],
        infer=_rule,
        elementwise=True,
        category=UNARY,
        doc=_doc,
        aliases=("swish",) if _name == "silu" else (),
    )
_op("gelu", ["x"], attrs={"approximate": ("str", "none")}, infer=R.same_as_first,
    elementwise=True, category=UNARY, doc='approximate: "none" (erf) or "tanh"')
_op("leaky_relu", ["x"], attrs={"negative_slope": ("float", 0.01)}, infer=R.same_as_first,
    elementwise=True, category=UNARY, doc="x if x > 0 else negative_slope * x")
_op("elu", ["x"], attrs={"alpha": ("float", 1.0)}, infer=R.same_as_first, elementwise=True,
    category=UNARY, doc="x if x > 0 else alpha * (exp(x) - 1)")
_op("softplus", ["x"], attrs={"beta": ("float", 1.0), "threshold": ("float", 20.0)},
    infer=R.unary_float, elementwise=True, category=UNARY, doc="log(1 + exp(beta*x)) / beta")
_op("clamp", ["x"], attrs={"min": ("float?", None), "max": ("float?", None)},
    infer=R.same_as_first, elementwise=True, category=UNARY, doc="clip into [min, max]")
_op("cast", ["x"], attrs={"dtype": ("str", REQUIRED)}, infer=R.cast, category=UNARY,
    doc="convert to dtype (f32, i64, ...)")

BINARY = "elementwise binary (broadcasting)"
for _name, _rule, _comm, _doc, _aliases in [
    ("add", R.broadcast, True, "a + b", ()),
    ("sub", R.broadcast, False, "a - b", ()),
    ("mul", R.broadcast, True, "a * b", ()),
    ("div", R.broadcast, False, "a / b (true division)", ()),
    ("mod", R.broadcast, False, "a % b (sign of the divisor, like Python/PyTorch)", ()),
    ("pow", R.broadcast, False, "a ** b", ()),
    ("maximum", R.broadcast, True, "elementwise max", ()),
    ("minimum", R.broadcast, True, "elementwise min", ()),
    ("eq", R.compare, True, "a == b (bool)", ("equal",)),
    ("ne", R.compare, True, "a != b (bool)", ("not_equal",)),
    ("lt", R.compare, False, "a < b (bool)", ("less",)),
    ("gt", R.compare, False, "a > b (bool)", ("greater",)),
    ("le", R.compare, False, "a <= b (bool)", ("less_equal",)),
    ("ge", R.compare, False, "a >= b (bool)", ("greater_equal",)),
    ("and", R.compare, True, "logical a && b (bool)", ("logical_and",)),
    ("or", R.compare, True, "logical a || b (bool)", ("logical_or",)),
    ("bitand", R.broadcast, True, "a & b (integers)", ()),
    ("bitor", R.broadcast, True, "a | b (integers)", ()),
    ("bitxor", R.broadcast, True, "a ^ b (integers)", ()),
    ("shl", R.broadcast, False, "a << b (integers)", ()),
    ("shr", R.broadcast, False, "a >> b (integers)", ()),
]:
    _op(_name, ["a", "b"], infer=_rule, elementwise=True, commutative=_comm, category=BINARY,
        doc=_doc, aliases=_aliases)
_op("where", ["cond", "a", "b"], infer=R.where, elementwise=True, category=BINARY,
    doc="a where cond else b")
_op("coalesce", ["a", "b"], infer=R.coalesce, category=BINARY,
    doc="`a ?? b`: a unless it is an absent optional input, else b")

# --------------------------------------------------------------------------- linear algebra

LINALG = "linear algebra"
_op("matmul", ["a", "b"], infer=R.matmul, category=LINALG, aliases=("mm",),
    doc="a @ b with NumPy matmul semantics (batch dims broadcast, 1-D promoted)")
_op("linear", ["x", "weight", "bias?"], infer=R.linear, category=LINALG, aliases=("Linear",),
    doc="x @ transpose(weight) + bias; weight is [out, in] (PyTorch layout)")
_op("matmul_add", ["a", "b", "c"], infer=R.matmul_add, category=LINALG,
    doc="a @ b + c (produced by fusion; `addmm` generalised to batches)")

# --------------------------------------------------------------------------- nn

NN = "neural network"
_op("softmax", ["x"], attrs={"dim": ("int", -1)}, infer=R.softmax, category=NN)
_op("log_softmax", ["x"], attrs={"dim": ("int", -1)}, infer=R.softmax, category=NN)
_op("layer_norm", ["x", "weight?", "bias?"], attrs={"eps": ("float", 1e-5)}, infer=R.norm,
    category=NN, aliases=("LayerNorm",), doc="normalises over the trailing dims of weight "
    "(the last dim when weight is absent)")
_op("rms_norm", ["x", "weight?"], attrs={"eps": ("float", 1e-6)}, infer=R.norm, category=NN,
    aliases=("RMSNorm",), doc="x / sqrt(mean(x**2, -1) + eps) * weight")
_op("batch_norm", ["x", "weight?", "bias?", "running_mean?", "running_var?"],
    attrs={"eps": ("float", 1e-5), "momentum": ("float", 0.1)}, infer=R.norm, category=NN,
    aliases=("BatchNorm",), doc="normalises over every dim but 1 (channels)")
_op("dropout", ["x"], attrs={"p": ("float", 0.5)}, infer=R.same_as_first, pure=False,
    category=NN, aliases=("Dropout",), doc="zeroes with probability p in training (random)")
_op("embedding", ["indices", "table"], attrs={"padding_idx": ("int?", None)},
    infer=R.embedding, category=NN, aliases=("Embedding",),
    doc="table[indices]; result shape indices.shape + [table.shape[1]]")
_op("multi_head_attention", ["query", "key?", "value?", "attn_mask?"],
    attrs={"n_heads": ("int", 1), "causal": ("bool", False), "dropout": ("float", 0.0),
           "bias": ("bool", True)},
    infer=R.attention, pure=False, category=NN, aliases=("MultiHeadAttention", "attention"),
    doc="self-attention when key/value are absent; owns its projection weights, "
    "created by the runtime and named after the node")
_op("transformer_block", ["x", "attn_mask?"],
    attrs={"n_heads": ("int", 1), "d_ff": ("int?", None), "causal": ("bool", True),
           "dropout": ("float", 0.0), "eps": ("float", 1e-5)},
    infer=R.attention, pure=False, category=NN, aliases=("TransformerBlock",),
    doc="pre-norm GPT block (LN, causal MHA, residual, LN, MLP d_ff=4*d, residual); owns "
    "its weights, created by the runtime and named after the node")
for _name, _rule in [("conv1d", R.conv1d), ("conv2d", R.conv2d)]:
    _op(_name, ["x", "weight", "bias?"],
        attrs={"stride": ("int_or_list", 1), "padding": ("int_or_list", 0),
               "dilation": ("int_or_list", 1), "groups": ("int", 1)},
        infer=_rule, category=NN, doc="PyTorch layout: x [N, C, ...], weight [O, C/groups, k..]")
for _name, _rule in [("max_pool1d", R.pool1d), ("avg_pool1d", R.pool1d),
                     ("max_pool2d", R.pool2d), ("avg_pool2d", R.pool2d)]:
    _op(_name, ["x"],
        attrs={"kernel_size": ("int_or_list", REQUIRED), "stride": ("int_or_list?", None),
               "padding": ("int_or_list", 0)},
        infer=_rule, category=NN, doc="stride defaults to kernel_size")
_op("adaptive_avg_pool2d", ["x"], attrs={"output_size": ("int_or_list", REQUIRED)},
    infer=R.adaptive_pool2d, category=NN)

# --------------------------------------------------------------------------- shapes

SHAPE = "shape and layout"
_op("reshape", ["x"], attrs={"shape": ("dims", REQUIRED)}, infer=R.reshape, category=SHAPE,
    aliases=("view",), doc="one entry may be -1; names are symbolic dims")
_op("expand", ["x"], attrs={"shape": ("dims", REQUIRED)}, infer=R.expand, category=SHAPE,
    doc="broadcast to shape (-1 keeps a dim)")
_op("flatten", ["x"], attrs={"start_dim": ("int", 0), "end_dim": ("int", -1)},
    infer=R.flatten, category=SHAPE)
_op("squeeze", ["x"], attrs={"dim": ("int?", None)}, infer=R.squeeze, category=SHAPE)
_op("unsqueeze", ["x"], attrs={"dim": ("int", REQUIRED)}, infer=R.unsqueeze, category=SHAPE)
_op("transpose", ["x"], attrs={"dim0": ("int", -2), "dim1": ("int", -1)}, infer=R.transpose,
    category=SHAPE, doc="swap two dims (default: the last two)")
_op("permute", ["x"], attrs={"dims": ("int_list", REQUIRED)}, infer=R.permute, category=SHAPE)
_op("concat", ["xs*"], 1, -1, attrs={"dim": ("int", 0)}, infer=R.concat, category=SHAPE,
    aliases=("cat",))
_op("stack", ["xs*"], 1, -1, attrs={"dim": ("int", 0)}, infer=R.stack, category=SHAPE)
_op("split", ["x"], attrs={"chunks": ("int", REQUIRED), "dim": ("int", 0)}, infer=R.split,
    category=SHAPE, doc="equal chunks; the result is a tuple, select with index")
_op("index", ["x"], attrs={"index": ("int", REQUIRED), "dim": ("int", 0)}, infer=R.index,
    category=SHAPE, doc="`x[i]`: element i of a tuple, or select i along dim of a tensor")
_op("slice", ["x"], attrs={"dim": ("int", 0), "start": ("int", 0), "end": ("int?", None),
                           "step": ("int", 1)},
    infer=R.slice_rule, category=SHAPE, doc="`x[a:b]`: x[start:end:step] along dim")

# --------------------------------------------------------------------------- reductions

REDUCE = "reduction"
for _name, _rule in [("sum", R.reduction), ("mean", R.reduction), ("prod", R.reduction),
                     ("max", R.reduction), ("min", R.reduction), ("argmax", R.arg_reduction),
                     ("argmin", R.arg_reduction)]:
    _op(_name, ["x"], attrs={"dim": ("int_or_list?", None), "keepdim": ("bool", False)},
        infer=_rule, category=REDUCE, doc="dim=None reduces every dim")
for _name in ("var", "std"):
    _op(_name, ["x"], attrs={"dim": ("int_or_list?", None), "keepdim": ("bool", False),
                             "correction": ("int", 1)},
        infer=R.reduction, category=REDUCE, doc="unbiased by default (correction=1)")

# --------------------------------------------------------------------------- losses

LOSS = "loss"
_op("cross_entropy", ["logits", "target"],
    attrs={"reduction": ("str", "mean"), "label_smoothing": ("float", 0.0)}, infer=R.loss,
    category=LOSS, aliases=("cross_entropy_loss",),
    doc="target holds class indices (i64) or probabilities")
_op("nll_loss", ["log_probs", "target"], attrs={"reduction": ("str", "mean")}, infer=R.loss,
    category=LOSS)
_op("mse_loss", ["pred", "target"], attrs={"reduction": ("str", "mean")}, infer=R.loss,
    category=LOSS, aliases=("mse",))
_op("l1_loss", ["pred", "target"], attrs={"reduction": ("str", "mean")}, infer=R.loss,
    category=LOSS, aliases=("mae",))
_op("binary_cross_entropy", ["pred", "target"], attrs={"reduction": ("str", "mean")},
    infer=R.loss, category=LOSS, aliases=("bce",))

# --------------------------------------------------------------------------- structure

STRUCT = "structure (produced by lowering)"
_op("input", [], 0, 0, infer=R.unknown, pure=False, category=STRUCT,
    doc="a graph input; its type is the declared type")
_op("param", [], 0, 0, infer=R.unknown, pure=False, category=STRUCT,
    doc="a learnable parameter; see graph.params for init/frozen")
_op("constant", [], 0, 0, attrs={"value": ("any", None)}, infer=R.constant, category=STRUCT,
    doc="a literal or folded config value (int, float, str, bool, null or nested list)")
_op("dim", [], 0, 0, attrs={"name": ("str", REQUIRED)}, infer=R.sym_dim, category=STRUCT,
    doc="the runtime value of a symbolic dim such as SeqLen (an i64 scalar)")
_op("range", ["start?", "end", "step?"], 1, 3, infer=R.range_rule, category=STRUCT,
    aliases=("arange",), doc="range(end) / range(start, end[, step]) of scalars -> 1-D i64")
_op("identity", ["x"], infer=R.same_as_first, category=STRUCT, doc="returns x")
_op("call", ["args*"], 0, -1, attrs={"graph": ("str", REQUIRED)}, infer=R.unknown,
    pure=False, category=STRUCT, doc="`call G(a, b)`: runs graph G on the arguments "
    "(bound to G's inputs in order); the result is G's first output")
_op("custom", ["args*"], 0, -1, attrs={"name": ("str", REQUIRED), "attrs": ("any", None)},
    infer=R.unknown, pure=False, category=STRUCT,
    doc="a call to an @custom_op; named arguments are kept under attrs")
_op("fused_elementwise", ["args*"], 1, -1,
    attrs={"expr": ("str", REQUIRED), "steps": ("any", REQUIRED)}, infer=R.fused,
    category=STRUCT, doc="produced by fusion: a chain of elementwise ops (see README)")
_op("undefined", [], 0, 0, attrs={"name": ("str", REQUIRED)}, infer=R.unknown, pure=False,
    category=STRUCT, doc="placeholder for an unresolved name; validation reports it")


def lookup(name: str) -> OpDef | None:
    """The OpDef for a canonical name or an alias."""
    op = OPS.get(name)
    if op is not None:
        return op
    canonical = ALIASES.get(name)
    return OPS[canonical] if canonical else None


def canonical_name(name: str) -> str | None:
    if name in OPS:
        return name
    return ALIASES.get(name)


def check_attr(spec: AttrSpec, value: Any) -> bool:
    """Whether `value` is acceptable for an attribute of type `spec.type`."""
    kind = spec.type
    if kind.endswith("?"):
        if value is None:
            return True
        kind = kind[:-1]
    if kind == "any":
        return True
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str)
    if kind == "int_list":
        return isinstance(value, list) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        )
    if kind == "int_or_list":
        if isinstance(value, list):
            return all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "dims":
        return isinstance(value, list) and all(
            (isinstance(v, int) and not isinstance(v, bool)) or isinstance(v, str) for v in value
        )
    return False


def with_defaults(op: OpDef, attrs: dict[str, Any]) -> dict[str, Any]:
    out = {k: spec.default for k, spec in op.attrs.items() if not spec.required}
    out.update(attrs)
    return out


def describe_attr_type(kind: str) -> str:
    base = kind.rstrip("?")
    text = {
        "int_list": "a list of ints",
        "int_or_list": "an int or a list of ints",
        "dims": "a list of dims (ints, -1 or names)",
        "any": "any value",
        "int": "an int",
        "float": "a number",
        "bool": "a bool",
        "str": "a string",
    }[base]
    return text + (" or null" if kind.endswith("?") else "")


LOSS_OPS = frozenset(name for name, op in OPS.items() if op.category == LOSS)


def _default_text(spec: AttrSpec) -> str:
    if spec.required:
        return "required"
    value = spec.default
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def markdown_table() -> str:
    """The README's op reference, generated from OPS (`python -m shrew_ir.ops`)."""
    lines = [
        "| Op | Inputs (in order) | Attributes: type = default | Notes |",
        "|---|---|---|---|",
    ]
    category = None
    for op in OPS.values():
        if op.category != category:
            category = op.category
            lines.append(f"| **{category}** | | | |")
        inputs = ", ".join(op.inputs) if op.inputs else "-"
        attrs = "; ".join(
            f"`{k}`: {spec.type} = {_default_text(spec)}" for k, spec in op.attrs.items()
        )
        notes = op.doc
        if op.aliases:
            notes = (notes + "; " if notes else "") + "aliases: " + ", ".join(op.aliases)
        flags = []
        if op.elementwise:
            flags.append("elementwise")
        if not op.pure:
            flags.append("not CSE'd")
        if flags:
            notes = (notes + " " if notes else "") + f"({', '.join(flags)})"
        notes = notes.replace("|", "\\|")
        lines.append(f"| `{op.name}` | {inputs} | {attrs or '-'} | {notes} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
