"""Compile-time evaluation of expressions: @config folding, attribute values, asserts.

Owns `Evaluator`, which turns an AST expression into a Python value (int,
float, str, bool, None, list, dict) using a name environment. Unlike the
original (which turned parentheses and many operators into junk strings),
every operator is supported, parentheses fold, config keys may refer to keys
defined later (cycles are errors), and failures raise EvalError with the span
of the offending sub-expression.

Integer `/` is floor division and `%` takes the sign of the divisor (Python
semantics), so `d_model / n_heads` stays an int. A bare identifier that names
nothing evaluates to its own text, so `type: AdamW;` and `loss: cross_entropy;`
work as in the original.
"""

from __future__ import annotations

from . import ast as A


class EvalError(Exception):
    def __init__(self, message: str, span, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.span = span
        self.hint = hint


class Unbound:
    """Returned by a resolver for a name it does not know."""


UNBOUND = Unbound()


def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _kind(v) -> str:
    if v is None:
        return "null"
    return {bool: "bool", int: "int", float: "float", str: "str", list: "list", dict: "dict"}.get(
        type(v), type(v).__name__
    )


_FUNCS = {
    "min": min,
    "max": max,
    "abs": abs,
    "int": int,
    "float": float,
    "round": round,
    "len": len,
    "str": str,
}


class Evaluator:
    """`resolve(name_text, span) -> value | UNBOUND`; unbound names become strings."""

    def __init__(self, resolve, bare_words: bool = True) -> None:
        self.resolve = resolve
        self.bare_words = bare_words

    def eval(self, expr: A.Expr):
        method = getattr(self, "_" + type(expr).__name__, None)
        if method is None:
            raise EvalError(
                f"{_describe(expr)} cannot be evaluated at compile time",
                expr.span,
                "only literals, config names and operators are allowed here",
            )
        return method(expr)

    def _IntLit(self, e):
        return e.value

    def _FloatLit(self, e):
        return e.value

    def _StrLit(self, e):
        return e.value

    def _BoolLit(self, e):
        return e.value

    def _NullLit(self, e):
        return None

    def _Paren(self, e):
        return self.eval(e.inner)

    def _Name(self, e):
        value = self.resolve(e.text, e.span)
        if value is UNBOUND:
            if self.bare_words:
                return e.text
            raise EvalError(f"undefined name '{e.text}'", e.span)
        return value

    def _ListExpr(self, e):
        return [self.eval(x) for x in e.items]

    def _DictExpr(self, e):
        return {k: self.eval(v) for k, v in e.entries}

    def _RangeExpr(self, e):
        a, b = self.eval(e.start), self.eval(e.end)
        if not (isinstance(a, int) and isinstance(b, int)):
            raise EvalError("range bounds must be integers", e.span)
        return list(range(a, b))

    def _IfExpr(self, e):
        cond = self.eval(e.cond)
        if not isinstance(cond, bool):
            raise EvalError(f"if condition must be a bool, got {_kind(cond)}", e.cond.span)
        if cond:
            return self.eval(e.then)
        return self.eval(e.otherwise) if e.otherwise is not None else None

    def _Index(self, e):
        obj, idx = self.eval(e.obj), self.eval(e.index)
        try:
            return obj[idx]
        except (TypeError, IndexError, KeyError):
            raise EvalError(f"cannot index {_kind(obj)} with {idx!r}", e.span) from None

    def _Call(self, e):
        name = e.func_name
        if name in _FUNCS and not any(a.name for a in e.args):
            args = [self.eval(a.value) for a in e.args]
            try:
                return _FUNCS[name](*args)
            except (TypeError, ValueError) as exc:
                raise EvalError(f"{name}(): {exc}", e.span) from None
        raise EvalError(
            f"call to '{name or 'expression'}' cannot be evaluated at compile time",
            e.span,
            "compile-time expressions support min, max, abs, int, float, round, len, str",
        )

    def _Unary(self, e):
        v = self.eval(e.operand)
        if e.op == "-":
            if _num(v):
                return -v
        elif e.op == "!":
            if isinstance(v, bool):
                return not v
        elif e.op == "~":
            if isinstance(v, int) and not isinstance(v, bool):
                return ~v
        raise EvalError(f"cannot apply unary '{e.op}' to {_kind(v)}", e.span)

    def _Binary(self, e):
        op = e.op
        if op == "??":
            left = self.eval(e.left)
            return left if left is not None else self.eval(e.right)
        if op in ("&&", "||"):
            left = self.eval(e.left)
            if not isinstance(left, bool):
                raise EvalError(f"'{op}' needs bools, got {_kind(left)}", e.left.span)
            if (op == "&&" and not left) or (op == "||" and left):
                return left
            right = self.eval(e.right)
            if not isinstance(right, bool):
                raise EvalError(f"'{op}' needs bools, got {_kind(right)}", e.right.span)
            return right
        a, b = self.eval(e.left), self.eval(e.right)
        return binary_value(op, a, b, e.span)


def binary_value(op: str, a, b, span=None):
    """Apply a binary operator to two constant values (shared with constant folding)."""
    if op in ("==", "!="):
        return (a == b) if op == "==" else (a != b)
    if _num(a) and _num(b):
        try:
            if op == "+":
                return a + b
            if op == "-":
                return a - b
            if op == "*":
                return a * b
            if op == "/":
                if isinstance(a, int) and isinstance(b, int):
                    return a // b
                return a / b
            if op == "%":
                return a % b
            if op == "**":
                if isinstance(a, int) and isinstance(b, int) and b < 0:
                    return float(a) ** b
                result = a**b
                if isinstance(result, complex):
                    raise EvalError("'**' gives a complex number", span)
                return result
            if op == "<":
                return a < b
            if op == ">":
                return a > b
            if op == "<=":
                return a <= b
            if op == ">=":
                return a >= b
            if isinstance(a, int) and isinstance(b, int):
                if op == "&":
                    return a & b
                if op == "|":
                    return a | b
                if op == "^":
                    return a ^ b
                if op == "<<" and 0 <= b < 64:
                    return a << b
                if op == ">>" and b >= 0:
                    return a >> b
        except ZeroDivisionError:
            raise EvalError("division by zero", span, "the divisor evaluates to 0") from None
        except OverflowError:
            raise EvalError("numeric overflow", span) from None
    if op == "+" and isinstance(a, str) and isinstance(b, str):
        return a + b
    if op == "+" and isinstance(a, list) and isinstance(b, list):
        return a + b
    if op in ("<", ">", "<=", ">=") and isinstance(a, str) and isinstance(b, str):
        return {"<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op]
    if isinstance(a, bool) and isinstance(b, bool) and op in ("&", "|", "^"):
        return {"&": a & b, "|": a | b, "^": a ^ b}[op]
    raise EvalError(f"cannot apply '{op}' to {_kind(a)} and {_kind(b)}", span)


def _describe(expr) -> str:
    names = {
        "RepeatExpr": "repeat(...)",
        "Closure": "a closure",
        "Slice": "a slice",
        "Member": "member access",
    }
    return names.get(type(expr).__name__, type(expr).__name__)
