"""Symbolic shapes: dims that are fixed, named (``Batch``) or dynamic (``?``), environments
that bind names to sizes from concrete inputs, and guards that check concrete shapes.

Used by the .sw executor: an IR type ``Tensor<[Batch, 784], f32>`` becomes a
SymbolicShape; each input is checked against it with a ShapeGuard, which binds
``Batch`` in the ShapeEnv on first sight and reports a conflict afterwards.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .errors import ShapeError, fmt_shape


@dataclass(frozen=True)
class SymDim:
    """One dim: ``SymDim.fixed(3)``, ``SymDim.symbolic("Batch")`` or ``SymDim.dynamic()``."""

    kind: str  # "fixed" | "symbolic" | "dynamic"
    value: int | None = None
    name: str | None = None

    @classmethod
    def fixed(cls, n: int) -> SymDim:
        if n < 0:
            raise ShapeError(f"SymDim.fixed: negative size {n}")
        return cls("fixed", value=int(n))

    @classmethod
    def symbolic(cls, name: str) -> SymDim:
        return cls("symbolic", name=name)

    @classmethod
    def dynamic(cls) -> SymDim:
        return cls("dynamic")

    @classmethod
    def of(cls, v) -> SymDim:
        """Accept a SymDim, an int, a name, or None / "?" for dynamic."""
        if isinstance(v, SymDim):
            return v
        if v is None or v == "?":
            return cls.dynamic()
        if isinstance(v, int):
            return cls.fixed(v)
        if isinstance(v, str):
            return cls.symbolic(v)
        raise TypeError(f"SymDim.of: cannot make a dim from {v!r}")

    @property
    def is_fixed(self) -> bool:
        return self.kind == "fixed"

    def resolve(self, env: ShapeEnv | None = None) -> int | None:
        if self.kind == "fixed":
            return self.value
        if self.kind == "symbolic" and env is not None:
            return env.get(self.name)
        return None

    def __str__(self) -> str:
        return str(self.value) if self.kind == "fixed" else (self.name or "?")


class SymbolicShape:
    """A sequence of SymDims."""

    def __init__(self, dims: Iterable):
        self.dims = tuple(SymDim.of(d) for d in dims)

    def __len__(self) -> int:
        return len(self.dims)

    def __iter__(self):
        return iter(self.dims)

    def __eq__(self, other) -> bool:
        return isinstance(other, SymbolicShape) and self.dims == other.dims

    def __hash__(self) -> int:
        return hash(self.dims)

    def __repr__(self) -> str:
        return "[" + ", ".join(str(d) for d in self.dims) + "]"

    @property
    def is_concrete(self) -> bool:
        return all(d.is_fixed for d in self.dims)

    def resolve(self, env: ShapeEnv | None = None) -> tuple[int, ...]:
        """The concrete shape; ShapeError naming the first dim that cannot be resolved."""
        out = []
        for i, d in enumerate(self.dims):
            v = d.resolve(env)
            if v is None:
                what = f"symbolic dim {d.name!r}" if d.kind == "symbolic" else "a dynamic dim"
                raise ShapeError(f"cannot resolve {what} at position {i} of shape {self!r}")
            out.append(v)
        return tuple(out)

    def unify(self, other: SymbolicShape) -> SymbolicShape:
        """The most specific shape compatible with both (fixed beats named beats dynamic)."""
        if len(self) != len(other):
            raise ShapeError(f"cannot unify shapes {self!r} and {other!r}: ranks differ")
        out = []
        for i, (a, b) in enumerate(zip(self.dims, other.dims)):
            out.append(_unify_dim(a, b, i, self, other))
        return SymbolicShape(out)

    def broadcast(self, other: SymbolicShape) -> SymbolicShape:
        """NumPy broadcasting over symbolic dims (a named dim broadcasts with 1 and itself)."""
        n = max(len(self), len(other))
        a = (SymDim.fixed(1),) * (n - len(self)) + self.dims
        b = (SymDim.fixed(1),) * (n - len(other)) + other.dims
        out = []
        for i, (x, y) in enumerate(zip(a, b)):
            if x == SymDim.fixed(1):
                out.append(y)
            elif y == SymDim.fixed(1) or x == y:
                out.append(x)
            elif x.kind == "dynamic" or y.kind == "dynamic":
                out.append(x if y.kind == "dynamic" else y)
            else:
                raise ShapeError(f"shapes {self!r} and {other!r} do not broadcast at dim {i}")
        return SymbolicShape(out)


def _unify_dim(a: SymDim, b: SymDim, i: int, sa, sb) -> SymDim:
    if a == b or b.kind == "dynamic":
        return a
    if a.kind == "dynamic":
        return b
    if a.is_fixed and b.is_fixed:
        raise ShapeError(f"cannot unify shapes {sa!r} and {sb!r}: dim {i} is {a} vs {b}")
    return a if a.is_fixed else b


class ShapeEnv:
    """Bindings from dim names (``Batch``) to sizes; a second, different binding is an error."""

    def __init__(self, bindings: Mapping[str, int] | None = None):
        self._bindings: dict[str, int] = dict(bindings or {})

    def bind(self, name: str, size: int, where: str = "") -> None:
        prev = self._bindings.get(name)
        if prev is not None and prev != size:
            raise ShapeError(
                f"symbolic dim {name!r} is bound to {prev} but {where or 'a shape'} has {size}"
            )
        self._bindings[name] = int(size)

    def get(self, name: str) -> int | None:
        return self._bindings.get(name)

    def __contains__(self, name: str) -> bool:
        return name in self._bindings

    def bindings(self) -> dict[str, int]:
        return dict(self._bindings)

    def __repr__(self) -> str:
        return f"ShapeEnv({self._bindings})"


class ShapeGuard:
    """Checks concrete shapes against a SymbolicShape, binding names in a ShapeEnv."""

    def __init__(self, expected: SymbolicShape | Iterable, name: str = "input"):
        self.expected = expected if isinstance(expected, SymbolicShape) else SymbolicShape(expected)
        self.name = name

    def matches(self, shape: tuple[int, ...], env: ShapeEnv | None = None) -> bool:
        try:
            self.check(shape, ShapeEnv(env.bindings() if env else None))
        except ShapeError:
            return False
        return True

    def check(self, shape: tuple[int, ...], env: ShapeEnv) -> None:
        """Raise ShapeError naming the input and dim that disagree; bind names otherwise."""
        shape = tuple(shape)
        if len(shape) != len(self.expected):
            raise ShapeError(
                f"{self.name}: expected rank {len(self.expected)} {self.expected!r}, got shape "
                f"{fmt_shape(shape)}"
            )
        pending = {}
        for i, (d, n) in enumerate(zip(self.expected.dims, shape)):
            if d.kind == "fixed" and d.value != n:
                raise ShapeError(
                    f"{self.name}: dim {i} must be {d.value}, got {n} (shape {fmt_shape(shape)}, "
                    f"expected {self.expected!r})"
                )
            if d.kind == "symbolic":
                bound = env.get(d.name) if d.name not in pending else pending[d.name]
                if bound is not None and bound != n:
                    raise ShapeError(
                        f"{self.name}: dim {i} ({d.name}) is {n} but {d.name} is bound to {bound}"
                    )
                pending[d.name] = n
        for k, v in pending.items():
            env.bind(k, v, self.name)
