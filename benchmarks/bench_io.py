"""Saving and loading 1 GB of f32 parameters: shrew.io (.shrew, safetensors) vs the
safetensors library (safetensors.torch, safetensors.numpy) and torch.save/torch.load, in
one run.

Run: ``python benchmarks/bench_io.py [--gb 1.0] [--tensors 64] [--repeat 3]``. Prints the
best-of-N seconds per format (the order alternates between repeats), ratios, and the time
to read one tensor out of the 1 GB files. Files live in a temporary folder next to this
script (the disk real checkpoints go to), deleted afterwards.

* Shrew's writers fsync (they are atomic); safetensors.torch and torch.save do not, so
  they are also timed with an ``os.fsync`` added: the fair comparison.
* Reads come from the page cache (the files were just written): they measure the readers,
  not the disk. safetensors.torch.load_file, torch.load(mmap=True) and shrew.io's
  ``.shrew`` loader return tensors backed by a memory map; the ``+touch`` rows also read
  one value per 4 KiB page of every tensor, the cost of really having the weights.

Also runnable under pytest-benchmark (small sizes):
``pytest benchmarks/bench_io.py --benchmark-only``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections.abc import Callable

import numpy as np
import safetensors
import safetensors.torch
import torch

import shrew
from shrew import io


def make_params(total_bytes: int, n_tensors: int) -> dict[str, np.ndarray]:
    """``n_tensors`` f32 arrays of about ``total_bytes`` in all (a model's parameters)."""
    per = total_bytes // 4 // n_tensors // 256 * 256
    rng = np.random.default_rng(0)
    return {f"layers.{i}.weight": rng.standard_normal(per, dtype=np.float32).reshape(-1, 256)
            for i in range(n_tensors)}  # fmt: skip


def _fsynced(fn: Callable[[str], None]) -> Callable[[str], None]:
    def run(path: str) -> None:
        fn(path)
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    return run


def writers(params: dict[str, np.ndarray]) -> dict[str, tuple[str, Callable[[str], None]]]:
    """name -> (file suffix, write(path))."""
    shrew_t = {k: shrew.from_numpy(v) for k, v in params.items()}
    torch_t = {k: torch.from_numpy(v) for k, v in params.items()}
    st_save = lambda p: safetensors.torch.save_file(torch_t, p)  # noqa: E731
    pt_save = lambda p: torch.save(torch_t, p)  # noqa: E731
    return {
        "shrew.io .shrew": (".shrew", lambda p: io.save_tensors(shrew_t, p)),
        "shrew.io safetensors": (".safetensors", lambda p: io.save_safetensors(shrew_t, p)),
        "safetensors.torch": (".safetensors", st_save),
        "safetensors.torch+fsync": (".safetensors", _fsynced(st_save)),
        "torch.save": (".pt", pt_save),
        "torch.save+fsync": (".pt", _fsynced(pt_save)),
    }


def _unverified(path: str) -> dict:
    return io.load_tensors(path, verify=False)


def readers() -> dict[str, tuple[str, Callable[[str], object]]]:
    """name -> (name of the writer whose file it reads, read(path))."""
    return {
        "shrew.io .shrew": ("shrew.io .shrew", io.load_tensors),
        "shrew.io safetensors": ("shrew.io safetensors", io.load_safetensors),
        "safetensors.torch": ("safetensors.torch", safetensors.torch.load_file),
        "safetensors.numpy": ("safetensors.torch", safetensors.numpy.load_file),
        "torch.load": ("torch.save", lambda p: torch.load(p, weights_only=True)),
        "shrew.io .shrew +touch": ("shrew.io .shrew", touching(io.load_tensors)),
        "shrew.io .shrew mmap=False": ("shrew.io .shrew",
                                       lambda p: io.load_tensors(p, mmap=False)),  # fmt: skip
        "shrew.io .shrew verify=False": ("shrew.io .shrew", _unverified),
        "   ... +touch": ("shrew.io .shrew", touching(_unverified)),
        "safetensors.torch +touch": ("safetensors.torch", touching(safetensors.torch.load_file)),
        "torch.load mmap +touch": ("torch.save",
                                   touching(lambda p: torch.load(p, weights_only=True,
                                                                 mmap=True))),  # fmt: skip
    }


def _touch(tensors: dict) -> dict:
    """Read one value per 4 KiB page of every tensor: a lazily mapped file gets paged in,
    as it would be when the model first uses its weights."""
    for v in tensors.values():
        np.asarray(v.numpy()).reshape(-1)[::1024].sum()
    return tensors


def touching(read: Callable[[str], dict]) -> Callable[[str], dict]:
    return lambda p: _touch(read(p))


def one_tensor_readers(name: str) -> dict[str, tuple[str, Callable[[str], object]]]:
    def st_one(p: str) -> object:
        with safetensors.safe_open(p, framework="pt") as f:
            return f.get_tensor(name)

    return {
        "shrew.io .shrew": ("shrew.io .shrew", lambda p: io.load_tensors(p, names=[name])),
        "shrew.io safetensors": ("shrew.io safetensors",
                                 lambda p: io.load_safetensors(p, names=[name])),  # fmt: skip
        "safetensors safe_open": ("safetensors.torch", st_one),
    }


def best_of(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
        del out
    return best


def run(gb: float, n_tensors: int, repeat: int, folder: str) -> dict[str, dict[str, float]]:
    params = make_params(int(gb * (1 << 30)), n_tensors)
    nbytes = sum(a.nbytes for a in params.values())
    paths: dict[str, str] = {}
    save_t = {k: float("inf") for k in writers(params)}
    load_t = {k: float("inf") for k in readers()}
    for r in range(repeat):  # alternate the order between repeats
        items = list(writers(params).items())
        for name, (suffix, write) in items if r % 2 == 0 else items[::-1]:
            path = paths.setdefault(name, os.path.join(folder, name.replace(" ", "_") + suffix))
            save_t[name] = min(save_t[name], best_of(lambda: write(path), 1))  # noqa: B023
        items = list(readers().items())
        for name, (source, read) in items if r % 2 == 0 else items[::-1]:
            load_t[name] = min(load_t[name], best_of(lambda: read(paths[source]), 1))  # noqa: B023
    one = next(iter(params))
    one_t = {name: best_of(lambda: read(paths[src]), max(repeat, 5))  # noqa: B023
             for name, (src, read) in one_tensor_readers(one).items()}  # fmt: skip
    check = io.load_tensors(paths["shrew.io .shrew"], names=[one])[one].numpy()
    np.testing.assert_array_equal(check, params[one])
    return {"bytes": {"n": nbytes}, "save": save_t, "load": load_t, "one": one_t}


def report(res: dict[str, dict[str, float]], gb: float, n_tensors: int) -> None:
    n = res["bytes"]["n"]
    print(f"{n / 1e9:.2f} GB of f32 in {n_tensors} tensors; best of N, warm page cache")
    bases = {"save": ("safetensors.torch+fsync",),
             "load": ("safetensors.numpy", "safetensors.torch")}  # fmt: skip
    for what, against in bases.items():
        head = "".join(f" {'/ ' + b:>26s}" for b in against)
        print(f"\n{what:<30s} {'seconds':>8s} {'GB/s':>7s}{head}")
        for name, t in res[what].items():
            ratios = "".join(f" {t / res[what][b]:25.2f}x" for b in against)
            print(f"{name:<30s} {t:8.3f} {n / t / 1e9:7.2f}{ratios}")
    print(f"\none tensor out of the {gb:g} GB file (target < 50 ms)")
    for name, t in res["one"].items():
        print(f"{name:<30s} {t * 1e3:8.2f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gb", type=float, default=1.0)
    ap.add_argument("--tensors", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    folder = tempfile.mkdtemp(prefix="bench_io_", dir=os.path.dirname(os.path.abspath(__file__)))
    try:
        report(run(args.gb, args.tensors, args.repeat, folder), args.gb, args.tensors)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# -- pytest-benchmark (small sizes) ---------------------------------------------------------
def _bench(benchmark, tmp_path, name: str, what: str) -> None:
    params = make_params(16 << 20, 8)
    table = writers(params)
    paths = {k: str(tmp_path / (k.replace(" ", "_") + s)) for k, (s, _) in table.items()}
    if what == "save":
        benchmark(table[name][1], paths[name])
    else:
        source, read = readers()[name]
        table[source][1](paths[source])
        benchmark(read, paths[source])


def test_save_shrew(benchmark, tmp_path):
    _bench(benchmark, tmp_path, "shrew.io .shrew", "save")


def test_load_shrew(benchmark, tmp_path):
    _bench(benchmark, tmp_path, "shrew.io .shrew", "load")


def test_load_safetensors_torch(benchmark, tmp_path):
    _bench(benchmark, tmp_path, "safetensors.torch", "load")


if __name__ == "__main__":
    main()
