"""ONNX for Shrew: export Modules and ``.sw`` programs, import ONNX files as trainable
Modules or as ``.sw`` source. Files are standard ONNX (opset 17), built with the ``onnx``
package's helpers and checked by ``onnx.checker``.

>>> import shrew_core as sc, shrew_nn as nn, shrew.onnx as sonnx      # doctest: +SKIP
>>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
>>> sonnx.export(net, sc.randn(2, 4), "net.onnx", dynamic_axes={"input": {0: "batch"}})
>>> m = sonnx.load("net.onnx")                  # OnnxModule: a shrew_nn Module
>>> m(sc.randn(5, 4)).shape
(5, 3)
>>> source, weights = sonnx.to_sw("net.onnx")  # an editable, trainable .sw program

The ``onnx`` package is the optional extra ``shrew[onnx]``: ``import shrew`` works without
it, and the first use of anything here raises ``OnnxNotInstalledError`` (an ImportError)
naming ``pip install "shrew[onnx]"``.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "export": "export_module",
    "export_weights": "export_module",
    "register_converter": "export_module",
    "ModuleExporter": "export_module",
    "Value": "export_module",
    "export_program": "export_program",
    "load": "importer",
    "OnnxModule": "importer",
    "load_onnx_weights": "importer",
    "to_sw": "to_sw",
    "OnnxError": "errors",
    "OnnxUnsupportedError": "errors",
    "OnnxNotInstalledError": "_deps",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'shrew.onnx' has no attribute {name!r}")
    if module != "errors":
        importlib.import_module(f"{__name__}._deps")  # the error naming the extra, first
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
