"""Errors raised while executing or training a .sw program."""

from __future__ import annotations

from shrew_core import ShrewError


class ExecutionError(ShrewError, RuntimeError):
    """A program that is valid IR but cannot run as asked (missing input, unbound dim, ...).
    Messages name the graph and node, with the node's source position where known."""


def where(graph: str, node) -> str:
    """``graph 'G', node 'n' (model.sw:12:5)`` for error messages."""
    span = getattr(node, "span", None)
    return f"graph {graph!r}, node {node.name!r}" + (f" ({span})" if span is not None else "")
