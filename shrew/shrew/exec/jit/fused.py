"""Running a fused elementwise chain: input access classes, the generated kernels
(in place, into a given buffer), their autograd Function, and the composed fallback.

:class:`FusedChain` binds a :class:`~.codegen.Chain` to the layouts the planner saw:
the output's shape is flattened to an ``(R, C)`` iteration space that every input's
broadcast layout coalesces into (``row`` for a bias, ``col``, ``scalar``, ``full``, or a
general ``strided`` pair), so one generated kernel serves each pattern. Inputs whose
layout needs more than two dims are materialised (one contiguous broadcast copy) first.
If a later run hands an input with another layout, the chain falls back to composing
its ops (slower, same result) rather than reading memory the kernel did not plan for.
"""

from __future__ import annotations

import numpy as np

import shrew_core as sc
from shrew_core.layout import Layout
from shrew_core.tensor import Tensor

from ..ops import IMPLS
from .codegen import Chain, Kernel, kernel_for

try:  # the host backend's strided helpers (Layout -> NumPy view, dim coalescing)
    from shrew_cpu.strided import coalesce, view
except ImportError:  # pragma: no cover - shrew_cpu is a dependency of shrew
    coalesce = view = None


class _StepNode:
    """What an op implementation sees as its node when a chain is composed step by step."""

    def __init__(self, op: str, attrs: dict, parent):
        self.op, self.attrs, self.name, self.span = op, attrs, parent.name, parent.span


class FusedChain:
    """A chain over concrete input layouts (planned once per compiled shape set)."""

    def __init__(self, chain: Chain, node, inputs: list, out_shape: tuple, out_dtype,
                 host: bool = True):  # fmt: skip
        self.chain, self.node = chain, node
        self.out_shape = tuple(out_shape)
        self.out_dtype = out_dtype
        self.numel = int(np.prod(self.out_shape, dtype=np.int64))
        self.layout = Layout.contiguous(self.out_shape)
        self.layouts: list = []  # (shape, strides) per tensor input, None for numbers
        self.classes: list[str] = []
        self.materialise: list[bool] = []
        self.rc: list[tuple[int, int]] = []
        self.kernel: Kernel | None = None
        self.R = self.C = 0
        if host:
            self._plan(inputs)

    # ------------------------------------------------------------------ planning
    def _plan(self, inputs) -> None:
        floats = {t.dtype for t in inputs if isinstance(t, Tensor) and t.dtype.is_float}
        if len(floats) != 1 or coalesce is None:
            return
        (fdtype,) = floats
        kinds = []
        for t in inputs:
            if isinstance(t, Tensor):
                if t.dtype is fdtype:
                    kinds.append("F")
                elif t.dtype is sc.bool_:
                    kinds.append("b")
                else:
                    return  # an integer tensor: shrew_core would promote; compose instead
            elif isinstance(t, (int, float)) and not isinstance(t, bool):
                kinds.append("w")
            else:
                return
        out_strides = Layout.contiguous(self.out_shape).strides
        bstrides = []
        for t in inputs:
            if isinstance(t, Tensor):
                self.layouts.append((t.shape, t.layout.strides))
                if t.numel == 1:
                    bstrides.append(None)
                else:
                    bstrides.append(t.layout.broadcast_to(self.out_shape).strides)
            else:
                self.layouts.append(None)
                bstrides.append(None)
        multi = [s for s in bstrides if s is not None]
        cshape, cstrides = coalesce(self.out_shape, out_strides, *multi)
        materialise = len(cshape) > 2
        if materialise:
            cshape, cstrides = [self.numel], [[1]] + [[1] for _ in multi]
        cshape = [1] * (2 - len(cshape)) + list(cshape)
        R, C = cshape
        self.R, self.C = int(R), int(C)
        it = iter(cstrides[1:])
        for t, s in zip(inputs, bstrides):
            if not isinstance(t, Tensor):
                self.classes.append("py")
                self.materialise.append(False)
                self.rc.append((0, 0))
                continue
            if s is None:
                self.classes.append("scalar")
                self.materialise.append(False)
                self.rc.append((0, 0))
                continue
            st = next(it)
            mat = materialise and tuple(s) != tuple(out_strides)
            st = [1] if mat else st
            st = [0] * (2 - len(st)) + list(st)
            rs, cs = st
            if mat:
                cls = "full"
            elif cs == 1 and (rs == self.C or self.R == 1):
                cls = "full"
            elif cs == 1 and rs == 0:
                cls = "row"
            elif cs == 0 and rs == 1 and self.C > 1:
                cls = "col"
            else:
                cls = "strided"
            self.classes.append(cls)
            self.materialise.append(mat)
            self.rc.append((int(rs), int(cs)))
        self.kernel = kernel_for(self.chain, tuple(self.classes), tuple(kinds), fdtype.np_dtype)

    @property
    def fused(self) -> bool:
        return self.kernel is not None

    def full_inputs(self) -> list[int]:
        """Inputs read only at the element being written (safe to overwrite in place)."""
        return [i for i, c in enumerate(self.classes) if c == "full" and not self.materialise[i]]

    # ------------------------------------------------------------------ running
    def args(self, inputs) -> list | None:
        """Kernel arguments for ``inputs``, or None when a layout differs from the plan."""
        out: list = []
        for t, lay, cls, mat, (rs, cs) in zip(
            inputs, self.layouts, self.classes, self.materialise, self.rc
        ):
            if cls == "py":
                if isinstance(t, Tensor):
                    return None
                out += (float(t), 0, 0, 0)
                continue
            if not isinstance(t, Tensor) or t.shape != lay[0] or t.layout.strides != lay[1]:
                return None
            if mat:
                arr = np.ascontiguousarray(np.broadcast_to(view(t._storage, t.layout),
                                                           self.out_shape)).reshape(-1)  # fmt: skip
                out += (arr, 0, 0, 0)
            else:
                out += (t._storage, t.layout.offset, rs, cs)
        return out

    def run_into(self, inputs, buf: np.ndarray) -> bool:
        """Evaluate into ``buf`` (1-D, ``numel`` elements); False if the layouts changed."""
        args = self.args(inputs)
        if args is None:
            return False
        self.kernel.fwd(self.R, self.C, *args, buf)
        return True

    def wrap(self, buf, backend) -> Tensor:
        return Tensor._make(buf, self.layout, self.out_dtype, backend)

    def apply(self, inputs, buf: np.ndarray | None, backend) -> Tensor | None:
        """Forward through the kernel recording an autograd node whose backward is the
        generated backward kernel; None when the layouts changed (compose instead)."""
        args = self.args(inputs)
        if args is None:
            return None
        if buf is None:
            buf = np.empty(self.numel, self.out_dtype.np_dtype)
        return _ChainFunction.apply(self, args, buf, backend, *inputs)

    def compose(self, ctx, inputs):
        """The chain evaluated op by op through the executor's op table (the reference
        semantics; used off the host backend, for unplanned layouts and int/bool chains)."""
        results: list = []
        for step in self.chain.steps:
            args = [
                inputs[a[1]] if a[0] == "in" else results[a[1]] if a[0] == "step" else a[1]
                for a in step.args
            ]
            results.append(IMPLS[step.op](ctx, _StepNode(step.op, dict(step.attrs), self.node),
                                          args))  # fmt: skip
        return results[-1]


class _ChainFunction(sc.Function):
    """Autograd for a generated chain: the backward kernel recomputes the chain per element
    and writes d out / d input for every float input (summed over broadcast rows/columns
    for bias-like inputs; full-size otherwise, which autograd sums to the input's shape)."""

    @staticmethod
    def forward(ctx, fc: FusedChain, args, buf, backend, *inputs):
        fc.kernel.fwd(fc.R, fc.C, *args, buf)
        ctx.fc, ctx.args, ctx.backend, ctx.inputs = fc, args, backend, inputs
        return fc.wrap(buf, backend)

    @staticmethod
    def backward(ctx, g):
        fc, args, backend, inputs = ctx.fc, ctx.args, ctx.backend, ctx.inputs
        gs = np.ascontiguousarray(g.numpy(), dtype=fc.out_dtype.np_dtype).reshape(-1)
        douts, grads = [], {}
        for i in fc.kernel.grad_inputs:
            cls = fc.classes[i]
            if cls in ("full", "strided"):
                d = np.empty(fc.numel, fc.out_dtype.np_dtype)
            else:
                d = np.zeros(fc.C if cls == "row" else fc.R if cls == "col" else 1, np.float64)
            douts.append(d)
            grads[i] = d
        fc.kernel.bwd(fc.R, fc.C, *args, gs, 0, *douts)
        out = []
        for i, t in enumerate(inputs):
            if not isinstance(t, Tensor):
                continue
            d = grads.get(i)
            if d is None or not t.requires_grad:
                out.append(None)
            elif fc.classes[i] in ("full", "strided"):
                out.append(Tensor._make(d, Layout.contiguous(fc.out_shape), fc.out_dtype, backend))
            else:
                d = d.astype(t.dtype.np_dtype)
                out.append(Tensor._make(d, Layout.contiguous(t.shape), t.dtype, backend))
        return tuple(out)
