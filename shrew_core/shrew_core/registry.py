"""Backend discovery: the ``shrew.backends`` entry-point group plus runtime registration.

A package makes a backend available by declaring, in its pyproject.toml::

    [project.entry-points."shrew.backends"]
    mybackend = "my_package:MyBackend"

Tensors on ``Device("mybackend")`` then compute with ``MyBackend``. Classes load
lazily, on the first tensor of that device; an import failure is kept and
re-raised as a BackendError that says what went wrong and what to install.
Lookups are thread-safe: threads creating their first tensor at once share one instance.
"""

from __future__ import annotations

import threading
from importlib.metadata import entry_points

from . import hooks
from .backend import Backend
from .device import Device, as_device
from .errors import BackendError

ENTRY_POINT_GROUP = "shrew.backends"
_PACKAGE_FOR = {"cpu": "shrew-cpu", "cuda": "shrew-cuda"}

_classes: dict[str, type[Backend]] = {}
_instances: dict[Device, Backend] = {}
#: Guards ``_classes`` / ``_instances`` updates: without it two threads creating the first
#: tensor of a device at once built two backends, and mixing their tensors raised
#: "expected all tensors on one device, got cpu and cpu".
_lock = threading.RLock()


def register_backend(name: str, cls: type[Backend]) -> None:
    """Register (or replace) a backend class under ``name`` at runtime."""
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise BackendError(f"register_backend({name!r}): {cls!r} is not a Backend subclass")
    with _lock:
        _classes[name] = cls
        for dev in [d for d in _instances if d.type == name]:
            del _instances[dev]


def _entry_points() -> dict:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available_backends() -> list[str]:
    """Names of every registered or installed backend (installed ones not yet imported)."""
    return sorted(set(_classes) | set(_entry_points()))


def get_backend_class(name: str) -> type[Backend]:
    """The backend class registered as ``name``, importing its package on first use."""
    cls = _classes.get(name)
    if cls is not None:
        return cls
    with _lock:
        return _load_backend_class(name)


def _load_backend_class(name: str) -> type[Backend]:
    cls = _classes.get(name)  # another thread may have loaded it while we waited
    if cls is not None:
        return cls
    ep = _entry_points().get(name)
    if ep is None:
        hint = _PACKAGE_FOR.get(name)
        install = f"install it with `pip install {hint}`" if hint else "install a package that "
        if not hint:
            install += f"registers it in the {ENTRY_POINT_GROUP!r} entry-point group"
        raise BackendError(
            f"no backend named {name!r} is installed ({install}); "
            f"available: {', '.join(available_backends()) or 'none'}"
        )
    try:
        cls = ep.load()
    except Exception as exc:  # keep the cause, say what to do
        raise BackendError(
            f"backend {name!r} ({ep.value}) failed to import: {type(exc).__name__}: {exc}"
        ) from exc
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise BackendError(f"entry point {name!r} -> {ep.value} is not a Backend subclass")
    _classes[name] = cls
    return cls


def auto_device() -> Device:
    """``cuda:0`` when the cuda backend is installed and its class reports a GPU
    (``is_available()``), else ``cpu``."""
    try:
        cls = get_backend_class("cuda")
    except BackendError:
        return Device("cpu")
    available = getattr(cls, "is_available", None)
    return Device("cuda") if available is not None and available() else Device("cpu")


def get_backend(device: Device | str) -> Backend:
    """The backend instance serving ``device`` (one per device, created on first use)."""
    dev = as_device(device)
    backend = _instances.get(dev)
    if backend is None:
        with _lock:
            backend = _instances.get(dev)
            if backend is None:
                backend = get_backend_class(dev.type)(dev)
                _instances[dev] = backend
                hooks.backend_created(backend)
    return backend
