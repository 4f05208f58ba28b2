"""The optimizer base: parameter groups, per-parameter state, traversal, state dicts.

Every algorithm (SGD, Adam, ...) subclasses :class:`Optimizer` and writes two small
methods: ``_state_buffers`` (which state tensors one parameter needs) and ``_update``
(one call of the backend's fused kernel for one parameter). Everything else — walking
the groups, skipping parameters without a gradient, per-parameter step counts,
contiguity, dtype handling, f32 master weights, ``state_dict`` / ``load_state_dict`` —
lives here, once (the MLX ``init_single`` / ``apply_single`` split).

Parameters are updated **in place**: ``opt.step(grads)`` writes into the storage the
parameter tensors (and every view of them) share. A parameter that is a
non-contiguous view, or a contiguous view with a storage offset, is updated through a
contiguous scratch copy that is written back after the kernel (two extra copies per
step for that parameter; keep parameters contiguous for the fast path).
"""

from __future__ import annotations

import contextlib
import numbers
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

import shrew_core as sc
from shrew_core import DeviceError, DTypeError, GradStore, Layout, ShapeError, Tensor

ParamsT = Iterable[Tensor] | Iterable[dict[str, Any]]

def _is_half(dtype) -> bool:
    return dtype in (sc.f16, sc.bf16)


def _contiguous_storage(t: Tensor):
    """Storage holding ``t``'s elements contiguously from offset 0 (``t``'s own when it can)."""
    if t.layout.offset == 0 and t.layout.is_contiguous():
        return t._storage
    return t._backend.copy(t._storage, t.layout, t.dtype)


def fresh_copy(t: Tensor, dtype=None) -> Tensor:
    """A copy of ``t`` (cast to ``dtype``) in its own contiguous storage, off the graph."""
    return t.detach().to(dtype or t.dtype).clone()


def _copy_value(v: Any) -> Any:
    """A group value as this optimizer keeps it: tensors copied, array-likes (a torch tensor
    lr or beta from a torch state dict) made shrew tensors, tuples (betas) element-wise."""
    if isinstance(v, Tensor):
        return fresh_copy(v)
    if isinstance(v, tuple):
        return tuple(_copy_value(x) for x in v)
    if hasattr(v, "__array__") and not isinstance(v, (numbers.Number, str)):
        return sc.tensor(_as_numpy(v))
    return v


def _as_numpy(v: Any) -> np.ndarray:
    """An array-like (a NumPy array, a torch CPU tensor: its ``.numpy()``) as a NumPy copy."""
    return np.array(v.numpy() if hasattr(v, "numpy") else v)


def _flat_layout(n: int) -> Layout:
    return Layout.contiguous((n,))


def _check_nonneg(name: str, value: float) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= 0.0:
        raise ValueError(f"Invalid {name}: {value}")


def scalar(v: float | Tensor) -> float:
    """A hyperparameter as a Python float (a one-element tensor is read)."""
    return float(v.item()) if isinstance(v, Tensor) else float(v)


def check_lr(lr: float | Tensor) -> None:
    """Raise ``ValueError("Invalid learning rate: ...")`` unless ``lr`` is a number >= 0 or
    a one-element tensor holding one (torch's tensor lr)."""
    if isinstance(lr, Tensor):
        if lr.numel != 1:
            raise ValueError(f"Tensor lr must be 1-element, got shape {lr.shape}")
        lr = scalar(lr)
    _check_nonneg("learning rate", lr)


def set_group_value(group: dict[str, Any], key: str, value: float | Tensor) -> None:
    """Set a group hyperparameter; a tensor already there is filled in place (torch's rule
    for tensor lrs, so whoever holds it sees the change)."""
    if isinstance(group.get(key), Tensor):
        group[key].fill_(scalar(value))
    else:
        group[key] = value


# Group keys torch's optimizers and schedulers add besides the hyperparameters: kept on
# load (so a torch state dict loads, and a scheduler can resume), ignored by the kernels.
TORCH_GROUP_KEYS = frozenset({"foreach", "fused", "capturable", "differentiable", "initial_lr",
                              "max_lr", "min_lr", "max_momentum", "base_momentum",
                              "param_names"})  # fmt: skip


class Optimizer:
    """Base class of all optimizers.

    Args:
        params: an iterable of variable tensors (``requires_grad_()``), or of dicts
            ``{"params": [...], **hyperparameters}`` defining parameter groups whose
            hyperparameters override ``defaults``.
        defaults: the algorithm's default hyperparameters.
        master_weights: for f16/bf16 parameters, keep an f32 master copy and f32 state;
            the kernel updates the master and the result is cast back into the parameter.
            f32/f64 parameters are unaffected.

    Attributes:
        param_groups: list of dicts, each with ``"params"`` and its hyperparameters.
        state: dict from parameter tensor to its state (``"step"`` and buffers).
        batches_updates: whether ``step()`` may let the backend queue the per-parameter
            kernel calls and run them together at the end of the step (see ``_update``).
    """

    batches_updates: bool = False

    def __init__(self, params: ParamsT, defaults: dict[str, Any], *, master_weights: bool = False):
        if isinstance(params, Tensor):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of Tensors or "
                f"dicts, but got {type(params).__name__}"
            )
        self._validate_group(defaults)
        self.defaults = dict(defaults)
        self.master_weights = bool(master_weights)
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[Tensor, dict[str, Any]] = {}
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        built: list[dict[str, Any]] = []
        for g in groups:
            built.append(self._build_group(g, built))
        self.param_groups = built

    # ------------------------------------------------------------------ groups
    def _build_group(self, group: dict[str, Any], existing: list[dict[str, Any]]) -> dict[str, Any]:
        if not isinstance(group, dict):
            raise TypeError(f"param group must be a dict, got {type(group).__name__}")
        if "params" not in group:
            raise ValueError("param group must have a 'params' key")
        ps = group["params"]
        ps = [ps] if isinstance(ps, Tensor) else list(ps)
        if not ps:
            raise ValueError("optimizer got an empty parameter list")
        seen = {id(p) for g in existing for p in g["params"]}
        for i, p in enumerate(ps):
            if not isinstance(p, Tensor):
                raise TypeError(
                    f"optimizer can only optimize Tensors, but parameter {i} is "
                    f"{type(p).__name__}"
                )
            if not p.dtype.is_float:
                raise DTypeError(
                    f"optimizer: parameter {i} of shape {p.shape} has dtype {p.dtype}; "
                    "only floating-point tensors can be optimized"
                )
            if not p.requires_grad:
                raise ValueError(
                    f"optimizer: parameter {i} of shape {p.shape} is not a variable; call "
                    "requires_grad_() (or set_variable()) on it first"
                )
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
            if id(p) in seen:
                raise ValueError("some parameters appear in more than one parameter group")
            seen.add(id(p))
        unknown = set(group) - set(self.defaults) - {"params"} - TORCH_GROUP_KEYS
        if unknown:
            raise ValueError(
                f"{type(self).__name__}: unknown hyperparameter(s) {sorted(unknown)} in "
                f"param group (known: {sorted(self.defaults)})"
            )
        out = {**self.defaults, **{k: v for k, v in group.items() if k != "params"}}
        self._validate_group(out)
        out["params"] = ps
        return out

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Append a parameter group (hyperparameters default to the optimizer's)."""
        self.param_groups.append(self._build_group(param_group, self.param_groups))

    def _validate_group(self, group: dict[str, Any]) -> None:
        """Raise ValueError for invalid hyperparameters (subclasses extend)."""
        if "lr" in group:
            check_lr(group["lr"])

    @property
    def lr(self) -> float:
        """The learning rate of the first group; setting it sets every group's."""
        return self.param_groups[0]["lr"]

    @lr.setter
    def lr(self, value: float) -> None:
        check_lr(value)
        for g in self.param_groups:
            set_group_value(g, "lr", value)

    # the seed's spellings
    def learning_rate(self) -> float:
        return self.lr

    def set_learning_rate(self, value: float) -> None:
        self.lr = value

    def params(self) -> Iterator[Tensor]:
        for g in self.param_groups:
            yield from g["params"]

    def zero_grad(self, set_to_none: bool = True) -> None:
        """No-op: gradients live in the GradStore ``backward()`` returns, not on tensors."""

    # ------------------------------------------------------------------ algorithm hooks
    def _state_buffers(self, group: dict[str, Any]) -> tuple[str, ...]:
        """Names of the per-parameter state tensors (same shape as the parameter)."""
        raise NotImplementedError

    def _update(self, n: int, param, grad, state: dict[str, Any], group: dict[str, Any],
                dtype, backend, fresh: frozenset[str]) -> None:  # fmt: skip
        """Apply one step to one parameter: ONE call of a fused backend kernel.

        When the class sets ``batches_updates`` (the built-in optimizers do), that call may
        be queued by the backend and run when the step ends (``Backend.batched_updates``):
        ``_update`` must not read what the kernel writes. A subclass whose ``_update``
        does more than one kernel call sets ``batches_updates = False``.

        ``param`` and ``grad`` are contiguous storages of ``n`` elements of ``dtype``;
        ``state`` is the parameter's state dict (``"step"`` already incremented; buffer
        tensors are contiguous, so ``state[name]._storage`` is what a kernel takes);
        ``fresh`` names the buffers created (zero-filled) for this step."""
        raise NotImplementedError

    # ------------------------------------------------------------------ stepping
    def _state_dtype(self, p: Tensor):
        return sc.f32 if (self.master_weights and _is_half(p.dtype)) else p.dtype

    def _ensure_state(self, p: Tensor, group: dict[str, Any]) -> tuple[dict, frozenset[str]]:
        fresh = []
        st = self.state.get(p)
        if st is None:
            st = self.state[p] = {"step": 0}
        dt = self._state_dtype(p)
        if dt != p.dtype and "master" not in st:
            st["master"] = fresh_copy(p, dt)
        for name in self._state_buffers(group):
            if st.get(name) is None:
                st[name] = sc.zeros(p.shape, dtype=dt, device=p.device)
                fresh.append(name)
        return st, frozenset(fresh)

    def step(self, grads: GradStore, closure=None):
        """Update every parameter that has a gradient in ``grads``, in place.

        Parameters missing from ``grads`` are skipped (their state and step count do not
        change). Returns ``closure()`` when a closure is given, like torch.
        """
        loss = closure() if closure is not None else None
        work = []
        for group in self.param_groups:
            for p in group["params"]:
                g = grads.get(p)
                if g is not None:
                    self._check_grad(p, g)
                    work.append((p, g, group))
        # Every gradient is checked before anything changes. Parameters updated in place
        # (not through a master copy or a contiguous copy) run inside their backend's
        # batched_updates(): nothing reads them until the context exits.
        direct = []
        for p, g, group in work:
            if self._in_place(p):
                direct.append((p, g, group))
            else:
                self._step_param(p, g, group)
        with contextlib.ExitStack() as stack:
            entered = set()
            for p, g, group in direct:
                if id(p._backend) not in entered:
                    entered.add(id(p._backend))
                    stack.enter_context(p._backend.batched_updates())
                self._step_param(p, g, group)
        return loss

    def _in_place(self, p: Tensor) -> bool:
        """Whether ``p``'s update can be batched: ``_step_param`` hands its own storage to
        ``_update`` and reads nothing back after it."""
        st = self.state.get(p) or {}
        return (self.batches_updates and "master" not in st and self._state_dtype(p) == p.dtype
                and p.layout.offset == 0 and p.layout.is_contiguous())

    def _check_grad(self, p: Tensor, g: Tensor) -> None:
        if not isinstance(g, Tensor):
            raise TypeError(f"{type(self).__name__}.step: gradient is a {type(g).__name__}")
        if g.shape != p.shape:
            raise ShapeError(
                f"{type(self).__name__}.step: gradient of shape {g.shape} for a parameter of "
                f"shape {p.shape}"
            )
        if g._backend is not p._backend and g.device != p.device:
            raise DeviceError(
                f"{type(self).__name__}.step: gradient on {g.device} for a parameter on "
                f"{p.device}"
            )
        if not g.dtype.is_float:
            raise DTypeError(f"{type(self).__name__}.step: gradient has dtype {g.dtype}")

    def _step_param(self, p: Tensor, g: Tensor, group: dict[str, Any]) -> None:
        st, fresh = self._ensure_state(p, group)
        st["step"] += 1
        n = p.numel
        if n == 0:
            return
        b = p._backend
        master = st.get("master")
        work_dtype = master.dtype if master is not None else p.dtype
        if g.dtype != work_dtype:
            g = g.to(work_dtype)
        gs = _contiguous_storage(g)
        if master is not None:
            self._update(n, master._storage, gs, st, group, work_dtype, b, fresh)
            cast = b.cast(master._storage, _flat_layout(n), work_dtype, p.dtype)
            b.copy_into(p._storage, p.layout, cast, Layout.contiguous(p.shape), p.dtype)
            return
        direct = p.layout.offset == 0 and p.layout.is_contiguous()
        ps = p._storage if direct else b.copy(p._storage, p.layout, p.dtype)
        self._update(n, ps, gs, st, group, p.dtype, b, fresh)
        if not direct:
            b.copy_into(p._storage, p.layout, ps, Layout.contiguous(p.shape), p.dtype)

    # ------------------------------------------------------------------ state dicts
    def state_dict(self) -> dict[str, Any]:
        """A snapshot: ``{"optimizer", "state", "param_groups"}`` in torch's layout.

        Parameters are referred to by their index over all groups; state tensors are
        copies (later steps do not change a saved dict). ``load_state_dict`` of this
        dict reproduces the next steps bit for bit.
        """
        index: dict[int, int] = {}
        groups = []
        for g in self.param_groups:
            ids = []
            for p in g["params"]:
                index.setdefault(id(p), len(index))
                ids.append(index[id(p)])
            groups.append({**{k: _copy_value(v) for k, v in g.items() if k != "params"},
                           "params": ids})
        state: dict[int, dict[str, Any]] = {}
        for p in self.params():
            st = self.state.get(p)
            if st is None:
                continue
            state[index[id(p)]] = {
                k: (fresh_copy(v) if isinstance(v, Tensor) else v) for k, v in st.items()
            }
        return {"optimizer": type(self).__name__, "state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a ``state_dict()``. Everything is checked first (optimizer type, group
        and parameter counts, buffer shapes); on any error nothing is modified."""
        name = type(self).__name__
        if not isinstance(state_dict, dict) or "param_groups" not in state_dict or (
            "state" not in state_dict
        ):
            raise ValueError(f"{name}.load_state_dict: expected a dict with 'state' and "
                             "'param_groups' keys")  # fmt: skip
        saved_type = state_dict.get("optimizer", name)
        if saved_type != name:
            raise ValueError(f"Cannot load {saved_type} state into {name} optimizer")
        saved_groups = list(state_dict["param_groups"])
        if len(saved_groups) != len(self.param_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        params: dict[int, Tensor] = {}
        new_groups = []
        for g, sg in zip(self.param_groups, saved_groups):
            ids = list(sg.get("params", ()))
            if len(ids) != len(g["params"]):
                raise ValueError("loaded state dict contains a parameter group that doesn't "
                                 "match the size of optimizer's group")  # fmt: skip
            for i, p in zip(ids, g["params"]):
                params[int(i)] = p
            merged = {**g, **{k: _copy_value(v) for k, v in sg.items() if k != "params"}}
            unknown = set(merged) - set(self.defaults) - {"params"} - TORCH_GROUP_KEYS
            if unknown:
                raise ValueError(f"Cannot load {name} state: unknown hyperparameter(s) "
                                 f"{sorted(unknown)}")  # fmt: skip
            self._validate_group(merged)
            merged["params"] = g["params"]
            new_groups.append(merged)
        new_state: dict[Tensor, dict[str, Any]] = {}
        for key, st in dict(state_dict["state"]).items():
            p = params.get(int(key))
            if p is None:
                raise ValueError(f"Cannot load {name} state: state for parameter index {key} "
                                 "which no parameter group holds")  # fmt: skip
            new_state[p] = self._load_param_state(p, int(key), st)
        self.param_groups = new_groups
        self.state = new_state

    # Whether the algorithm reads the step count (torch's SGD keeps none: a state dict
    # without "step" loads into SGD with a count of 0).
    _uses_step = True

    def _load_param_state(self, p: Tensor, idx: int, st: dict[str, Any]) -> dict[str, Any]:
        """One parameter's saved state as this optimizer's: shrew tensors, NumPy arrays or
        any array-like (a torch CPU tensor) are copied into fresh tensors of the state dtype
        on the parameter's device."""
        name = type(self).__name__
        if not isinstance(st, dict) or ("step" not in st and self._uses_step):
            raise ValueError(f"Cannot load {name} state: parameter {idx} has no 'step'")
        out: dict[str, Any] = {"step": 0}
        dt = self._state_dtype(p)
        for k, v in st.items():
            if k == "step":
                value = float(v.item() if hasattr(v, "item") else v)
                if value < 0 or value != int(value):
                    raise ValueError(f"Cannot load {name} state: parameter {idx} has step {v}")
                out[k] = int(value)
                continue
            if v is None:
                out[k] = None
                continue
            arr_shape = tuple(v.shape) if hasattr(v, "shape") else None
            if arr_shape != tuple(p.shape):
                raise ValueError(
                    f"Cannot load {name} state: buffer {k!r} of parameter {idx} has shape "
                    f"{arr_shape}, but the parameter has shape {tuple(p.shape)}"
                )
            if k == "master" and dt == p.dtype:
                continue  # saved with master_weights=True; this optimizer keeps none
            if not isinstance(v, Tensor):
                if not isinstance(v, np.ndarray) and not hasattr(v, "__array__"):
                    raise TypeError(f"Cannot load {name} state: buffer {k!r} of parameter "
                                    f"{idx} is a {type(v).__name__}")  # fmt: skip
                v = sc.from_numpy(np.ascontiguousarray(_as_numpy(v)), device=p.device)
            out[k] = fresh_copy(v.to(p.device), dt)  # own, contiguous storage
        return out

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(g):
                if k != "params":
                    lines.append(f"    {k}: {g[k]}")
        return "\n".join(lines) + "\n)"

