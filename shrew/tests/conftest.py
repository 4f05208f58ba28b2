"""Helpers for the facade's tests live beside them (``onnx_helpers.py``)."""

import os as _os
import sys as _sys

_sys.path.insert(0, _os.path.dirname(__file__))
