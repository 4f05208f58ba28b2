"""Generated Numba kernels for fused elementwise chains: source, on-disk cache, loading.

A :class:`Chain` is a straight-line program of elementwise steps over the inputs of one
fused instruction (``relu(($0 + $1)) * 2.0``). :func:`kernel_for` turns a chain plus the
*access class* of each input (how the input is indexed over the 2-D ``(R, C)`` iteration
space of the output, see :data:`CLASSES`) and the float dtype into Python source for two
functions,

* ``fwd(R, C, a0, o0, rs0, cs0, ..., out)``: one pass writing ``out[k]`` for every
  element (``out`` may be the buffer of a dying full-size input: element ``k`` is read
  before it is written, so running in place is safe);
* ``bwd(R, C, <inputs>, g, go, d0, d1, ...)``: recomputes the forward steps per element
  and runs reverse mode through them, writing one gradient per float tensor input
  (full-size, or summed over the broadcast dims for row/column/scalar inputs),

writes it to ``<cache dir>/k_<sha256 of the source>.py`` (atomically, once) and imports
it; the functions are ``numba.njit(cache=True)``, so Numba keeps the machine code in
``__pycache__`` beside the file and later processes reuse it. The cache dir is
``$SHREW_CACHE_DIR/jit``, else ``~/.cache/shrew/jit``, else (read-only home) a folder in
the temp dir. Nothing compiles at import: a kernel compiles on its first call.

Chains whose values are not all one float dtype (f32/f64) or bool are rejected
(:func:`kernel_for` returns None) and the caller composes the ops instead.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..._atomic import atomic_write_bytes

CODEGEN_VERSION = 1


def _kernels_stamp() -> str:
    """A short hash of shrew_cpu's kernel modules (see shrew_cpu._cache.package_stamp)."""
    from shrew_cpu._cache import package_stamp

    return package_stamp().hex()[:16]


#: How an input is read at output element (r, c), k = r * C + c.
CLASSES = {
    "full": "a{i}[o{i} + k]",  # contiguous, the output's shape
    "row": "a{i}[o{i} + c]",  # broadcast over rows (a bias)
    "col": "a{i}[o{i} + r]",  # broadcast over columns
    "scalar": None,  # one element, hoisted out of the loops
    "strided": "a{i}[o{i} + r * rs{i} + c * cs{i}]",
    "py": None,  # a Python number passed by value
}


@dataclass(frozen=True)
class Step:
    """One elementwise op; ``args`` are ("in", i), ("step", k) or ("const", number)."""

    op: str
    args: tuple
    attrs: tuple = ()  # sorted (name, value) pairs


@dataclass(frozen=True)
class Chain:
    steps: tuple[Step, ...]
    n_inputs: int

    def text(self) -> str:
        """A readable expression (``relu(($0 + $1))``) for dumps and error messages."""
        texts: list[str] = []
        for s in self.steps:
            parts = [
                f"${a[1]}" if a[0] == "in" else texts[a[1]] if a[0] == "step" else repr(a[1])
                for a in s.args
            ]
            if s.op in _INFIX and len(parts) == 2:
                texts.append(f"({parts[0]} {_INFIX[s.op]} {parts[1]})")
            else:
                extra = [f"{k}={v!r}" for k, v in s.attrs]
                texts.append(f"{s.op}({', '.join(parts + extra)})")
        return texts[-1]


_INFIX = {"add": "+", "sub": "-", "mul": "*", "div": "/", "mod": "%", "pow": "**"}

# ------------------------------------------------------------------ op table
# Forward: f(x..., at) -> expression over local names (at: attrs dict). Backward:
# b(g, y, x..., at) -> one expression (or None) per argument: d out / d arg times g.
_UNARY_FWD = {
    "neg": lambda x, at: f"(-{x})",
    "abs": lambda x, at: f"abs({x})",
    "relu": lambda x, at: f"(_F(0) if {x} < 0 else {x})",
    "silu": lambda x, at: f"({x} / (_F(1) + fexp(-{x})))",
    "sigmoid": lambda x, at: f"(_F(1) / (_F(1) + fexp(-{x})))",
    "tanh": lambda x, at: f"ftanh({x})",
    "exp": lambda x, at: f"fexp({x})",
    "log": lambda x, at: f"np.log({x})",
    "sqrt": lambda x, at: f"np.sqrt({x})",
    "rsqrt": lambda x, at: f"(_F(1) / np.sqrt({x}))",
    "sin": lambda x, at: f"np.sin({x})",
    "cos": lambda x, at: f"np.cos({x})",
    "reciprocal": lambda x, at: f"(_F(1) / {x})",
    "square": lambda x, at: f"({x} * {x})",
    "sign": lambda x, at: f"np.sign({x})",
    "floor": lambda x, at: f"np.floor({x})",
    "ceil": lambda x, at: f"np.ceil({x})",
    "round": lambda x, at: f"np.rint({x})",
    "gelu": lambda x, at: (
        f"(_F(0.5) * {x} * (_F(1) + ftanh(gelu_tanh_arg({x}))))"
        if at.get("approximate", "none") == "tanh"
        else f"(_F(0.5) * {x} * (_F(1) + ferf({x} * _F(0.7071067811865476))))"
    ),
    "leaky_relu": lambda x, at: f"({x} if {x} > 0 else {x} * {_attr(at, 'negative_slope', 0.01)})",
    "elu": lambda x, at: (
        f"({x} if {x} > 0 else {_attr(at, 'alpha', 1.0)} * _F(math.expm1(min({x}, _F(0)))))"
    ),
    "softplus": lambda x, at: _softplus_expr(x, at),
    "clamp": lambda x, at: _clamp_expr(x, at),
}


def _attr(at: dict, name: str, default: float) -> str:
    return f"_F({float(at.get(name, default))!r})"


def _softplus_expr(x, at):
    """``x`` where ``beta x > threshold``, else ``(max(bx, 0) + log1p(exp(-|bx|))) / beta``."""
    beta, thr = _attr(at, "beta", 1.0), _attr(at, "threshold", 20.0)
    bx = f"({x} * {beta})"
    soft = f"((max({bx}, _F(0)) + _F(math.log1p(fexp(-abs({bx}))))) / {beta})"
    return f"({x} if {bx} > {thr} else {soft})"


def _clamp_expr(x, at):
    out = x
    if at.get("min") is not None:
        out = f"fmaximum({out}, _F({float(at['min'])!r}))"
    if at.get("max") is not None:
        out = f"fminimum({out}, _F({float(at['max'])!r}))"
    return out


_SIG = "(_F(1) / (_F(1) + fexp(-{x})))"

_UNARY_BWD = {
    "neg": lambda g, y, x, at: f"(-{g})",
    "abs": lambda g, y, x, at: f"({g} * np.sign({x}))",
    "relu": lambda g, y, x, at: f"({g} if {x} > 0 else _F(0))",
    "silu": lambda g, y, x, at: (
        f"({g} * {_SIG.format(x=x)} * (_F(1) + {x} * (_F(1) - {_SIG.format(x=x)})))"
    ),
    "sigmoid": lambda g, y, x, at: f"({g} * {y} * (_F(1) - {y}))",
    "tanh": lambda g, y, x, at: f"({g} * (_F(1) - {y} * {y}))",
    "exp": lambda g, y, x, at: f"({g} * {y})",
    "log": lambda g, y, x, at: f"({g} / {x})",
    "sqrt": lambda g, y, x, at: f"({g} * _F(0.5) / {y})",
    "rsqrt": lambda g, y, x, at: f"({g} * _F(-0.5) * {y} * {y} * {y})",
    "sin": lambda g, y, x, at: f"({g} * np.cos({x}))",
    "cos": lambda g, y, x, at: f"(-{g} * np.sin({x}))",
    "reciprocal": lambda g, y, x, at: f"(-{g} * {y} * {y})",
    "square": lambda g, y, x, at: f"({g} * _F(2) * {x})",
    "sign": None,
    "floor": None,
    "ceil": None,
    "round": None,
    "gelu": lambda g, y, x, at: (
        f"({g} * _gelu_tanh_grad({x}))"
        if at.get("approximate", "none") == "tanh"
        else f"({g} * _gelu_grad({x}))"
    ),
    "leaky_relu": lambda g, y, x, at: (
        f"({g} if {x} > 0 else {g} * {_attr(at, 'negative_slope', 0.01)})"
    ),
    "elu": lambda g, y, x, at: (
        f"({g} if {x} > 0 else {g} * {_attr(at, 'alpha', 1.0)} * fexp(min({x}, _F(0))))"
    ),
    "softplus": lambda g, y, x, at: (
        f"({g} if {x} * {_attr(at, 'beta', 1.0)} > {_attr(at, 'threshold', 20.0)} else "
        f"{g} * {_SIG.format(x=x + ' * ' + _attr(at, 'beta', 1.0))})"
    ),
    "clamp": lambda g, y, x, at: _clamp_grad(g, x, at),
}


def _clamp_grad(g, x, at):
    conds = []
    if at.get("min") is not None:
        conds.append(f"{x} >= _F({float(at['min'])!r})")
    if at.get("max") is not None:
        conds.append(f"{x} <= _F({float(at['max'])!r})")
    return f"({g} if {' and '.join(conds)} else _F(0))"


_BINARY_FWD = {
    "add": "({a} + {b})",
    "sub": "({a} - {b})",
    "mul": "({a} * {b})",
    "div": "({a} / {b})",
    "mod": "({a} % {b})",
    "pow": "_F({a} ** {b})",
    "maximum": "fmaximum({a}, {b})",
    "minimum": "fminimum({a}, {b})",
}
_BINARY_BWD = {
    "add": ("{g}", "{g}"),
    "sub": ("{g}", "(-{g})"),
    "mul": ("({g} * {b})", "({g} * {a})"),
    "div": ("({g} / {b})", "(-{g} / {b} * {a} / {b})"),
    "mod": ("{g}", "(-{g} * np.floor({a} / {b}))"),
    "pow": (
        "(_F(0) if {b} == 0 else {g} * {b} * _F({a} ** ({b} - _F(1))))",
        "(_F(0) if ({a} == 0 and {b} >= 0) else {g} * {y} * np.log({a}))",
    ),
    "maximum": (
        "({g} * (_F(1) if {a} > {b} else (_F(0.5) if {a} == {b} else _F(0))))",
        "({g} * (_F(0) if {a} > {b} else (_F(0.5) if {a} == {b} else _F(1))))",
    ),
    "minimum": (
        "({g} * (_F(1) if {a} < {b} else (_F(0.5) if {a} == {b} else _F(0))))",
        "({g} * (_F(0) if {a} < {b} else (_F(0.5) if {a} == {b} else _F(1))))",
    ),
}
_COMPARE = {"eq": "==", "ne": "!=", "lt": "<", "gt": ">", "le": "<=", "ge": ">="}
_LOGICAL = {"and", "or", "not"}

#: Every op a generated kernel can evaluate (the IR's elementwise ops but the bitwise ones).
GEN_OPS = (
    frozenset(_UNARY_FWD) | frozenset(_BINARY_FWD) | frozenset(_COMPARE) | _LOGICAL | {"where"}
)


def _infer_types(chain: Chain, in_types: tuple[str, ...]) -> list[str] | None:
    """Per-step value kind: "F" (the chain's float dtype) or "b" (bool); None when the
    chain mixes kinds the way shrew_core would reject or promote ("w" = weak number)."""
    kinds: list[str] = []

    def kind(ref):
        return in_types[ref[1]] if ref[0] == "in" else kinds[ref[1]] if ref[0] == "step" else "w"

    for s in chain.steps:
        ks = [kind(a) for a in s.args]
        if s.op in _UNARY_FWD or s.op in _BINARY_FWD:
            if "b" in ks or (s.op == "clamp" and not dict(s.attrs)):
                return None
            kinds.append("F")
        elif s.op in _COMPARE:
            if "b" in ks and set(ks) != {"b"}:
                return None
            kinds.append("b")
        elif s.op in _LOGICAL:
            kinds.append("b")
        elif s.op == "where":
            if "b" in ks[1:] or ks[1:] == ["w", "w"]:
                return None
            kinds.append("F")
        else:
            return None
    return kinds


# ------------------------------------------------------------------ source generation
@dataclass
class Kernel:
    """A loaded kernel pair; ``grad_inputs`` lists the inputs ``bwd`` differentiates."""

    key: str
    source: str
    fwd: object
    bwd: object
    out_kind: str  # "F" or "b"
    grad_inputs: tuple[int, ...]


def _as_bool(name: str, kind: str) -> str:
    return name if kind == "b" else f"({name} != 0)"


def _forward_lines(chain: Chain, in_kinds, kinds) -> list[str]:
    lines = []
    for k, s in enumerate(chain.steps):
        refs = [
            f"x{a[1]}" if a[0] == "in" else f"t{a[1]}" if a[0] == "step" else f"_F({float(a[1])!r})"
            for a in s.args
        ]
        ref_kinds = [
            in_kinds[a[1]] if a[0] == "in" else kinds[a[1]] if a[0] == "step" else "w"
            for a in s.args
        ]
        at = dict(s.attrs)
        if s.op in _UNARY_FWD:
            expr = _UNARY_FWD[s.op](refs[0], at)
        elif s.op in _BINARY_FWD:
            expr = _BINARY_FWD[s.op].format(a=refs[0], b=refs[1])
        elif s.op in _COMPARE:
            expr = f"({refs[0]} {_COMPARE[s.op]} {refs[1]})"
        elif s.op == "not":
            expr = f"(not {_as_bool(refs[0], ref_kinds[0])})"
        elif s.op in ("and", "or"):
            a, b = (_as_bool(r, kk) for r, kk in zip(refs, ref_kinds))
            expr = f"({a} {s.op} {b})"
        else:  # where
            expr = f"({refs[1]} if {_as_bool(refs[0], ref_kinds[0])} else {refs[2]})"
        lines.append(f"t{k} = {expr}")
    return lines


def _backward_lines(chain: Chain, in_kinds, kinds, grad_inputs) -> list[str]:
    """Reverse-mode adjoint accumulation over the recomputed forward values."""
    n = len(chain.steps)
    lines = [f"gt{k} = _F(0)" for k in range(n - 1)] + [f"gx{i} = _F(0)" for i in grad_inputs]
    lines.append(f"gt{n - 1} = g[go + k]")
    for k in range(n - 1, -1, -1):
        s = chain.steps[k]
        if kinds[k] != "F":
            continue
        refs = [f"x{a[1]}" if a[0] == "in" else f"t{a[1]}" if a[0] == "step" else
                f"_F({float(a[1])!r})" for a in s.args]  # fmt: skip
        g, y, at = f"gt{k}", f"t{k}", dict(s.attrs)
        if s.op in _UNARY_FWD:
            fn = _UNARY_BWD[s.op]
            contribs = [None if fn is None else fn(g, y, refs[0], at)]
        elif s.op in _BINARY_FWD:
            contribs = [c.format(g=g, y=y, a=refs[0], b=refs[1]) for c in _BINARY_BWD[s.op]]
        else:  # where
            c = s.args[0]
            cond_kind = in_kinds[c[1]] if c[0] == "in" else kinds[c[1]] if c[0] == "step" else "w"
            cond = _as_bool(refs[0], cond_kind)
            contribs = [None, f"({g} if {cond} else _F(0))", f"(_F(0) if {cond} else {g})"]
        for arg, contrib in zip(s.args, contribs):
            if contrib is None or arg[0] == "const":
                continue
            if arg[0] == "step" and kinds[arg[1]] == "F":
                lines.append(f"gt{arg[1]} += {contrib}")
            elif arg[0] == "in" and arg[1] in grad_inputs:
                lines.append(f"gx{arg[1]} += {contrib}")
    return lines


_HELPERS = """
@njit(inline="always", error_model="numpy")
def _gelu_grad(x):
    cdf = _F(0.5) * (_F(1) + ferf(x * _F(0.7071067811865476)))
    pdf = fexp(_F(-0.5) * x * x) * _F(0.3989422804014327)
    return cdf + x * pdf


@njit(inline="always", error_model="numpy")
def _gelu_tanh_grad(x):
    k = _F(0.7978845608028654)
    th = ftanh(k * (x + _F(0.044715) * x * x * x))
    return _F(0.5) * (_F(1) + th) + _F(0.5) * x * (_F(1) - th * th) * k * (
        _F(1) + _F(3 * 0.044715) * x * x
    )
"""


def _source(chain: Chain, classes: tuple[str, ...], in_kinds, kinds, np_dtype, grad_inputs):
    n_in = chain.n_inputs
    params = ", ".join(f"a{i}, o{i}, rs{i}, cs{i}" for i in range(n_in))
    loads, hoisted = [], []
    for i, cls in enumerate(classes):
        if cls == "py":
            hoisted.append(f"x{i} = _F(a{i})")
        elif cls == "scalar":
            hoisted.append(f"x{i} = a{i}[o{i}]")
        else:
            loads.append(f"x{i} = " + CLASSES[cls].format(i=i))
    fwd_body = loads + _forward_lines(chain, in_kinds, kinds)

    def block(lines, indent):
        return "\n".join(" " * indent + ln for ln in lines)

    ftype = "np.float32" if np_dtype == np.float32 else "np.float64"
    src = [
        f"# Generated by shrew.exec.jit (codegen v{CODEGEN_VERSION}): {chain.text()}",
        f"# input classes: {', '.join(classes)}; dtype {np.dtype(np_dtype).name}",
        # the kernels inline vmath's functions: their stamp in the source (so in the file
        # name) makes a changed shrew_cpu kernel module give a new file, never stale code
        f"# shrew_cpu kernels {_kernels_stamp()}",
        "import math",
        "",
        "import numpy as np",
        "from numba import njit",
        "",
        "from shrew_cpu.kernels.vmath import fexp, ferf, fmaximum, fminimum, ftanh, gelu_tanh_arg",
        "",
        f"_F = {ftype}",
        _HELPERS,
        "",
        '@njit(cache=True, error_model="numpy", nogil=True)',
        f"def fwd(R, C, {params}, out):",
        block(hoisted, 4),
        "    for r in range(R):",
        "        for c in range(C):",
        "            k = r * C + c",
        block(fwd_body, 12),
        f"            out[k] = t{len(chain.steps) - 1}",
        "",
    ]
    if grad_inputs:
        douts = ", ".join(f"d{i}" for i in grad_inputs)
        stores, finals = [], []
        for i in grad_inputs:
            cls = classes[i]
            if cls in ("full", "strided"):
                stores.append(f"d{i}[k] = gx{i}")
            elif cls == "row":
                stores.append(f"d{i}[c] += gx{i}")
            elif cls == "col":
                stores.append(f"d{i}[r] += gx{i}")
            else:  # scalar
                hoisted_acc = f"s{i} = 0.0"
                if hoisted_acc not in finals:
                    finals.append(hoisted_acc)
                stores.append(f"s{i} += gx{i}")
        tail = [f"d{i}[0] = s{i}" for i in grad_inputs if classes[i] == "scalar"]
        bwd_body = fwd_body + _backward_lines(chain, in_kinds, kinds, grad_inputs) + stores
        src += [
            "",
            '@njit(cache=True, error_model="numpy", nogil=True)',
            f"def bwd(R, C, {params}, g, go, {douts}):",
            block(hoisted + finals, 4),
            "    for r in range(R):",
            "        for c in range(C):",
            "            k = r * C + c",
            block(bwd_body, 12),
            block(tail, 4),
            "",
        ]
    else:
        src += ["", "bwd = None", ""]
    return "\n".join(src) + "\n"


# ------------------------------------------------------------------ cache and loading
_LOADED: dict[str, Kernel] = {}
_LOCK = threading.Lock()


def cache_dir() -> Path:
    """Where generated kernel sources (and Numba's machine code beside them) live."""
    root = os.environ.get("SHREW_CACHE_DIR")
    candidates = [Path(root) / "jit"] if root else []
    candidates.append(Path.home() / ".cache" / "shrew" / "jit")
    candidates.append(Path(tempfile.gettempdir()) / f"shrew-jit-{os.getuid()}")
    for folder in candidates:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            probe = folder / f".probe-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
            return folder
        except OSError:
            continue
    raise OSError(f"no writable folder for JIT kernels among {[str(c) for c in candidates]}")


def kernel_for(
    chain: Chain, classes: tuple[str, ...], in_kinds: tuple[str, ...], np_dtype
) -> Kernel | None:
    """The compiled kernel pair for ``chain`` over inputs of these access classes and kinds
    ("F" float of ``np_dtype``, "b" bool, "w" Python number), or None if the chain cannot
    be generated (mixed dtypes, an unsupported op)."""
    np_dtype = np.dtype(np_dtype)
    if np_dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        return None
    if any(s.op not in GEN_OPS for s in chain.steps):
        return None
    kinds = _infer_types(chain, in_kinds)
    if kinds is None:
        return None
    grad_inputs = tuple(
        i for i, (cls, kd) in enumerate(zip(classes, in_kinds)) if kd == "F" and cls != "py"
    ) if kinds[-1] == "F" else ()  # fmt: skip
    source = _source(chain, classes, in_kinds, kinds, np_dtype, grad_inputs)
    key = hashlib.sha256(source.encode()).hexdigest()[:24]
    with _LOCK:
        kernel = _LOADED.get(key)
        if kernel is None:
            module = _load(key, source)
            kernel = Kernel(key, source, module.fwd, module.bwd, kinds[-1], grad_inputs)
            _LOADED[key] = kernel
    return kernel


def _load(key: str, source: str):
    folder = cache_dir()
    path = folder / f"k_{key}.py"
    data = source.encode()
    if not path.exists() or path.read_bytes() != data:
        atomic_write_bytes(path, data)
    name = f"shrew_jit_kernels.k_{key}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
