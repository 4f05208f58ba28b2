"""Compiling one graph, for one input signature, into a :class:`~.tape.Tape`.

The planner works from a *trace*: one run of the interpreter on the real inputs, which
gives every value's shape, dtype and storage (so views are recognised as aliases of the
buffer they look into, whatever op made them). Then:

1. **Fusion groups.** Maximal sets of elementwise nodes (the IR's ``fused_elementwise``
   nodes and plain elementwise ops, attributes included) where every member but the root
   is used only inside the set and is not a graph output, become one
   :class:`~.codegen.Chain`. A GEMM (``matmul``/``linear``/``matmul_add``) whose only
   consumer is a chain, with the chain's result of the GEMM's shape and dtype, becomes the
   chain's prologue: BLAS writes the product into the output buffer and the generated
   kernel adds the bias and applies the activation in place (a matmul + bias + activation
   epilogue). A chain of one op stays an ordinary (exact) instruction.
2. **Instructions** in topological order: fused kernels, GEMMs into a buffer, and every
   other op through the executor's op table (exactly what the interpreter runs).
3. **Lifetimes.** Each value's last use; a buffer lives until the last use of every value
   that views it; graph outputs live to the end.
4. **Slots.** A linear scan hands a freed buffer to the next value of the same byte size
   and dtype that an instruction *writes* (kernel or GEMM), or lets a kernel overwrite a
   full-size input that dies at that instruction. Under autograd, buffers that may be
   saved for backward (inputs of instructions whose result requires grad) are never
   handed on.
"""

from __future__ import annotations

import time
from collections import defaultdict

from shrew_core.tensor import Tensor

from .codegen import GEN_OPS, Chain, Step
from .fused import FusedChain
from .tape import FusedInstr, GemmInstr, GenericInstr, JitStats, Tape, protocol_program

GEMM_OPS = ("matmul", "linear", "matmul_add", "module_linear")
#: Ops whose result is a new buffer of exactly its size, safe to hand to a later value.
FRESH_OPS = frozenset(
    GEN_OPS
    | {
        "matmul",
        "linear",
        "matmul_add",
        "softmax",
        "log_softmax",
        "layer_norm",
        "rms_norm",
        "sum",
        "mean",
        "prod",
        "max",
        "min",
        "var",
        "std",
        "concat",
        "stack",
        "embedding",
        "conv1d",
        "conv2d",
        "max_pool2d",
        "avg_pool2d",
        "adaptive_avg_pool2d",
        "fused_elementwise",
        "cast",
    }  # fmt: skip
)
#: Ops whose generated kernel gives bit-identical results to shrew_core's (one IEEE
#: operation or a selection per element): run alone (no gradient recorded) through a
#: kernel so they can write into a reused buffer; not counted as fused.
EXACT_OPS = frozenset(
    {
        "add",
        "sub",
        "mul",
        "div",
        "neg",
        "abs",
        "relu",
        "maximum",
        "minimum",
        "square",
        "where",
        "eq",
        "ne",
        "lt",
        "gt",
        "le",
        "ge",
        "floor",
        "ceil",
        "round",
        "sign",
    }  # fmt: skip
)
_INF = 1 << 60


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _storages(value) -> list:
    if isinstance(value, Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _storages(v)]
    return []


def _nbytes(t: Tensor) -> int:
    s = t._storage
    return int(getattr(s, "nbytes", t.numel * t.dtype.itemsize))


class _Planner:
    def __init__(self, gname, graph, values, ctx, grad, backend):
        self.gname, self.graph, self.values = gname, graph, values
        self.ctx, self.grad, self.backend = ctx, grad, backend
        self.host = backend.name == "cpu"
        self.topo = graph.topo_order()
        self.pos = {nid: i for i, nid in enumerate(self.topo)}
        self.consumers = graph.consumers()
        self.outputs = {o.node for o in graph.outputs}
        self.interface = set(graph.inputs) | {p.node for p in graph.params}
        self.vid = {nid: i for i, nid in enumerate(self.topo)}

    # ------------------------------------------------------------------ fusion groups
    def candidate(self, nid) -> bool:
        node = self.graph.nodes[nid]
        if node.op not in GEN_OPS and node.op != "fused_elementwise":
            return False
        if node.op == "clamp" and node.attrs.get("min") is None and node.attrs.get("max") is None:
            return False
        v = self.values.get(nid)
        if not isinstance(v, Tensor) or not (v.dtype.is_float or v.dtype.name == "bool"):
            return False
        return all(
            isinstance(self.values.get(i), Tensor) or _is_number(self.values.get(i))
            for i in node.inputs
        )

    def groups(self) -> list[tuple[int, set[int]]]:
        assigned: set[int] = set()
        out = []
        for nid in reversed(self.topo):
            if nid in assigned or nid in self.interface or not self.candidate(nid):
                continue
            members = {nid}
            changed = True
            while changed:
                changed = False
                for m in list(members):
                    for src in self.graph.nodes[m].inputs:
                        if (src in members or src in assigned or src in self.outputs
                                or src in self.interface or not self.candidate(src)):  # fmt: skip
                            continue
                        if all(c in members for c in self.consumers[src]):
                            members.add(src)
                            changed = True
            assigned |= members
            out.append((nid, members))
        return out

    def chain_of(self, members: set[int]) -> tuple[list[Step], list[int]]:
        """The members' steps in evaluation order and the group's external inputs."""
        steps: list[Step] = []
        ext: list[int] = []
        result: dict[int, int] = {}

        def ref(src):
            if src in members:
                return ("step", result[src])
            node = self.graph.nodes[src]
            v = self.values.get(src)
            if node.op == "constant" and _is_number(v):
                return ("const", float(v))
            if src not in ext:
                ext.append(src)
            return ("in", ext.index(src))

        for m in sorted(members, key=self.pos.get):
            node = self.graph.nodes[m]
            if node.op == "fused_elementwise":
                local: list[int] = []
                for op, *args in node.attrs["steps"]:
                    refs = []
                    for a in args:
                        if isinstance(a, str) and a[:1] == "$":
                            refs.append(ref(node.inputs[int(a[1:])]))
                        elif isinstance(a, str) and a[:1] == "%":
                            refs.append(("step", local[int(a[1:])]))
                        else:
                            refs.append(("const", float(a)))
                    steps.append(Step(op, tuple(refs)))
                    local.append(len(steps) - 1)
                result[m] = local[-1]
            else:
                attrs = tuple(sorted(node.attrs.items()))
                steps.append(Step(node.op, tuple(ref(s) for s in node.inputs), attrs))
                result[m] = len(steps) - 1
        return steps, ext

    def gemm_prologue(self, root, members, ext):
        """(gemm nid, operands, bias nid or None) if an external input of the chain is a GEMM
        that can be computed into the chain's output buffer."""
        if not self.host:
            return None
        out = self.values[root]
        for e in ext:
            node = self.graph.nodes[e]
            if node.op not in GEMM_OPS or e in self.outputs or e in self.interface:
                continue
            if not all(c in members for c in self.consumers[e]):
                continue
            mm = self.values.get(e)
            if (not isinstance(mm, Tensor) or mm.shape != out.shape or mm.dtype is not out.dtype
                    or mm.dtype.name not in ("float32", "float64")):  # fmt: skip
                continue
            if self.gemm_operands_ok(node, mm):
                bias = node.inputs[2] if len(node.inputs) > 2 else None
                return e, node.inputs[:2], bias
        return None

    def gemm_operands_ok(self, node, mm) -> bool:
        vals = [self.values.get(i) for i in node.inputs]
        if not all(isinstance(v, Tensor) and v.dtype is mm.dtype for v in vals):
            return False
        a, b = vals[0], vals[1]
        if a.ndim < 2 or b.ndim < 2 or a._backend is not self.backend:
            return False
        if node.op in ("linear", "module_linear") and b.ndim != 2:
            return False
        if len(vals) > 2:
            c = vals[2]
            try:
                c.layout.broadcast_to(mm.shape)
            except Exception:
                return False
        return True

    # ------------------------------------------------------------------ instructions
    def requires_grad(self, nid) -> bool:
        return self.grad and any(t.requires_grad for t in _storages(self.values.get(nid)))

    def names(self, nids) -> tuple[str, ...]:
        return tuple(self.graph.nodes[i].name for i in nids)

    def build(self) -> Tape:
        start = time.perf_counter()
        graph, values = self.graph, self.values
        groups = {root: members for root, members in self.groups()}
        absorbed: set[int] = set()
        for root, members in groups.items():
            absorbed |= members - {root}
        instrs = []
        fused_roots: dict[int, tuple] = {}
        for root, members in groups.items():
            steps, ext = self.chain_of(members)
            pro = self.gemm_prologue(root, members, ext)
            ins = list(ext)
            gemm_op = None
            if pro is not None:
                e, operands, bias = pro
                steps, ext = _prepend_gemm(steps, ext, e, bias)
                gemm_op = graph.nodes[e].op
                ins = list(operands) + ext[1:]
            single = len(steps) == 1 and gemm_op is None
            if single and (
                not self.host or steps[0].op not in EXACT_OPS or self.requires_grad(root)
            ):
                continue  # one op on its own stays an interpreter instruction
            chain = Chain(tuple(steps), len(ext))
            inputs = [values[x] for x in ext]
            out = values[root]
            fc = FusedChain(chain, graph.nodes[root], inputs, out.shape, out.dtype, self.host)
            ok = fc.fused and (fc.kernel.out_kind == "b") == (out.dtype.name == "bool")
            if not ok and gemm_op is not None:
                continue  # the GEMM runs on its own; keep the members as they were
            if not ok and self.host:
                continue
            fused_roots[root] = (fc, ins, gemm_op, not single)
            if pro is not None:
                absorbed.add(pro[0])
        # members of groups that were not fused run one by one
        for root, members in groups.items():
            if root not in fused_roots:
                absorbed -= members
        fused_members = set(fused_roots) | absorbed
        for nid in self.topo:  # numbers baked into fused chains need no instruction
            node = graph.nodes[nid]
            users = self.consumers[nid]
            baked = node.op == "constant" and _is_number(values.get(nid))
            if baked and users and nid not in self.outputs:
                if all(c in fused_members for c in users):
                    absorbed.add(nid)
        loads = []
        for nid in self.topo:
            node = graph.nodes[nid]
            if nid in self.interface:
                kind = "LoadInput" if node.op == "input" else "LoadParam"
                loads.append((f"{kind} {node.name}", self.vid[nid]))
                continue
            if nid in absorbed:
                continue
            if nid in fused_roots:
                instrs.append(self.fused_instr(nid, *fused_roots[nid]))
            elif node.op in GEMM_OPS and self.gemm_alone_ok(nid):
                instrs.append(self.gemm_instr(nid))
            else:
                instrs.append(self.generic_instr(nid))
        tape = self.assign(instrs, loads)
        tape.stats.compile_seconds = time.perf_counter() - start
        return tape

    def base(self, cls, nid, ins, label):
        node = self.graph.nodes[nid]
        return cls(node, [self.vid[i] for i in ins], self.vid[nid], label,
                   in_names=self.names(ins), graph=self.gname)  # fmt: skip

    def generic_instr(self, nid):
        node = self.graph.nodes[nid]
        label = f"{node.op}({', '.join(self.names(node.inputs))})"
        instr = self.base(GenericInstr, nid, node.inputs, label)
        instr.nid = nid
        return instr

    def gemm_alone_ok(self, nid) -> bool:
        mm = self.values.get(nid)
        if not self.host or not isinstance(mm, Tensor) or self.requires_grad(nid):
            return False
        if mm.dtype.name not in ("float32", "float64"):
            return False
        node = self.graph.nodes[nid]
        if not self.gemm_operands_ok(node, mm):
            return False
        if len(node.inputs) > 2:
            c = self.values[node.inputs[2]]
            a, b = self.values[node.inputs[0]], self.values[node.inputs[1]]
            if mm.ndim != max(a.ndim, b.ndim) or c.ndim > mm.ndim:
                return False
        return True

    def gemm_instr(self, nid):
        node = self.graph.nodes[nid]
        label = f"Gemm {node.op}({', '.join(self.names(node.inputs))})"
        instr = self.base(GemmInstr, nid, node.inputs, label)
        mm = self.values[nid]
        instr.kind, instr.shape, instr.dtype = node.op, mm.shape, mm.dtype
        instr.layout = mm.layout.contiguous(mm.shape)
        instr.nid = nid
        return instr

    def fused_instr(self, nid, fc, ins, gemm_op, fused):
        prefix = f"Gemm {gemm_op} + " if gemm_op else ""
        kind = "Fused" if fused else "Kernel"
        instr = self.base(FusedInstr, nid, ins, f"{prefix}{kind}[{fc.chain.text()}]")
        instr.chain, instr.gemm = fc, gemm_op
        if not self.host:
            instr.mode = "compose" if self.requires_grad(nid) else "protocol"
        else:
            instr.mode = "grad" if self.requires_grad(nid) else "kernel"
        instr.fused = fused and (
            instr.mode in ("grad", "kernel")
            or (instr.mode == "protocol" and protocol_program(fc.chain) is not None)
        )
        instr.nid = nid
        return instr

    # ------------------------------------------------------------------ lifetimes and slots
    def assign(self, instrs, loads) -> Tape:
        values = self.values
        ext_ids = {id(t._storage) for nid in self.interface for t in _storages(values.get(nid))}
        owner: dict[int, int] = {}  # id(storage) in the trace -> planned buffer
        p_bytes, p_dtype, p_reusable = [], [], []
        value_bufs: dict[int, set[int]] = {}
        produced: dict[int, int] = {}
        for i, ins in enumerate(instrs):
            produced[ins.out] = i
            v = values.get(ins.nid)
            ts = _storages(v)
            writes = isinstance(ins, GemmInstr) or (
                isinstance(ins, FusedInstr) and ins.mode in ("kernel", "grad")
            )
            fresh = [t for t in ts if id(t._storage) not in owner and id(t._storage) not in ext_ids]
            alias = {owner[id(t._storage)] for t in ts if id(t._storage) in owner}
            bufs = set(alias)
            if writes or fresh:
                b = len(p_bytes)
                nbytes = (ts[0].numel * ts[0].dtype.itemsize if writes
                          else sum(_nbytes(t) for t in fresh))  # fmt: skip
                p_bytes.append(nbytes)
                p_dtype.append(ts[0].dtype.name if ts else None)
                exact = (
                    len(ts) == 1
                    and ts[0].layout.offset == 0
                    and ts[0].is_contiguous()
                    and (_nbytes(ts[0]) == ts[0].numel * ts[0].dtype.itemsize)
                )
                p_reusable.append(writes or (isinstance(ins, GenericInstr) and exact
                                             and ins.node.op in FRESH_OPS))  # fmt: skip
                for t in ts if writes else fresh:
                    owner[id(t._storage)] = b
                bufs.add(b)
                ins.owned = True
                ins.planned = b
            else:
                ins.planned = None
            ins.writes = writes
            value_bufs[ins.out] = bufs
        # last uses
        last: dict[int, int] = {}
        for i, ins in enumerate(instrs):
            for v in ins.ins:
                last[v] = i
        out_vals = {self.vid[o.node] for o in self.graph.outputs}
        buf_last: dict[int, int] = {}
        for v, bufs in value_bufs.items():
            lu = _INF if v in out_vals else last.get(v, produced[v])
            for b in bufs:
                buf_last[b] = max(buf_last.get(b, -1), lu)
        held: set[int] = set()  # buffers an autograd node may keep: never handed on
        if self.grad:
            for ins in instrs:
                if self.requires_grad(ins.nid):  # its inputs, and its output (exp, softmax,
                    for v in [*ins.ins, ins.out]:  # ... save their result)
                        held |= value_bufs.get(v, set())
        # linear scan: planned buffers -> physical slots
        ends: dict[int, list[int]] = defaultdict(list)
        for b, lu in buf_last.items():
            if lu < _INF:
                ends[lu].append(b)
        phys: dict[int, int] = {}
        slot_bytes: list[int] = []
        pool: dict[tuple, list[tuple[int, int]]] = defaultdict(list)  # key -> (slot, end index)
        reused = 0
        taken_ends: set[tuple[int, int]] = set()
        for i, ins in enumerate(instrs):
            b = ins.planned
            consumed = None
            if b is not None:
                key = (p_bytes[b], p_dtype[b])
                slot = None
                if ins.writes:
                    consumed = self.in_place_source(ins, i, key, value_bufs, buf_last, held,
                                                    p_bytes, p_dtype, p_reusable)  # fmt: skip
                    if consumed is not None:
                        slot = phys[consumed]
                    elif pool[key]:
                        slot, end = pool[key].pop()
                        taken_ends.add((slot, end))
                if slot is None:
                    slot = len(slot_bytes)
                    slot_bytes.append(p_bytes[b])
                else:
                    reused += 1
                    ins.reused = True
                phys[b] = slot
                ins.slot, ins.slot_bytes = slot, slot_bytes[slot]
                ins.keep_buffer = isinstance(ins, GenericInstr) and p_reusable[b]
            for e in ends.get(i, ()):
                if e == consumed:
                    continue
                if p_reusable[e] and e not in held:
                    pool[(p_bytes[e], p_dtype[e])].append((phys[e], i))
                else:
                    ins.releases.append(phys[e])
        for entries in pool.values():
            for slot, end in entries:
                if (slot, end) not in taken_ends:
                    instrs[end].releases.append(slot)
        # frees of values
        frees = 0
        for v, i in produced.items():
            if v in out_vals:
                continue
            instrs[last.get(v, i)].frees.append(v)
            frees += 1
        held_slots = {phys[b] for b in held if b in phys}
        stats = JitStats(
            instructions=len(loads) + len(instrs) + frees,
            slots=len(slot_bytes),
            reused_slots=reused,
            frees=frees,
            fused_kernels=sum(1 for ins in instrs if getattr(ins, "fused", False)),
            intermediate_bytes=sum(p_bytes),
            source_nodes=len(self.graph.nodes),
        )
        stats.peak_bytes = _planned_peak(instrs, slot_bytes, held_slots)
        inputs = [self.vid[nid] for nid in self.graph.inputs]
        params = [(self.vid[p.node], p.name) for p in self.graph.params]
        outputs = [(o.name, self.vid[o.node]) for o in self.graph.outputs]
        return Tape(self.gname, self.graph, instrs, inputs, params, outputs, len(self.topo),
                    slot_bytes, stats, self.ctx, self.backend, self.grad, loads)  # fmt: skip

    def in_place_source(self, ins, i, key, value_bufs, buf_last, held, p_bytes, p_dtype,
                        p_reusable):  # fmt: skip
        """A dying full-size input buffer the kernel may overwrite, or None."""
        if not isinstance(ins, FusedInstr) or ins.gemm is not None:
            return None
        fc = ins.chain
        counts: dict[int, int] = defaultdict(int)
        for v in ins.ins:
            for b in value_bufs.get(v, ()):
                counts[b] += 1
        for k in fc.full_inputs():
            v = ins.ins[k]
            bufs = value_bufs.get(v, set())
            if len(bufs) != 1:
                continue
            (b,) = bufs
            if (buf_last.get(b) == i and counts[b] == 1 and b not in held and p_reusable[b]
                    and (p_bytes[b], p_dtype[b]) == key):  # fmt: skip
                return b
        return None


def _planned_peak(instrs, slot_bytes, held_slots) -> int:
    """The high-water mark the plan implies (replaced by the measured one after a run)."""
    live = peak = 0
    alive: set[int] = set()
    for ins in instrs:
        if ins.slot is not None and ins.owned and ins.slot not in alive:
            alive.add(ins.slot)
            live += slot_bytes[ins.slot]
            peak = max(peak, live)
        for s in ins.releases:
            if s in alive and s not in held_slots:
                alive.discard(s)
                live -= slot_bytes[s]
    return peak


def _prepend_gemm(steps, ext, e, bias):
    """Re-index a chain so input 0 is the GEMM product (plus ``bias`` as a first step)."""
    new_ext = [e] + [x for x in ext if x != e]
    if bias is not None and bias not in new_ext:
        new_ext.append(bias)
    index = {old: new_ext.index(x) for old, x in enumerate(ext)}
    shift = 1 if bias is not None else 0

    def fix(a):
        if a[0] == "in":
            if bias is not None and ext[a[1]] == e:
                return ("step", 0)
            return ("in", index[a[1]])
        if a[0] == "step":
            return ("step", a[1] + shift)
        return a

    out = [Step(s.op, tuple(fix(a) for a in s.args), s.attrs) for s in steps]
    if bias is not None:
        out.insert(0, Step("add", (("in", 0), ("in", new_ext.index(bias)))))
    return out, new_ext


def compile_tape(gname, graph, values, ctx, grad, backend) -> Tape:
    """Plan ``graph`` from the values of one traced run (see the module docstring)."""
    return _Planner(gname, graph, values, ctx, grad, backend).build()
