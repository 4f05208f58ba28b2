"""Symbolic shapes: SymDim, SymbolicShape unification/broadcasting, ShapeEnv, ShapeGuard."""

from __future__ import annotations

import pytest

from shrew_core import ShapeEnv, ShapeError, ShapeGuard, SymbolicShape, SymDim


def test_symdim_kinds():
    assert SymDim.of(3).is_fixed and SymDim.of("Batch").kind == "symbolic"
    assert SymDim.of("?").kind == "dynamic" and SymDim.of(None).kind == "dynamic"
    with pytest.raises(ShapeError):
        SymDim.fixed(-1)


def test_guard_binds_and_detects_conflicts():
    env = ShapeEnv()
    ShapeGuard(["Batch", 784], "x").check((32, 784), env)
    assert env.get("Batch") == 32
    ShapeGuard(["Batch", 10], "y").check((32, 10), env)
    with pytest.raises(ShapeError, match=r"y: dim 0 \(Batch\) is 16 but Batch is bound to 32"):
        ShapeGuard(["Batch", 10], "y").check((16, 10), env)
    with pytest.raises(ShapeError, match="x: dim 1 must be 784"):
        ShapeGuard(["Batch", 784], "x").check((32, 700), env)
    with pytest.raises(ShapeError, match="expected rank 2"):
        ShapeGuard(["Batch", 784], "x").check((32,), env)


def test_guard_same_name_twice_in_one_shape():
    env = ShapeEnv()
    with pytest.raises(ShapeError, match="N"):
        ShapeGuard(["N", "N"], "sq").check((3, 4), env)
    assert "N" not in env  # nothing bound by a failed check
    assert ShapeGuard(["N", "N"]).matches((3, 3))


def test_unify_and_resolve():
    a = SymbolicShape(["Batch", "?", 8])
    b = SymbolicShape([4, 16, "?"])
    u = a.unify(b)
    assert repr(u) == "[4, 16, 8]"
    with pytest.raises(ShapeError, match="dim 0 is 3 vs 4"):
        SymbolicShape([3]).unify(SymbolicShape([4]))
    assert SymbolicShape(["B", 3]).resolve(ShapeEnv({"B": 2})) == (2, 3)
    with pytest.raises(ShapeError, match="symbolic dim 'B'"):
        SymbolicShape(["B", 3]).resolve(ShapeEnv())


def test_broadcast():
    s = SymbolicShape(["Batch", 1, 8]).broadcast(SymbolicShape(["Seq", 1]))
    assert repr(s) == "[Batch, Seq, 8]"
    with pytest.raises(ShapeError, match="do not broadcast"):
        SymbolicShape([3]).broadcast(SymbolicShape([4]))
