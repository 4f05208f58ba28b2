"""The dispatch hook: observing every call into a backend (what ``shrew.profiler`` uses).

Ops reach a backend as ``tensor._backend.<method>(...)``, looked up at call time. While at
least one observer is registered (``add_backend_observer``), the class of every live
backend instance — and of every one ``get_backend`` creates meanwhile — has each Backend
protocol method replaced by a wrapper that times the call and reports it to the observers.
When the last observer is removed the class attributes are restored exactly, so with no
observer the dispatch path is the unobserved one: the hook costs nothing when inactive
(``benchmarks/bench_profiler.py`` measures it). The classes are patched rather than the
instances because writing instance attributes would materialise each instance's
``__dict__`` for good, which slows every later attribute lookup on it a little.

Rules for call sites that want to be observed: look the method up on the backend
when calling it (``t._backend.matmul(...)``); a bound method cached before an observer was
added bypasses the hook.

An observer is any object with ``on_backend_call(call: BackendCall)``; it is called in the
thread that made the call, after the call returned, nested calls (a fused default composing
primitives) before the call that made them. Observers must be cheap and must not call
backends themselves.
"""

from __future__ import annotations

import inspect
import threading
from dataclasses import dataclass
from time import perf_counter_ns
from typing import Any

from .backend import Backend

_lock = threading.RLock()
_observers: tuple = ()  # replaced (never mutated) so wrappers can read it without the lock


@dataclass(slots=True)
class BackendCall:
    """One finished backend call.

    Attributes:
        name: the op: the ``op`` argument of generic methods (``"relu"`` for
            ``unary("relu", ...)``, ``"gelu_backward"`` for ``unary_backward``), else the
            method name (``"matmul"``, ``"softmax"``, ``"full"``).
        method: the Backend method called.
        backend: the backend instance.
        start_ns, end_ns: ``time.perf_counter_ns()`` around the call.
        thread_id: ``threading.get_ident()`` of the calling thread.
        args, kwargs: the arguments (without ``self``).
        result: what the method returned.
    """

    name: str
    method: str
    backend: Backend
    start_ns: int
    end_ns: int
    thread_id: int
    args: tuple
    kwargs: dict
    result: Any


def _protocol_methods() -> dict[str, str | None]:
    """Backend method name -> how its event is named (None: the method name, "op": the
    first argument, "op_backward": the first argument + "_backward")."""
    out: dict[str, str | None] = {}
    for name, fn in vars(Backend).items():
        if name.startswith("_") or not inspect.isfunction(fn):
            continue
        params = list(inspect.signature(fn).parameters)
        naming = None
        if len(params) > 1 and params[1] == "op":
            naming = "op_backward" if name.endswith("_backward") else "op"
        out[name] = naming
    return out


_METHODS = _protocol_methods()


_MISSING = object()
_patched: dict[type, dict[str, object]] = {}  # class -> its own attributes before patching


def _original(cls: type, method: str):
    """The function ``cls`` resolves ``method`` to, seen through any wrapper."""
    for klass in cls.__mro__:
        if method in vars(klass):
            fn = vars(klass)[method]
            return fn.__wrapped__ if getattr(fn, "__shrew_observed__", False) else fn
    return None


def _wrapper(fn, method: str, naming: str | None):
    def observed(self, *args, **kwargs):
        start = perf_counter_ns()
        result = fn(self, *args, **kwargs)
        end = perf_counter_ns()
        if naming is None:
            name = method
        else:
            op = args[0] if args else kwargs.get("op", method)
            name = f"{op}_backward" if naming == "op_backward" else str(op)
        call = BackendCall(
            name, method, self, start, end, threading.get_ident(), args, kwargs, result
        )
        for obs in _observers:
            obs.on_backend_call(call)
        return result

    observed.__shrew_observed__ = True
    observed.__wrapped__ = fn
    observed.__name__ = method
    return observed


def _patch(cls: type) -> None:
    if cls in _patched:
        return
    saved: dict[str, object] = {}
    for method, naming in _METHODS.items():
        fn = _original(cls, method)
        if inspect.isfunction(fn):
            saved[method] = vars(cls).get(method, _MISSING)
            setattr(cls, method, _wrapper(fn, method, naming))
    _patched[cls] = saved


def _unpatch_all() -> None:
    for cls, saved in _patched.items():
        for method, old in saved.items():
            if old is _MISSING:
                delattr(cls, method)
            else:
                setattr(cls, method, old)
    _patched.clear()


def _live_backends() -> list[Backend]:
    from . import registry

    return list(registry._instances.values())


def add_backend_observer(observer) -> None:
    """Start reporting every backend call to ``observer.on_backend_call(call)``."""
    global _observers
    with _lock:
        if observer in _observers:
            return
        _observers = _observers + (observer,)
        if len(_observers) == 1:
            for backend in _live_backends():
                _patch(type(backend))


def remove_backend_observer(observer) -> None:
    """Stop reporting to ``observer``; the last one removed restores the plain dispatch."""
    global _observers
    with _lock:
        _observers = tuple(o for o in _observers if o is not observer)
        if not _observers:
            _unpatch_all()


def backend_created(backend: Backend) -> None:
    """Called by the registry for each new backend instance: observe it if a profile runs."""
    if _observers:
        with _lock:
            if _observers:
                _patch(type(backend))


def is_observed() -> bool:
    """Whether any observer is registered (backend calls are being reported)."""
    return bool(_observers)
