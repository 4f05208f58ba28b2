"""Reverse-mode autograd: graph nodes, the backward walk, GradStore, no_grad.

The mental model is micrograd's ``engine.py``: every op whose inputs need a
gradient attaches a ``Node`` to its output, naming the op, its inputs and what
the gradient rule saved. ``backward`` orders the nodes topologically with an
explicit stack (no recursion, so a 10,000-op chain works) and applies the rule
of each op from ``grad_rules.RULES`` — one rule per primitive, in one table.
Gradients of broadcast inputs are summed back to the input's shape here, once,
so rules never deal with broadcasting. Only leaves marked as variables
(``requires_grad_()`` / ``set_variable()``) receive gradients in the GradStore.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from . import autocast as _ac
from .errors import AutogradError, DTypeError, ShapeError, fmt_shape
from .layout import Layout, topo_order

if TYPE_CHECKING:
    from .tensor import Tensor


class _GradMode(threading.local):
    enabled = True


_mode = _GradMode()


def is_grad_enabled() -> bool:
    return _mode.enabled


class _SetGrad:
    """Context manager and decorator that sets whether ops record gradients."""

    def __init__(self, enabled: bool):
        self._enabled = enabled
        self._prev: list[bool] = []

    def __enter__(self):
        self._prev.append(_mode.enabled)
        _mode.enabled = self._enabled
        return self

    def __exit__(self, *exc) -> None:
        _mode.enabled = self._prev.pop()

    def __call__(self, fn):
        import functools

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with _SetGrad(self._enabled):
                return fn(*args, **kwargs)

        return wrapper


def no_grad() -> _SetGrad:
    """``with no_grad():`` — ops inside record no graph (inference, optimizer updates)."""
    return _SetGrad(False)


def enable_grad() -> _SetGrad:
    return _SetGrad(True)


class Node:
    """The record of one differentiable op: which rule, its inputs, and saved values."""

    __slots__ = ("op", "inputs", "needs", "saved")

    def __init__(self, op: str, inputs: tuple, saved: Any, needs: tuple | None = None):
        self.op = op
        self.inputs = inputs
        if needs is None:  # per input: does it require grad (None inputs never do)
            needs = tuple([t is not None and t._requires_grad for t in inputs])
        self.needs = needs
        self.saved = saved

    def __repr__(self) -> str:
        return f"<Node {self.op}>"


def record(op: str, out: Tensor, inputs: tuple, saved: Any = None) -> Tensor:
    """Attach a Node to ``out`` if grad mode is on and any input requires grad."""
    if _mode.enabled:
        if len(inputs) == 2:  # binary ops, the common case: no loop, no comprehension
            a, b = inputs
            na = a is not None and a._requires_grad
            nb = b is not None and b._requires_grad
            if na or nb:
                out._node = Node(op, inputs, saved, (na, nb))
                out._requires_grad = True
            return out
        if len(inputs) == 1:  # unary ops and reductions
            a = inputs[0]
            if a is not None and a._requires_grad:
                out._node = Node(op, inputs, saved, (True,))
                out._requires_grad = True
            return out
        for t in inputs:
            if t is not None and t._requires_grad:
                out._node = Node(op, inputs, saved)
                out._requires_grad = True
                break
    return out


class GradStore:
    """Gradients of the variables reached by one ``backward()`` call, keyed by tensor."""

    def __init__(self) -> None:
        self._grads: dict[int, tuple[Tensor, Tensor]] = {}

    def __getitem__(self, t: Tensor) -> Tensor:
        try:
            return self._grads[id(t)][1]
        except KeyError:
            raise KeyError(
                f"no gradient for tensor of shape {fmt_shape(t.shape)}: it is not a variable "
                "reached by this backward() (call requires_grad_() / set_variable() on it)"
            ) from None

    def get(self, t: Tensor, default=None):
        entry = self._grads.get(id(t))
        return default if entry is None else entry[1]

    grad = get  # the seed's spelling: grads.grad(w)

    def __setitem__(self, t: Tensor, g: Tensor) -> None:
        self._grads[id(t)] = (t, g)

    def __delitem__(self, t: Tensor) -> None:
        del self._grads[id(t)]

    def __contains__(self, t) -> bool:
        return id(t) in self._grads

    def __len__(self) -> int:
        return len(self._grads)

    def __iter__(self) -> Iterator[Tensor]:
        return (t for t, _ in self._grads.values())

    def keys(self):
        return list(self)

    def values(self) -> list[Tensor]:
        return [g for _, g in self._grads.values()]

    def items(self) -> list[tuple[Tensor, Tensor]]:
        return list(self._grads.values())

    def copy(self) -> GradStore:
        out = GradStore()
        out._grads = dict(self._grads)
        return out

    def __repr__(self) -> str:
        shapes = ", ".join(fmt_shape(t.shape) for t in self)
        return f"GradStore({len(self)} tensors: {shapes})"


def _fit(grad: Tensor, like: Tensor, op: str) -> Tensor:
    """Sum a broadcast gradient back to ``like``'s shape and cast it to its dtype."""
    if grad.layout.shape != like.layout.shape:
        grad = grad.sum_to_shape(like.layout.shape)
    if grad.dtype is not like.dtype and grad.dtype != like.dtype:
        grad = grad.to(like.dtype)
    return grad


_rules: dict | None = None  # grad_rules.RULES, bound on the first backward (it imports ops)
_wrap = None  # ops._base.wrap, likewise


class SlabGrad:
    """The ``slice`` rule's gradient, kept lazy: zero except ``g`` on the view ``target``
    of a contiguous tensor of ``shape``. When several slices of one intermediate tensor
    feed the loss (q, k, v = qkv[0], qkv[1], qkv[2]), the walk adds each slab into one
    buffer, touching only the slab, instead of a zero tensor plus a copy per slice and a
    full-size add per extra slice."""

    __slots__ = ("shape", "target", "g")

    def __init__(self, shape: tuple[int, ...], target, g: Tensor) -> None:
        self.shape, self.target, self.g = shape, target, g

    def dense(self) -> Tensor:
        """A new tensor: zeros, ``g`` on the slab."""
        g, b = self.g, self.g._backend
        storage = b.full(self.shape, 0, g.dtype)
        b.copy_into(storage, self.target, g._storage, g.layout, g.dtype)
        return _wrap(storage, self.shape, g.dtype, b)

    def add_into(self, t: Tensor) -> None:
        """``t += self`` in place; ``t`` contiguous, of ``shape``, referenced by nobody else."""
        g, b = self.g, self.g._backend
        summed = b.binary("add", t._storage, self.target, g._storage, g.layout, t.dtype)
        b.copy_into(t._storage, self.target, summed, Layout.contiguous(self.target.shape),
                    t.dtype)  # fmt: skip


def _accumulate_slab(pending: dict, owned: dict, key: int, ig: SlabGrad) -> None:
    """pending[key] += ig. A buffer made here is ``owned`` (no one else holds it) until the
    walk pops it, and takes further slabs in place."""
    prev = pending.get(key)
    if prev is None:
        pending[key] = ig
        return
    if type(prev) is SlabGrad:
        prev = prev.dense()
    elif owned.get(key) is not prev:
        prev = prev.clone()  # someone else may hold it: never written in place
    ig.add_into(prev)
    pending[key] = owned[key] = prev


def backward(
    root: Tensor,
    grad: Tensor | None = None,
    *,
    on_grad_ready: Callable[[Tensor, Tensor], None] | None = None,
) -> GradStore:
    """Reverse-mode gradients of ``root`` for every variable leaf it depends on.

    ``on_grad_ready(leaf, grad)``, if given, is called once per variable leaf as soon as its
    gradient is final — after the last node using it was processed — while the rest of the
    walk continues (DistributedDataParallel starts all-reducing there)."""
    global _rules, _wrap
    rules = _rules
    if rules is None:
        from .grad_rules import RULES
        from .ops._base import wrap

        rules, _wrap = RULES, wrap
        _rules = rules
    if not root._requires_grad:
        raise AutogradError(
            "backward: the tensor does not require grad (no input was a variable; "
            "call requires_grad_() on the leaves you want gradients for)"
        )
    if grad is None:
        if root.numel != 1:
            raise AutogradError(
                f"backward: grad can be implicitly created only for a one-element tensor, "
                f"got shape {fmt_shape(root.shape)}; pass grad=..."
            )
        if not root.dtype.is_float:
            raise DTypeError(f"backward: cannot differentiate a {root.dtype} result")
        b, shape = root._backend, root.layout.shape
        grad = _wrap(b.full(shape, 1, root.dtype), shape, root.dtype, b)
    elif grad.shape != root.shape:
        raise ShapeError(
            f"backward: grad shape {fmt_shape(grad.shape)} != output shape {fmt_shape(root.shape)}"
        )
    store = GradStore()
    if root._node is None:  # the root is itself a variable leaf
        store[root] = grad
        if on_grad_ready is not None:
            on_grad_ready(root, grad)
        return store
    grads = store._grads
    enabled = _mode.enabled
    _mode.enabled = False  # what ``with no_grad()`` does, without its per-call objects
    autocast_dtype, _ac.state.dtype = _ac.state.dtype, None  # backward ops keep forward's dtypes
    try:
        pending: dict[int, Tensor | SlabGrad] = {id(root._node): grad}
        owned: dict[int, Tensor] = {}  # pending sums built by _accumulate_slab
        order = topo_order(root)
        uses = None if on_grad_ready is None else _leaf_uses(order)
        for t in order:
            node = t._node
            g = pending.pop(id(node), None)
            if g is None:
                if uses is not None:
                    _release(node, uses, store, on_grad_ready)
                continue
            if owned:
                owned.pop(id(node), None)
            if type(g) is SlabGrad:
                g = g.dense()
            in_grads = rules[node.op](node, g)
            for inp, need, ig in zip(node.inputs, node.needs, in_grads):
                if not need or ig is None:
                    continue
                if type(ig) is SlabGrad:
                    if inp._node is not None and ig.g.dtype is inp.dtype:
                        _accumulate_slab(pending, owned, id(inp._node), ig)
                        continue
                    ig = ig.dense()
                if ig.layout.shape != inp.layout.shape or ig.dtype is not inp.dtype:
                    ig = _fit(ig, inp, node.op)
                if inp._node is not None:
                    key = id(inp._node)
                    prev = pending.get(key)
                    if prev is None:
                        pending[key] = ig
                        continue
                    if type(prev) is SlabGrad:
                        prev = prev.dense()
                    pending[key] = prev + ig
                    if owned:
                        owned.pop(key, None)
                else:
                    prev = grads.get(id(inp))
                    grads[id(inp)] = (inp, ig if prev is None else prev[1] + ig)
            if uses is not None:
                _release(node, uses, store, on_grad_ready)
    finally:
        _mode.enabled = enabled
        _ac.state.dtype = autocast_dtype
    return store


def _leaf_uses(order: list) -> dict[int, int]:
    """How many node inputs refer to each variable leaf (id) in the graph."""
    uses: dict[int, int] = {}
    for t in order:
        node = t._node
        for inp, need in zip(node.inputs, node.needs):
            if need and inp._node is None:
                uses[id(inp)] = uses.get(id(inp), 0) + 1
    return uses


def _release(node: Node, uses: dict[int, int], store: GradStore, on_grad_ready) -> None:
    """Count ``node``'s uses of leaves as done; report each leaf whose last use this was."""
    for inp, need in zip(node.inputs, node.needs):
        if need and inp._node is None:
            left = uses[id(inp)] - 1
            uses[id(inp)] = left
            if left == 0 and inp in store:
                on_grad_ready(inp, store[inp])


class FunctionCtx:
    """What a custom Function's forward leaves for its backward."""

    def __init__(self) -> None:
        self.saved_tensors: tuple = ()
        self.needs_input_grad: tuple[bool, ...] = ()

    def save_for_backward(self, *tensors) -> None:
        self.saved_tensors = tensors


class Function:
    """A user-defined differentiable op, like ``torch.autograd.Function``::

        class Cube(Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return x * x * x

            @staticmethod
            def backward(ctx, g):
                (x,) = ctx.saved_tensors
                return (3 * x * x * g,)

        y = Cube.apply(x)

    ``forward`` runs without recording a graph; ``backward`` returns one gradient (or
    None) per tensor argument of ``forward``, in order. One output tensor.
    """

    @staticmethod
    def forward(ctx: FunctionCtx, *args, **kwargs):
        raise NotImplementedError("Function subclasses must define forward")

    @staticmethod
    def backward(ctx: FunctionCtx, grad):
        raise NotImplementedError("Function subclasses must define backward")

    @classmethod
    def apply(cls, *args, **kwargs):
        from .tensor import Tensor

        tensors = tuple(a for a in args if isinstance(a, Tensor))
        ctx = FunctionCtx()
        ctx.needs_input_grad = tuple(t._requires_grad for t in tensors)
        with no_grad():
            out = cls.forward(ctx, *args, **kwargs)
        if not isinstance(out, Tensor):
            raise TypeError(
                f"{cls.__name__}.forward must return a Tensor, got {type(out).__name__}"
            )
        if out._node is not None or out._requires_grad:
            out = out.detach()
        return record("custom", out, tensors, (cls, ctx))
