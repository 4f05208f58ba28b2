"""The JIT: graphs compiled into instruction tapes with memory slots, value lifetimes,
buffer reuse and generated fused Numba kernels (``load_jit`` -> ``JitExecutor``).

>>> from shrew.exec import load_jit
>>> ex = load_jit("examples/sw/mnist_mlp.sw")          # doctest: +SKIP
>>> ex.run("Forward", {"x": x})                        # doctest: +SKIP
>>> print(ex.stats("Forward"), ex.dump("Forward"))     # doctest: +SKIP

Modules: ``codegen`` (kernel source + disk cache), ``fused`` (running a chain, its
autograd Function), ``planner`` (trace -> tape), ``tape`` (instructions and the run
loop), ``executor`` (the JitExecutor).
"""

from .codegen import cache_dir
from .executor import JitExecutor, load_jit
from .tape import JitStats

__all__ = ["JitExecutor", "JitStats", "cache_dir", "load_jit"]
