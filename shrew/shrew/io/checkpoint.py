"""Training checkpoints: model, optimizer, scheduler, RNG and any progress, in one ``.shrew``.

A checkpoint is a native ``.shrew`` file (whatever the suffix). Its tensors are the model's
``state_dict()`` under ``model/<key>``, then every tensor or array found in the optimizer's,
the scheduler's and the extra state under ``optimizer/...``, ``scheduler/...`` and
``state/...``. Everything else goes, as JSON, into the metadata value ``shrew.checkpoint``::

    {"format": 1, "optimizer": <tree>, "scheduler": <tree>, "state": <tree>}

A tree is JSON with a few tagged objects for what JSON lacks: ``{"shrew.tensor": name}``,
``{"shrew.array": name, "dtype": d}`` and ``{"shrew.scalar": name, "dtype": d}`` (a NumPy
array / scalar, given back in its own dtype), ``{"shrew.tuple": [...]}``, ``{"shrew.dict":
[[key, value], ...]}`` (keys that are not strings, like the optimizer's parameter indices)
and ``{"shrew.float": "inf" | "-inf" | "nan"}``. Nothing is pickled: any other value is a
``CheckpointError`` at save time. ``state`` always holds ``rng_state``
(``shrew_core.get_rng_state()``), restored by ``load_checkpoint``, so that a run resumed from
a checkpoint continues bit for bit like the uninterrupted one.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

import shrew_core as sc

from ._arrays import np_dtype, to_tensor
from .errors import CheckpointError
from .legacy import parse_legacy
from .native import VERSION, map_tensors, open_checked, read_header, save_tensors

FORMAT_KEY = "shrew.checkpoint"
FORMAT = 1
_TAGS = ("shrew.tensor", "shrew.array", "shrew.scalar", "shrew.tuple", "shrew.dict",
         "shrew.float")  # fmt: skip


def save_checkpoint(path: str | os.PathLike, *, model: Any, optimizer: Any = None,
                    scheduler: Any = None, **state: Any) -> None:  # fmt: skip
    """Save a training checkpoint (atomically, in the native format).

    Args:
        model: a ``shrew_nn.Module`` or an Executor (anything with ``state_dict()``).
        optimizer / scheduler: a ``shrew_optim`` optimizer / lr scheduler, or ``None``.
        **state: anything else to keep (epoch, step, ``loader.state_dict()``, best metric
            ...): JSON values, tensors and NumPy arrays, nested in dicts/lists/tuples.
            ``rng_state`` defaults to ``shrew_core.get_rng_state()``.

    >>> shrew.io.save_checkpoint("ckpt.shrew", model=net, optimizer=opt,  # doctest: +SKIP
    ...                          epoch=3, step=1200, loader=loader.state_dict())
    """
    path = os.fspath(path)
    tensors = {f"model/{k}": v for k, v in _state_dict(model, "model", path).items()}
    enc = _Encoder(path, tensors)
    doc: dict[str, Any] = {"format": FORMAT}
    if optimizer is not None:
        doc["optimizer"] = enc.encode(_state_dict(optimizer, "optimizer", path), "optimizer")
    if scheduler is not None:
        doc["scheduler"] = enc.encode(_state_dict(scheduler, "scheduler", path), "scheduler")
    doc["state"] = enc.encode({"rng_state": sc.get_rng_state(), **state}, "state")
    meta = {FORMAT_KEY: json.dumps(doc, allow_nan=False, separators=(",", ":"))}
    save_tensors(tensors, path, metadata=meta)


def load_checkpoint(path: str | os.PathLike, *, model: Any, optimizer: Any = None,
                    scheduler: Any = None) -> dict[str, Any]:  # fmt: skip
    """Restore ``model`` (and ``optimizer``/``scheduler`` when given) and the RNG state from
    a checkpoint; return the rest of the saved state (``epoch``, ``step``, ``rng_state`` ...).

    The whole file is read and checked (and the optimizer's and scheduler's types) before
    anything is changed; then model, optimizer, scheduler and RNG are restored. A plain
    tensor file (from ``save``/``save_tensors``, or the original's version 1) loads as the
    model's weights; the original's version-2 training file gives its ``epoch``,
    ``global_step``, ``best_loss`` and ``loss_history`` (its optimizer state has no Shrew
    equivalent: it is returned as ``legacy_optimizer``).
    """
    path = os.fspath(path)
    weights, doc = _read(path)
    if optimizer is not None and "optimizer" not in doc:
        raise CheckpointError(path, "has no optimizer state in Shrew's layout; pass "
                              "optimizer=None to load the rest")  # fmt: skip
    if scheduler is not None and "scheduler" not in doc:
        raise CheckpointError(path, "has no scheduler state; pass scheduler=None")
    _check_kind(path, "optimizer", optimizer, doc.get("optimizer"))
    _check_kind(path, "scheduler", scheduler, doc.get("scheduler"))
    _apply(path, "model", model, weights)
    if optimizer is not None:
        _apply(path, "optimizer", optimizer, doc["optimizer"])
    if scheduler is not None:
        _apply(path, "scheduler", scheduler, doc["scheduler"])
    state = doc.get("state", {})
    if "rng_state" in state:
        sc.set_rng_state(state["rng_state"])
    return state


def _read(path: str) -> tuple[dict[str, sc.Tensor], dict[str, Any]]:
    """The model's weights and the decoded document (``state`` etc.) of any .shrew file."""
    f, size, version = open_checked(path)
    with f:
        if version != VERSION:
            old = parse_legacy(f, size, path, version)
            state: dict[str, Any] = dict(old.progress)
            if old.optimizer is not None:
                state["legacy_optimizer"] = old.optimizer
            return {k: to_tensor(v) for k, v in old.tensors.items()}, {"state": state}
        meta, entries, header_size = read_header(f, size, path)
        arrays = map_tensors(f, size, entries, header_size, path)  # views of a file map
    if FORMAT_KEY not in meta:
        return {k: to_tensor(v) for k, v in arrays.items()}, {}
    try:
        doc = json.loads(meta[FORMAT_KEY])
    except json.JSONDecodeError as exc:
        raise CheckpointError(path, f"corrupt {FORMAT_KEY} metadata: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        found = doc.get("format") if isinstance(doc, dict) else doc
        raise CheckpointError(path, f"unsupported checkpoint format {found!r} (this Shrew "
                              f"reads format {FORMAT} in .shrew version {VERSION})")  # fmt: skip
    weights = {k[len("model/"):]: to_tensor(v) for k, v in arrays.items()
               if k.startswith("model/")}  # fmt: skip
    dec = _Decoder(path, arrays)
    out = {k: dec.decode(doc[k], k) for k in ("optimizer", "scheduler", "state") if k in doc}
    return weights, out


def _state_dict(obj: Any, role: str, path: str) -> Mapping:
    if not callable(getattr(obj, "state_dict", None)):
        raise CheckpointError(path, f"{role}: {type(obj).__name__} has no state_dict()")
    return obj.state_dict()


def _check_kind(path: str, role: str, obj: Any, saved: Any) -> None:
    """The saved optimizer/scheduler type must be ``obj``'s: checked before anything loads."""
    kind = saved.get(role) if isinstance(saved, dict) else None
    if obj is not None and kind is not None and kind != type(obj).__name__:
        raise CheckpointError(path, f"cannot restore the {role}: the checkpoint holds {kind} "
                              f"state, not {type(obj).__name__}")  # fmt: skip


def _apply(path: str, role: str, obj: Any, value: Any) -> None:
    if not callable(getattr(obj, "load_state_dict", None)):
        raise CheckpointError(path, f"{role}: {type(obj).__name__} has no load_state_dict()")
    try:
        obj.load_state_dict(value)
    except (sc.ShrewError, KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(path, f"cannot restore the {role}: {exc}") from exc


class _Encoder:
    """Turns a state tree into JSON, moving its tensors/arrays into ``tensors``."""

    def __init__(self, path: str, tensors: dict[str, Any]) -> None:
        self.path, self.tensors = path, tensors

    def _store(self, where: str, value: Any) -> str:
        name, n = where, 1
        while name in self.tensors:
            name, n = f"{where}#{n}", n + 1
        self.tensors[name] = value
        return name

    def encode(self, value: Any, where: str) -> Any:
        if value is None or isinstance(value, (bool, str, int)):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else {"shrew.float": repr(value)}
        if isinstance(value, sc.Tensor):
            return {"shrew.tensor": self._store(where, value)}
        if isinstance(value, np.ndarray):
            return {"shrew.array": self._store(where, value), "dtype": value.dtype.name}
        if isinstance(value, np.generic):
            return {"shrew.scalar": self._store(where, np.asarray(value)),
                    "dtype": value.dtype.name}  # fmt: skip
        if isinstance(value, list):
            return [self.encode(v, f"{where}/{i}") for i, v in enumerate(value)]
        if isinstance(value, tuple):
            return {"shrew.tuple": [self.encode(v, f"{where}/{i}") for i, v in enumerate(value)]}
        if isinstance(value, Mapping):
            if all(isinstance(k, str) and not k.startswith("shrew.") for k in value):
                return {k: self.encode(v, f"{where}/{k}") for k, v in value.items()}
            return {"shrew.dict": [[self.encode(k, f"{where}/key"),
                                    self.encode(v, f"{where}/{k}")]
                                   for k, v in value.items()]}  # fmt: skip
        hint = "; pass its state_dict()" if hasattr(value, "state_dict") else ""
        raise CheckpointError(self.path, f"{where}: cannot store a {type(value).__name__} "
                              "(checkpoints hold JSON values, tensors and NumPy arrays; nothing "
                              f"is pickled){hint}")  # fmt: skip


class _Decoder:
    """The inverse of ``_Encoder``, reading tensors from the file's arrays."""

    def __init__(self, path: str, arrays: dict[str, np.ndarray]) -> None:
        self.path, self.arrays = path, arrays

    def decode(self, value: Any, where: str) -> Any:
        if isinstance(value, list):
            return [self.decode(v, where) for v in value]
        if not isinstance(value, dict):
            return value
        tag = next((k for k in value if k.startswith("shrew.")), None)
        if tag is None:
            return {k: self.decode(v, where) for k, v in value.items()}
        body = value[tag]
        if tag == "shrew.tuple" and isinstance(body, list):
            return tuple(self.decode(v, where) for v in body)
        if tag == "shrew.dict" and isinstance(body, list) and all(
            isinstance(kv, list) and len(kv) == 2 for kv in body
        ):
            return {_hashable(self.decode(k, where)): self.decode(v, where) for k, v in body}
        if tag == "shrew.float" and body in ("inf", "-inf", "nan"):
            return float(body)
        if tag == "shrew.tensor":
            return to_tensor(self._array(body, where))
        if tag in ("shrew.array", "shrew.scalar"):
            arr = self._array(body, where)
            try:
                arr = arr.astype(np_dtype(value.get("dtype")), copy=False)
            except TypeError:
                raise CheckpointError(self.path, f"{where}: bad dtype {value.get('dtype')!r} "
                                      f"of {body!r}") from None  # fmt: skip
            return arr[()] if tag == "shrew.scalar" else arr
        raise CheckpointError(self.path, f"{where}: unknown or malformed tag {tag!r} in the "
                              "checkpoint document")  # fmt: skip

    def _array(self, name: Any, where: str) -> np.ndarray:
        """A copy of the file's array ``name``: nothing handed out aliases the file's map."""
        if not isinstance(name, str) or name not in self.arrays:
            raise CheckpointError(self.path, f"{where}: the document refers to tensor {name!r}, "
                                  "which the file does not hold")  # fmt: skip
        return self.arrays[name].copy()


def _hashable(key: Any) -> Any:
    return tuple(_hashable(k) for k in key) if isinstance(key, (list, tuple)) else key
