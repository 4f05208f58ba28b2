"""PyTorch's own OpInfo sample inputs (``op_db``) driven through Shrew, compared with torch.

For every entry of ``opinfo_table.TABLE`` (op_db name -> Shrew callable) and every backend
of the ``device`` fixture, the samples of ``sample_inputs`` and ``reference_inputs`` in
float32, float64 and int64 (where torch supports the dtype) are deduplicated, capped
deterministically, classified by the table's reasons and run: forward values (shape,
dtype, values, NaN positions) and, for float64, the gradients of ``sum(out * w)`` with
respect to every floating-point input. A sample is either

* ``passed`` — it ran and agreed with torch;
* ``documented`` — the table names a deliberate difference (README); it is run and must
  still differ, so a stale reason fails the test;
* ``unsupported`` — the table names what Shrew lacks (a keyword, a dtype); it is not run;
* ``capped`` — left out by the sample cap (``MAX_SAMPLES`` per op and dtype, tensors above
  ``MAX_NUMEL`` elements), chosen by position so every run picks the same samples.

Anything else — an exception, a mismatch, a sample no rule accounts for — fails the test.

``python shrew_core/tests/test_opinfo.py [--device reference] [--readme]`` prints the counts
per op family (``--readme`` rewrites the table in shrew_core/README.md).
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from opinfo_table import (
    GLOBAL_UNSUPPORTED,
    MAX_NUMEL,
    MAX_SAMPLES,
    SHREW_DTYPE,
    TABLE,
    Entry,
    Unconvertible,
    first_rule,
)
from torch.testing._internal.common_methods_invocations import op_db

import shrew_core as sc

DTYPES = {"float32": torch.float32, "float64": torch.float64, "int64": torch.int64}
# Forward tolerances by output dtype, gradient tolerance for float64: (rtol, atol).
TOL = {"float64": (1e-7, 1e-9), "float32": (1e-5, 1e-5), "float16": (1e-3, 1e-3),
       "bfloat16": (1e-2, 1e-2)}  # fmt: skip
GRAD_TOL = (1e-7, 1e-9)

OPINFOS = {(o.name + "." + o.variant_test_name).rstrip("."): o for o in op_db}
# torch warns about its own samples (dof <= 0, even 'same' kernels): not Shrew's business
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


class Mismatch(AssertionError):
    """Shrew ran but its result differs from torch's."""


# --------------------------------------------------------------------------- samples
def _fingerprint(x) -> tuple:
    if isinstance(x, torch.Tensor):
        body = "large"  # dropped by the cap anyway: no need to read the values
        if x.numel() <= MAX_NUMEL:
            arr = x.detach().cpu().clone(memory_format=torch.contiguous_format).reshape(-1)
            if arr.dtype == torch.bfloat16:
                arr = arr.view(torch.int16)
            body = hashlib.sha1(arr.resolve_conj().resolve_neg().numpy().tobytes()).hexdigest()
        return ("T", tuple(x.shape), str(x.dtype), x.stride(), body)
    if isinstance(x, (list, tuple)):
        return (type(x).__name__,) + tuple(_fingerprint(v) for v in x)
    if isinstance(x, dict):
        return tuple((k, _fingerprint(v)) for k, v in sorted(x.items()))
    return (type(x).__name__, repr(x))


def _numel(x) -> int:
    if isinstance(x, torch.Tensor):
        return x.numel()
    if isinstance(x, (list, tuple)):
        return sum(_numel(v) for v in x)
    if isinstance(x, dict):
        return sum(_numel(v) for v in x.values())
    return 0


_SAMPLES: dict = {}  # (op name, dtype) -> (kept samples, number capped): shared by backends


def samples(opinfo, dtype: torch.dtype) -> tuple[list, int]:
    """sample_inputs + reference_inputs (generated with seed 0, deduplicated, in order),
    capped: (kept, number dropped). Tensors above MAX_NUMEL elements are dropped, then at
    most MAX_SAMPLES evenly spaced samples are kept."""
    key = (opinfo.name, opinfo.variant_test_name, dtype)
    if key in _SAMPLES:
        return _SAMPLES[key]
    items, seen = [], set()
    funcs = [opinfo.sample_inputs_func]
    if opinfo.reference_inputs_func is not None:
        funcs.append(opinfo.reference_inputs_func)
    for func in funcs:  # the OpInfo generators, without torch's per-sample tracking
        torch.manual_seed(0)
        for s in func(opinfo, "cpu", dtype, False):
            fp = _fingerprint((s.input, s.args, s.kwargs))
            if fp not in seen:
                seen.add(fp)
                items.append(s)
    small = [s for s in items if _numel((s.input, s.args, s.kwargs)) <= MAX_NUMEL]
    if len(small) > MAX_SAMPLES:
        pick = {round(i * (len(small) - 1) / (MAX_SAMPLES - 1)) for i in range(MAX_SAMPLES)}
        small = [s for i, s in enumerate(small) if i in pick]
    _SAMPLES[key] = small, len(items) - len(small)
    return _SAMPLES[key]


# --------------------------------------------------------------------------- conversion
@dataclass
class Converted:
    torch_args: tuple
    torch_kwargs: dict
    shrew_args: tuple
    shrew_kwargs: dict
    leaves: list  # (torch leaf, shrew leaf) pairs that require grad


def _to_shrew_tensor(t: torch.Tensor, device: str):
    if t.dtype not in SHREW_DTYPE:
        raise Unconvertible(f"dtype {t.dtype} has no Shrew equivalent")
    dt = SHREW_DTYPE[t.dtype]
    src = t.detach().cpu().contiguous()
    if src.dtype == torch.bfloat16:
        return sc.tensor(src.float().numpy(), device=device).to(dt)
    return sc.tensor(src.numpy(), dtype=dt, device=device)


def convert(sample, device: str, grad: bool, entry: Entry) -> Converted:
    leaves: list = []

    def both(x, key=None):
        if isinstance(x, torch.Tensor):
            tt = x.detach().clone()
            st = _to_shrew_tensor(x, device)
            if grad and x.is_floating_point() and key not in entry.no_grad_args:
                tt.requires_grad_()
                st.requires_grad_()
                leaves.append((tt, st))
            return tt, st
        if isinstance(x, complex):
            raise Unconvertible("a complex number")
        if isinstance(x, torch.dtype):
            if x not in SHREW_DTYPE:
                raise Unconvertible(f"dtype {x} has no Shrew equivalent")
            return x, sc.as_dtype(SHREW_DTYPE[x])
        if isinstance(x, torch.device):
            return x, device
        if isinstance(x, torch.Size):
            return x, tuple(x)
        if isinstance(x, (list, tuple)):
            pairs = [both(v) for v in x]
            return type(x)(p[0] for p in pairs), type(x)(p[1] for p in pairs)
        return x, x

    args = [both(sample.input, 0)] + [both(a, i + 1) for i, a in enumerate(sample.args)]
    kwargs = {}
    for k, v in sample.kwargs.items():
        tv, sv = both(v, k)
        if k == "device":
            sv = device
        kwargs[k] = (tv, sv)
    # row-major memory formats are what Shrew always produces: nothing to pass on
    shrew_kwargs = {
        entry.rename.get(k, k): v[1] for k, v in kwargs.items() if k != "memory_format"
    }
    return Converted(
        tuple(a[0] for a in args),
        {k: v[0] for k, v in kwargs.items()},
        tuple(a[1] for a in args),
        shrew_kwargs,
        leaves,
    )


# --------------------------------------------------------------------------- comparison
def _flat(out) -> list:
    if isinstance(out, (list, tuple)):
        return [leaf for o in out for leaf in _flat(o)]
    return [out]


def _np(t) -> np.ndarray:
    if isinstance(t, torch.Tensor):
        t = t.detach()
        if t.dtype in (torch.float16, torch.bfloat16):
            t = t.float()
        return t.numpy()
    arr = np.asarray(t.numpy())
    return arr.astype(np.float32) if t.dtype.is_float and t.dtype.itemsize == 2 else arr


def _torch_dtype_name(t: torch.Tensor) -> str:
    return str(t.dtype).removeprefix("torch.")


def compare(what: str, got, want, tol: float) -> None:
    """Shapes, then dtypes, then values (NaN positions must agree)."""
    if not isinstance(want, torch.Tensor):
        if isinstance(got, sc.Tensor):
            raise Mismatch(f"{what}: Shrew returned a tensor, torch {type(want).__name__}")
        if isinstance(want, float) and np.isnan(want):
            if not (isinstance(got, float) and np.isnan(got)):
                raise Mismatch(f"{what}: {got!r} != torch's nan")
            return
        if got != want and not np.isclose(got, want, rtol=1e-6):
            raise Mismatch(f"{what}: {got!r} != torch's {want!r}")
        return
    if not isinstance(got, sc.Tensor):
        raise Mismatch(f"{what}: Shrew returned {type(got).__name__}, torch a tensor")
    if tuple(got.shape) != tuple(want.shape):
        raise Mismatch(f"{what}: shape {tuple(got.shape)} != torch's {tuple(want.shape)}")
    if got.dtype.name != _torch_dtype_name(want):
        raise Mismatch(f"{what}: dtype {got.dtype.name} != torch's {_torch_dtype_name(want)}")
    a, e = _np(got), _np(want)
    if a.dtype.kind in "biu":
        if not np.array_equal(a, e):
            raise Mismatch(f"{what}: values differ\n got {a}\nwant {e}")
        return
    rtol, atol = TOL.get(got.dtype.name, TOL["float32"])
    try:
        np.testing.assert_allclose(a, e, rtol=rtol * tol, atol=atol * tol, equal_nan=True)
    except AssertionError as err:
        raise Mismatch(f"{what}: {err}") from None


def _compare_tie_indices(sample, entry: Entry, got_idx, want) -> None:
    """Indices of tied values may differ from torch's: they must pick torch's values."""
    values, indices = want[0], want[1]
    if tuple(got_idx.shape) != tuple(indices.shape) or got_idx.dtype.name != "int64":
        raise Mismatch(f"indices: {got_idx.shape} {got_idx.dtype} != torch's {indices.shape}")
    dim, keepdim = entry.tie_indices(sample)
    x = sample.input
    idx = torch.from_numpy(np.array(_np(got_idx)))
    if x.ndim == 0:
        picked = x.reshape(idx.shape)
    else:
        picked = x.gather(dim, idx if keepdim else idx.unsqueeze(dim))
        picked = picked if keepdim else picked.squeeze(dim)
    if not torch.equal(picked, values) and not torch.allclose(picked, values, equal_nan=True):
        raise Mismatch(f"indices do not pick torch's values:\n got {picked}\nwant {values}")


def _run_torch(opinfo, conv: Converted):
    return opinfo(*conv.torch_args, **conv.torch_kwargs)


def run_sample(opinfo, entry: Entry, sample, device: str, dtype: str, rng, grad: bool) -> None:
    """Raise Mismatch (or Shrew's own exception) when Shrew disagrees with torch."""
    want_grad = grad and dtype == "float64" and opinfo.supports_autograd and entry.grad
    conv = convert(sample, device, want_grad, entry)
    try:
        want = _flat(_run_torch(opinfo, conv))
    except Exception as err:  # noqa: BLE001 - a sample torch refuses: Shrew must refuse too
        try:
            entry.fn(*conv.shrew_args, **conv.shrew_kwargs)
        except Exception:  # noqa: BLE001
            return
        raise Mismatch(f"torch raises {type(err).__name__}: {err}; Shrew returns") from None
    got = _flat(entry.fn(*conv.shrew_args, **conv.shrew_kwargs))
    if len(got) != len(want):
        raise Mismatch(f"{len(got)} outputs, torch gives {len(want)}")
    for i, (g, w) in enumerate(zip(got, want)):
        if i == 1 and entry.tie_indices is not None:
            _compare_tie_indices(sample, entry, g, want)
            continue
        compare(f"output {i}", g, w, entry.tol)
    if not want_grad or not conv.leaves:
        return
    picked = [
        i for i, w in enumerate(want)
        if isinstance(w, torch.Tensor) and w.requires_grad and w.is_floating_point()
    ]  # fmt: skip
    if not picked:
        return
    # multiples of 1/128: exact in every float dtype, so no conversion rounds them
    weights = [
        np.asarray(np.round(rng.uniform(-1.0, 1.0, tuple(want[i].shape)) * 128) / 128)
        for i in picked
    ]
    loss_t = sum(
        (want[i] * torch.from_numpy(w).to(want[i].dtype)).sum() for i, w in zip(picked, weights)
    )
    grads_t = torch.autograd.grad(loss_t, [t for t, _ in conv.leaves], allow_unused=True)
    for i in picked:
        if not got[i].requires_grad:
            raise Mismatch(f"output {i} is not differentiable in Shrew (torch's is)")
    loss_s = None
    for i, w in zip(picked, weights):
        term = (got[i] * sc.tensor(w, dtype=got[i].dtype, device=device)).sum()
        loss_s = term if loss_s is None else loss_s + term
    store = loss_s.backward()
    for k, ((_, leaf), gt) in enumerate(zip(conv.leaves, grads_t)):
        gs = store.get(leaf)
        if gt is None and gs is None:
            continue
        if gs is None:
            gs = sc.zeros(*leaf.shape, dtype=leaf.dtype, device=device)
        if gt is None:
            gt = torch.zeros(tuple(leaf.shape), dtype=torch.float64)
        compare(f"gradient of input {k}", gs, gt, entry.grad_tol)


# --------------------------------------------------------------------------- one op
@dataclass
class Outcome:
    status: str  # passed | forward only | documented | unsupported | capped | failed
    reason: str = ""


def run_op(name: str, device: str) -> list[Outcome]:
    entry = TABLE[name]
    opinfo = OPINFOS[name]
    rng = np.random.default_rng(0)
    outcomes: list[Outcome] = []
    supported = opinfo.supported_dtypes("cpu")
    prev_device = sc.get_default_device()
    sc.set_default_device(device)
    try:
        for dtype in entry.dtypes:
            if DTYPES[dtype] not in supported:
                continue
            kept, dropped = samples(opinfo, DTYPES[dtype])
            outcomes += [Outcome("capped", "sample cap")] * dropped
            for i, s in enumerate(kept):
                outcomes.append(_one(opinfo, entry, s, device, dtype, rng, f"{dtype} #{i}"))
    finally:
        sc.set_default_device(prev_device)
    return outcomes


def _one(opinfo, entry, s, device, dtype, rng, label) -> Outcome:
    unsupported = first_rule(GLOBAL_UNSUPPORTED + entry.unsupported, s, dtype)
    if unsupported:
        return Outcome("unsupported", unsupported.reason)
    documented = first_rule(entry.documented, s, dtype)
    forward_only = first_rule(entry.forward_only, s, dtype)
    try:
        run_sample(opinfo, entry, s, device, dtype, rng, grad=forward_only is None)
    except Exception as err:  # noqa: BLE001 - every failure is reported with the sample
        if documented:
            return Outcome("documented", documented.reason)
        return Outcome("failed", f"{label} {_describe(s)}: {type(err).__name__}: {err}")
    if documented and documented.strict:
        return Outcome("failed", f"{label} {_describe(s)}: agrees with torch but is documented "
                       f"as different ({documented.reason!r}); remove the reason")  # fmt: skip
    if forward_only:
        return Outcome("forward only", forward_only.reason)
    return Outcome("passed", documented.reason if documented else "")


def _describe(s) -> str:
    def d(x):
        if isinstance(x, torch.Tensor):
            return f"T{tuple(x.shape)}:{_torch_dtype_name(x)}"
        if isinstance(x, (list, tuple)):
            inner = ", ".join(d(v) for v in x)
            return f"[{inner}]" if isinstance(x, list) else f"({inner})"
        return repr(x)

    kw = ", ".join(f"{k}={d(v)}" for k, v in s.kwargs.items())
    return f"({d(s.input)}{''.join(', ' + d(a) for a in s.args)}{', ' + kw if kw else ''})"


# --------------------------------------------------------------------------- the tests
def test_table_names_exist_in_op_db():
    missing = sorted(set(TABLE) - set(OPINFOS))
    assert not missing, f"opinfo_table names not in torch's op_db: {missing}"


@pytest.mark.parametrize("name", sorted(TABLE))
def test_opinfo_samples(name, device):
    outcomes = run_op(name, device)
    failed = [o.reason for o in outcomes if o.status == "failed"]
    ran = sum(o.status in ("passed", "documented", "forward only") for o in outcomes)
    assert not failed, f"{name} on {device}: {len(failed)} of {len(outcomes)} samples:\n" + (
        "\n".join(failed[:15])
    )
    assert ran, f"{name}: no sample ran ({Counter(o.status for o in outcomes)})"
    entry, used = TABLE[name], {o.reason for o in outcomes}
    stale = [r.reason for r in entry.unsupported + entry.documented + entry.forward_only
             if r.reason not in used]  # fmt: skip
    assert not stale, f"{name}: rules that match no sample (remove them): {stale}"


# --------------------------------------------------------------------------- the report
def report(device: str) -> str:
    by_family: dict[str, Counter] = {}
    ops_per_family: Counter = Counter()
    for name in sorted(TABLE):
        fam = TABLE[name].family
        ops_per_family[fam] += 1
        counts = by_family.setdefault(fam, Counter())
        for o in run_op(name, device):
            counts[o.status] += 1
    lines = [
        "| family | ops | passed | forward only | documented | unsupported | capped | failed |",
        "|---|---|---|---|---|---|---|---|",
    ]
    total: Counter = Counter()
    for fam in sorted(by_family):
        c = by_family[fam]
        total.update(c)
        lines.append(
            f"| {fam} | {ops_per_family[fam]} | {c['passed']} | {c['forward only']} | "
            f"{c['documented']} | "
            f"{c['unsupported']} | {c['capped']} | {c['failed']} |"
        )
    lines.append(
        f"| **all** | {sum(ops_per_family.values())} | {total['passed']} | "
        f"{total['forward only']} | {total['documented']} "
        f"| {total['unsupported']} | {total['capped']} | {total['failed']} |"
    )
    return "\n".join(lines)


def _rewrite_readme(table: str) -> None:
    path = os.path.join(os.path.dirname(__file__), "..", "README.md")
    start, end = "<!-- opinfo-counts:start -->", "<!-- opinfo-counts:end -->"
    with open(path, encoding="utf-8") as f:
        text = f.read()
    head, rest = text.split(start)
    _, tail = rest.split(end)
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"{head}{start}\n{table}\n{end}{tail}")


if __name__ == "__main__":
    dev = sys.argv[sys.argv.index("--device") + 1] if "--device" in sys.argv else "reference"
    text = report(dev)
    print(text)
    if "--readme" in sys.argv:
        _rewrite_readme(text)
