"""Helpers for the facade's tests live beside them (``onnx_helpers.py``). The folder goes at
the END of sys.path, so it never shadows another package's ``conftest`` helpers (shrew_core's
tests import theirs by that name)."""

import os as _os
import sys as _sys

_sys.path.append(_os.path.dirname(__file__))
