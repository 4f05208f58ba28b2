"""Compile every kernel the simulator ran to PTX for a real GPU — a check without a GPU.

The simulator executes kernels as Python, so it cannot catch what numba's CUDA compiler
rejects (typing errors, unsupported constructs). ``python -m shrew_cuda.ptxcheck`` runs
the ``cuda``-marked tests (``python -m pytest -m cuda``) under the simulator while
recording every launch (the kernel factory call that built the kernel and the argument
types), then, in a process without the simulator, rebuilds each kernel for the GPU and
compiles it with
``numba.cuda.compile_ptx`` for compute capability 9.0 (H100/H200). It needs NVVM and
NVRTC (``pip install nvidia-cuda-nvcc-cu12 nvidia-cuda-nvrtc-cu12``), not a GPU.
"""

from __future__ import annotations

import atexit
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile

RECORD_ENV = "SHREW_CUDA_PTX_RECORD"


def install_recorder(path: str) -> None:
    """Record (factory, argument types) of every simulated launch into ``path`` at exit."""
    from numba import typeof
    from numba.cuda.simulator.kernel import FakeCUDAKernel

    from . import _runtime

    seen: set = set()
    original = FakeCUDAKernel.__call__

    def call(self, *args):
        made = _runtime.made_by(self.fn)
        if made is not None and not self._device:
            seen.add(json.dumps([made[0], made[1], list(made[2]),
                                 [str(typeof(a)) for a in args]]))  # fmt: skip
        return original(self, *args)

    FakeCUDAKernel.__call__ = call
    atexit.register(lambda: pathlib.Path(path).write_text("\n".join(sorted(seen))))


def _parse_type(text: str):
    from numba.core import types

    m = re.fullmatch(r"array\((\w+), (\d+)d, (\w)\)", text)
    if m:
        return types.Array(_parse_type(m[1]), int(m[2]), m[3])
    m = re.fullmatch(r"UniTuple\((\w+) x (\d+)\)", text)
    if m:
        return types.UniTuple(_parse_type(m[1]), int(m[2]))
    return {"bool": types.boolean}.get(text) or getattr(types, text)


def compile_recorded(path: str) -> list[str]:
    """Compile each recorded kernel signature; returns the failures (empty: all compiled)."""
    import importlib
    import types as pytypes

    import numba.cuda.dispatcher as dispatcher
    from numba import cuda

    # device functions ask for the current device's compute capability: there is none
    dispatcher.get_current_device = lambda: pytypes.SimpleNamespace(compute_capability=(9, 0))
    failures = []
    lines = [ln for ln in pathlib.Path(path).read_text().splitlines() if ln]
    for line in lines:
        module, factory, args, sig = json.loads(line)
        fn = getattr(importlib.import_module(module), factory)
        kernel = fn(*args)
        try:
            cuda.compile_ptx(kernel.py_func, tuple(_parse_type(t) for t in sig), cc=(9, 0))
        except Exception as exc:  # report every failure, keep going
            failures.append(f"{factory}{tuple(args)} {sig}: {type(exc).__name__}: {exc}")
    print(f"ptxcheck: compiled {len(lines) - len(failures)}/{len(lines)} kernel signatures")
    return failures


def main() -> int:
    root = pathlib.Path(__file__).resolve().parents[2]
    with tempfile.TemporaryDirectory() as tmp:
        record = os.path.join(tmp, "launches.jsonl")
        env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", **{RECORD_ENV: record})
        tests = sys.argv[1:] or ["-m", "cuda"]
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        *tests], cwd=root, env=env, check=False)  # fmt: skip
        env = dict(os.environ, NUMBA_ENABLE_CUDASIM="0")
        code = ("import sys; from shrew_cuda.ptxcheck import compile_recorded; "
                f"f = compile_recorded({record!r}); print(*f, sep='\\n'); sys.exit(bool(f))")
        return subprocess.run([sys.executable, "-c", code], env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
