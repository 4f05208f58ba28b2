"""Benchmark: parse + lower + validate + optimise a generated 5,000-node .sw program.

Run: python benchmarks/bench_ir.py [--nodes 5000] [--repeat 5]
Prints the best wall time of each stage and the total. The figure is recorded in
shrew_ir/README.md (it is a benchmark, not a timed test). Under pytest-benchmark
(``pytest benchmarks/bench_ir.py --benchmark-only``) the whole pipeline is the timed body.
"""

from __future__ import annotations

import argparse
import time

import shrew_ir

NODES_PER_BLOCK = 8  # 2 params + matmul, transpose, add, relu, mul, constant


def generate(nodes: int) -> str:
    """A deep MLP-like graph: each block is relu(x @ transpose(w) + b) * 1.0."""
    blocks = max(1, nodes // NODES_PER_BLOCK)
    lines = [
        '@model { name: "bench"; }',
        "@config { width: 16; }",
        "@graph Forward {",
        "    input x0: Tensor<[Batch, width], f32>;",
    ]
    for i in range(1, blocks + 1):
        lines += [
            f'    param w{i}: Tensor<[width, width], f32> {{ init: "xavier_uniform"; }};',
            f'    param b{i}: Tensor<[width], f32> {{ init: "zeros"; }};',
            f"    node x{i} {{ op: relu(matmul(x{i - 1}, transpose(w{i})) + b{i}) * 1.0; }};",
        ]
    lines += [f"    output x{blocks};", "}", "@training { loss: mse_loss; epochs: 1; }"]
    return "\n".join(lines) + "\n"


def run_once(source: str) -> dict[str, float]:
    times = {}
    t0 = time.perf_counter()
    program = shrew_ir.parse(source, "bench.sw")
    t1 = time.perf_counter()
    module = shrew_ir.lower(program)
    t2 = time.perf_counter()
    diags = shrew_ir.validate(module)
    t3 = time.perf_counter()
    report = shrew_ir.optimize(module, level=2)
    t4 = time.perf_counter()
    if any(d.is_error for d in diags):
        raise SystemExit("the generated program does not validate")
    times.update(parse=t1 - t0, lower=t2 - t1, validate=t3 - t2, optimize=t4 - t3, total=t4 - t0)
    times["nodes_before"] = report.nodes_before["Forward"]
    times["nodes_after"] = report.nodes_after["Forward"]
    return times


def test_pipeline(benchmark):
    source = generate(5000)
    benchmark.group = "shrew_ir parse+lower+validate+optimize, 5,000 nodes"
    times = benchmark.pedantic(run_once, args=(source,), rounds=5, iterations=1)
    benchmark.extra_info.update({k: v for k, v in times.items() if not k.startswith("nodes")})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    source = generate(args.nodes)
    runs = [run_once(source) for _ in range(args.repeat)]
    best = {k: min(r[k] for r in runs) for k in runs[0]}
    print(f"program: {len(source.splitlines())} lines, {int(best['nodes_before'])} IR nodes"
          f" -> {int(best['nodes_after'])} after optimize(level=2)")
    for stage in ("parse", "lower", "validate", "optimize", "total"):
        print(f"  {stage:<9} {best[stage] * 1000:8.1f} ms  (best of {args.repeat})")


if __name__ == "__main__":
    main()
