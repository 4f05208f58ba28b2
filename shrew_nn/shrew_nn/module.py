"""The ``Module`` base class: parameter/buffer/submodule registration, traversal,
train/eval, state dicts and device/dtype moves — PyTorch's ``nn.Module`` contract.

Parameters are ordinary shrew tensors that require grad (``requires_grad_()``).
Assigning such a leaf tensor to a module attribute registers it as a parameter;
``register_buffer`` registers non-trainable state (BatchNorm running stats).
Gradients come from ``loss.backward()`` as a GradStore keyed by these tensors.
"""

from __future__ import annotations

from collections import OrderedDict, namedtuple
from collections.abc import Callable, Iterator
from typing import Any

import shrew_core as sc
from shrew_core import Tensor

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class StateDictError(sc.ShrewError, KeyError):
    """A state dict does not fit the module (missing/unexpected key, shape or dtype)."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


def Parameter(data: Tensor, requires_grad: bool = True) -> Tensor:  # noqa: N802 - torch name
    """Turn ``data`` into a parameter: a detached leaf that requires grad.

    Args:
        data: a floating-point tensor.
        requires_grad: ``False`` registers a frozen parameter (still saved and loaded).
    """
    t = data.detach()
    if requires_grad:
        t.requires_grad_()
    return t


class Module:
    """Base class of every layer; subclasses set attributes in ``__init__`` and define
    ``forward``. Calling the module calls ``forward``.

    Examples:
        >>> import shrew_nn as nn
        >>> class MLP(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.fc1, self.fc2 = nn.Linear(4, 8), nn.Linear(8, 2)
        ...     def forward(self, x):
        ...         return self.fc2(self.fc1(x).relu())
        >>> [n for n, _ in MLP().named_parameters()]
        ['fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias']
    """

    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    # ------------------------------------------------------------------ registration
    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"cannot assign {name!r} before Module.__init__() (call super().__init__() first)"
            )
        params, buffers, modules = self._parameters, self._buffers, self._modules
        if isinstance(value, Module):
            self._discard(name)
            modules[name] = value
        elif isinstance(value, Tensor) and (name in params or (value.requires_grad
                                                                 and value.is_leaf)):
            self._discard(name)
            params[name] = value
        elif value is None and name in params:
            params[name] = None
        elif name in buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign {type(value).__name__} as buffer {name!r}")
            buffers[name] = value
        else:
            if name in params or name in modules:
                self._discard(name)
            object.__setattr__(self, name, value)

    def _discard(self, name: str) -> None:
        self.__dict__.pop(name, None)
        self._parameters.pop(name, None)
        self._buffers.pop(name, None)
        self._modules.pop(name, None)

    def __getattr__(self, name: str) -> Any:
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            if store in d and name in d[store]:
                return d[store][name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name: str) -> None:
        if name in self._parameters or name in self._buffers or name in self._modules:
            self._discard(name)
        else:
            object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Tensor | None) -> None:
        """Register ``param`` (a tensor, made a grad-requiring leaf, or None) as ``name``."""
        if "." in name or not name:
            raise KeyError(f"parameter name must be non-empty and contain no '.', got {name!r}")
        if param is not None and not param.requires_grad:
            param = Parameter(param)
        self._discard(name)
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Register non-trainable state; persistent buffers are part of the state dict."""
        if "." in name or not name:
            raise KeyError(f"buffer name must be non-empty and contain no '.', got {name!r}")
        self._discard(name)
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent.discard(name)
        else:
            self._non_persistent.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: {type(module).__name__} is not a Module")
        self._discard(name)
        self._modules[name] = module

    register_module = add_module

    # ------------------------------------------------------------------ traversal
    def named_modules(self, prefix: str = "", memo: set | None = None
                      ) -> Iterator[tuple[str, Module]]:  # fmt: skip
        memo = set() if memo is None else memo
        stack: list[tuple[str, Module]] = [(prefix, self)]
        while stack:  # iterative pre-order, children in registration order
            pre, mod = stack.pop()
            if id(mod) in memo:
                continue
            memo.add(id(mod))
            yield pre, mod
            kids = [(f"{pre}.{n}" if pre else n, m) for n, m in mod._modules.items()
                    if m is not None]  # fmt: skip
            stack.extend(reversed(kids))

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        seen: set[int] = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def children(self) -> Iterator[Module]:
        for _, m in self.named_children():
            yield m

    def _named_members(self, store: str, prefix: str, recurse: bool):
        seen: set[int] = set()
        mods = self.named_modules(prefix) if recurse else [(prefix, self)]
        for pre, mod in mods:
            for name, t in getattr(mod, store).items():
                if t is None or id(t) in seen:
                    continue
                seen.add(id(t))
                yield (f"{pre}.{name}" if pre else name), t

    def named_parameters(self, prefix: str = "", recurse: bool = True
                         ) -> Iterator[tuple[str, Tensor]]:  # fmt: skip
        """``(dotted_name, tensor)`` pairs, e.g. ``("layers.0.weight", w)``; shared tensors once."""
        return self._named_members("_parameters", prefix, recurse)

    def parameters(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True
                      ) -> Iterator[tuple[str, Tensor]]:  # fmt: skip
        return self._named_members("_buffers", prefix, recurse)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel for p in self.parameters() if p.requires_grad or not trainable_only)

    def apply(self, fn: Callable[[Module], None]) -> Module:
        """Call ``fn`` on every submodule (children first) and on self."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # ------------------------------------------------------------------ modes
    def train(self, mode: bool = True) -> Module:
        """Set training mode on this module and every submodule (Dropout, BatchNorm care)."""
        if not isinstance(mode, bool):
            raise TypeError(f"train(mode): mode must be a bool, got {type(mode).__name__}")
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Freeze (False) or unfreeze every parameter in place."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    # ------------------------------------------------------------------ state dicts
    def state_dict(self, prefix: str = "", keep_vars: bool = False) -> OrderedDict:
        """Every parameter and persistent buffer by dotted name (tensors share storage with
        the module; ``keep_vars=False`` returns them detached)."""
        out: OrderedDict = OrderedDict()
        for pre, mod in self.named_modules(prefix.rstrip(".")):
            p = f"{pre}." if pre else ""
            for name, t in mod._parameters.items():
                if t is not None:
                    out[p + name] = t if keep_vars else t.detach()
            for name, t in mod._buffers.items():
                if t is not None and name not in mod._non_persistent:
                    out[p + name] = t if keep_vars else t.detach()
        return out

    def _state_slots(self) -> dict[str, tuple[Module, str, str]]:
        slots = {}
        for pre, mod in self.named_modules():
            p = f"{pre}." if pre else ""
            for name, t in mod._parameters.items():
                if t is not None:
                    slots[p + name] = (mod, name, "_parameters")
            for name, t in mod._buffers.items():
                if t is not None and name not in mod._non_persistent:
                    slots[p + name] = (mod, name, "_buffers")
        return slots

    def load_state_dict(self, state_dict: dict, strict: bool = True) -> IncompatibleKeys:
        """Copy tensors from ``state_dict`` into this module's parameters and buffers in place.

        Values may be shrew tensors or anything ``shrew_core.tensor`` accepts (NumPy arrays).
        Shapes and dtypes must match exactly; with ``strict`` the key sets must too.

        Raises:
            StateDictError: naming every missing/unexpected key, or the key whose shape or
                dtype differs. Nothing is modified when an error is raised.
        """
        slots = self._state_slots()
        missing = [k for k in slots if k not in state_dict]
        unexpected = [k for k in state_dict if k not in slots]
        if strict and (missing or unexpected):
            parts = []
            if missing:
                parts.append("missing keys: " + ", ".join(repr(k) for k in missing))
            if unexpected:
                parts.append("unexpected keys: " + ", ".join(repr(k) for k in unexpected))
            raise StateDictError(
                f"load_state_dict for {type(self).__name__}: " + "; ".join(parts)
            )
        plan = []
        for key, (mod, name, store) in slots.items():
            if key not in state_dict:
                continue
            cur = getattr(mod, store)[name]
            src = state_dict[key]
            if not isinstance(src, Tensor):
                src = sc.tensor(src, device=cur.device)
            if tuple(src.shape) != tuple(cur.shape):
                raise StateDictError(
                    f"load_state_dict: size mismatch for {key!r}: the checkpoint has shape "
                    f"{tuple(src.shape)}, the module expects {tuple(cur.shape)}"
                )
            if src.dtype != cur.dtype:
                raise StateDictError(
                    f"load_state_dict: dtype mismatch for {key!r}: the checkpoint has "
                    f"{src.dtype}, the module expects {cur.dtype} (convert with .to() first)"
                )
            plan.append((cur, src))
        with sc.no_grad():
            for cur, src in plan:
                cur.detach().copy_(src.to(cur.device) if src.device != cur.device else src)
        return IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------------ moves
    def to(self, *args: Any, dtype: Any = None, device: Any = None) -> Module:
        """Move parameters and buffers to a device and/or cast floating ones to a dtype:
        ``m.to("reference")``, ``m.to(sc.f64)``, ``m.to(device, dtype)``.

        Like PyTorch, parameters keep their identity (their ``data`` is replaced in place),
        so an optimizer built before ``to`` still holds the moved parameters.
        """
        for a in args:
            if isinstance(a, (sc.Device, str)) and _is_device(a):
                device = a
            else:
                dtype = a
        dtype = None if dtype is None else sc.as_dtype(dtype)
        if dtype is not None and not dtype.is_float:
            raise sc.DTypeError(f"Module.to: only floating dtypes are allowed, got {dtype}")

        dev = None if device is None else sc.as_device(device)

        def convert(t: Tensor) -> Tensor:
            out = t
            if dev is not None and out.device != dev:
                out = out.detach().to(dev)
            if dtype is not None and out.dtype.is_float and out.dtype is not dtype:
                out = out.detach().to(dtype)
            return out if out is t else out.detach()

        for mod in self.modules():
            for p in mod._parameters.values():
                if p is not None:
                    p.data = convert(p)
            for name, b in list(mod._buffers.items()):
                if b is not None:
                    mod._buffers[name] = convert(b)
        return self

    def float(self) -> Module:
        return self.to(sc.f32)

    def double(self) -> Module:
        return self.to(sc.f64)

    # ------------------------------------------------------------------ repr
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = []
        for name, m in self._modules.items():
            child = repr(m).replace("\n", "\n  ")
            lines.append(f"({name}): {child}")
        extra = self.extra_repr()
        if not lines:
            return f"{type(self).__name__}({extra})"
        body = "\n  ".join(([extra] if extra else []) + lines)
        return f"{type(self).__name__}(\n  {body}\n)"

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers)
                      | set(self._modules))  # fmt: skip


def _is_device(a: Any) -> bool:
    if isinstance(a, sc.Device):
        return True
    try:
        sc.as_dtype(a)
        return False
    except Exception:
        return True
