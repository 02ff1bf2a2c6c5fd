#!/usr/bin/env python3
"""C++ against Python for ResNet inference on the CPU: runs
//resnet/benchmarks:resnet_infer_benchmark and tools/peer/resnet_infer.py for
the same depth, batch and variants in alternating rounds, and prints a
Markdown table of median ms per batch with the C++/Python speed ratio and each
variant's speed-up over eager.

  bazel build //resnet/benchmarks:resnet_infer_benchmark
  .venv/bin/python tools/infer_report.py --depth 50 --batch 32 --rounds 3
  .venv/bin/python tools/infer_report.py --depth 18 --batch 32 --rounds 1 --results results.jsonl

With --results FILE it also appends one cpp_vs_python record per variant
(tools/records.py) with both medians and their ratio to FILE, for
tools/report.py.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

import records

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VARIANTS = ["eager", "torchscript-frozen", "int8", "int8-torchscript"]


def cpp_round(binary, depth, batch, min_time):
    pattern = "^(" + "|".join(VARIANTS) + f")/depth:{depth}/batch:{batch}/real_time$"
    command = [binary, f"--benchmark_filter={pattern}", f"--benchmark_min_time={min_time}", "--benchmark_format=json"]
    out = records.output_of("infer_report", subprocess.run(command, capture_output=True, text=True))
    if not out.strip():  # Google Benchmark prints nothing to stdout when the filter matches no benchmark
        listed = subprocess.run([binary, "--benchmark_list_tests"], capture_output=True, text=True).stdout.split()
        shapes = sorted({"/".join(n.split("/")[1:3]) for n in listed if n.split("/")[0] in VARIANTS})
        sys.exit(f"infer_report: {binary} has no benchmark for depth {depth} at batch {batch}; the --depth/--batch "
                 f"pairs it has: {', '.join(shapes) or 'none'}")
    report = records.json_of("infer_report", out, command)
    # The median batch, as the Python peer reports (real_time is the mean; older binaries lack the counter).
    return ({run["name"].split("/")[0]: run.get("median_ms", run["real_time"]) for run in report["benchmarks"]},
            report["context"])


def python_round(depth, batch, iters):
    command = [sys.executable, os.path.join(ROOT, "tools", "peer", "resnet_infer.py"), "--depth", str(depth),
               "--batch", str(batch), "--iters", str(iters)]
    out = records.output_of("infer_report", subprocess.run(command, capture_output=True, text=True,
                                                           env=records.peer_env()))
    results = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return {r["variant"]: r["median_ms"] for r in results}, results[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", default=os.path.join(ROOT, "bazel-bin/resnet/benchmarks/resnet_infer_benchmark"))
    parser.add_argument("--depth", type=int, default=50)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iters", type=int, default=20, help="Python batches per variant and round")
    parser.add_argument("--min_time", type=float, default=1.0, help="C++ seconds per variant and round")
    parser.add_argument("--results", metavar="FILE",
                        help="also append a cpp_vs_python record per variant to this JSON Lines file")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if not os.path.exists(args.binary):
        sys.exit(f"infer_report: {args.binary} not found: bazel build //resnet/benchmarks:resnet_infer_benchmark")
    if args.results:
        records.check_writable(args.results, "infer_report")
    cpp = {v: [] for v in VARIANTS}
    py = {v: [] for v in VARIANTS}
    for r in range(args.rounds):
        times, context = cpp_round(args.binary, args.depth, args.batch, args.min_time)
        for v in VARIANTS:
            cpp[v].append(times[v])
        times, peer = python_round(args.depth, args.batch, args.iters)
        for v in VARIANTS:
            py[v].append(times[v])
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    c = {v: statistics.median(cpp[v]) for v in VARIANTS}
    p = {v: statistics.median(py[v]) for v in VARIANTS}
    print(f"ResNet-{args.depth} inference, batch {args.batch}, 32x32, on {context.get('device_name', '?')} (cpu), "
          f"LibTorch {context['libtorch_version']} / Python torch {peer['torch_version']}, {peer['threads']} threads, "
          f"median of {args.rounds} alternating rounds\n")
    print("| variant | C++ ms/batch | Python ms/batch | C++ / Python speed | C++ speed-up vs C++ eager |")
    print("| --- | --- | --- | --- | --- |")
    for v in VARIANTS:
        print(f"| {v} | {c[v]:.2f} | {p[v]:.2f} | {p[v] / c[v]:.2f}x | {c['eager'] / c[v]:.2f}x |")
    if args.results:
        threads = context.get("torch_threads")
        records.append_all(args.results, [records.comparison(
            f"resnet{args.depth} cpu inference", v, batch_size=args.batch,
            threads=int(threads) if str(threads).isdigit() else peer["threads"], cpp_seconds=c[v] / 1e3,
            python_seconds=p[v] / 1e3, rounds=args.rounds, libtorch_version=context["libtorch_version"],
            python_torch_version=peer["torch_version"], device="cpu", device_name=context.get("device_name"),
            model=f"resnet{args.depth}", per="batch", python_threads=peer["threads"],
            python_model_source=peer.get("model_source"), cpp_round_seconds=[x / 1e3 for x in cpp[v]],
            python_round_seconds=[x / 1e3 for x in py[v]]) for v in VARIANTS], "infer_report")


if __name__ == "__main__":
    main()
