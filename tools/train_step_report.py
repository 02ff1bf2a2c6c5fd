#!/usr/bin/env python3
"""C++ against Python: times one ResNet training step of resnet_single's loop
(//resnet/benchmarks:train_step_benchmark) and the same step in Python PyTorch
eager (tools/peer/resnet_train_step.py) in one run, alternating rounds so that
both see the same machine load, and prints a Markdown table with the ratio.

  bazel build //resnet/benchmarks:train_step_benchmark
  .venv/bin/python tools/train_step_report.py --depth 18 --batch 64 --rounds 5
  .venv/bin/python tools/train_step_report.py --depth 18 --batch 32 --rounds 1 --results results.jsonl
  .venv/bin/python tools/train_step_report.py --optimizer_kernels foreach --python_implementation default

C++ runs its SGD on fused kernels unless --optimizer_kernels foreach; Python
runs torch.optim.SGD on the same kernels (fused=True or foreach=True) unless
--python_implementation says otherwise (default: torch.optim's default, foreach
on a GPU and a loop over parameters on the CPU).

With --results FILE it also appends one cpp_vs_python record (tools/records.py)
with both medians and their ratio to FILE, for tools/report.py.

The Python peer must run on the same LibTorch the C++ binary links (.venv's).
"""
import argparse
import os
import platform
import statistics
import subprocess
import sys

import records

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cpp_round(binary, precision, depth, batch, min_time, kernels):
    fused = 1 if kernels == "fused" else 0
    name = f"{precision}/depth:{depth}/batch:{batch}/channels_last:0/fused:{fused}/real_time"
    command = [binary, f"--benchmark_filter=^{name}$", f"--benchmark_min_time={min_time}", "--benchmark_format=json"]
    out = records.output_of("train_step_report", subprocess.run(command, capture_output=True, text=True))
    if not out.strip():  # Google Benchmark prints nothing to stdout when the filter matches no benchmark
        listed = subprocess.run([binary, "--benchmark_list_tests"], capture_output=True, text=True).stdout.split()
        shapes = sorted({"/".join(n.split("/")[1:3]) for n in listed
                         if n.startswith(precision + "/") and f"/fused:{fused}/" in n})
        sys.exit(f"train_step_report: {binary} has no benchmark {name}; --depth/--batch pairs it has for "
                 f"{precision} on {kernels} kernels: {', '.join(shapes) or 'none'}")
    report = records.json_of("train_step_report", out, command)
    runs = report["benchmarks"]
    if not runs:
        sys.exit(f"train_step_report: benchmark {name} did not run")
    return runs[0]["median_ms"], report["context"]  # the median step in ms, as the Python peer's


def python_round(precision, depth, batch, steps, implementation):
    command = [sys.executable, os.path.join(ROOT, "tools", "peer", "resnet_train_step.py"), "--depth", str(depth),
               "--batch", str(batch), "--steps", str(steps), "--precision", precision,
               "--implementation", implementation]
    out = records.output_of("train_step_report", subprocess.run(command, capture_output=True, text=True,
                                                                env=records.peer_env()))
    result = records.json_of("train_step_report", out, command)
    return result["median_ms"], result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", default=os.path.join(ROOT, "bazel-bin/resnet/benchmarks/train_step_benchmark"))
    parser.add_argument("--depth", type=int, default=18)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20, help="Python steps per round")
    parser.add_argument("--min_time", type=float, default=2.0, help="C++ seconds per round")
    parser.add_argument("--optimizer_kernels", default="fused", choices=["fused", "foreach"],
                        help="the C++ SGD's kernels")
    parser.add_argument("--python_implementation", choices=["default", "foreach", "fused"],
                        help="torch.optim.SGD's implementation in the peer (default: the C++ side's "
                             "--optimizer_kernels, so that both run the same kernels)")
    parser.add_argument("--results", metavar="FILE", help="also append a cpp_vs_python record to this JSON Lines file")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.python_implementation is None:
        args.python_implementation = args.optimizer_kernels
    if not os.path.exists(args.binary):
        sys.exit(f"train_step_report: {args.binary} not found: bazel build //resnet/benchmarks:train_step_benchmark")
    if args.results:
        records.check_writable(args.results, "train_step_report")

    cpp, py = [], []
    for r in range(args.rounds):
        ms, context = cpp_round(args.binary, args.precision, args.depth, args.batch, args.min_time,
                                args.optimizer_kernels)
        cpp.append(ms)
        ms, peer = python_round(args.precision, args.depth, args.batch, args.steps, args.python_implementation)
        py.append(ms)
        print(f"round {r + 1}/{args.rounds}: C++ {cpp[-1]:.1f} ms, Python {py[-1]:.1f} ms", file=sys.stderr)
    c, p = statistics.median(cpp), statistics.median(py)
    print(f"ResNet-{args.depth} {args.precision} training step, batch {args.batch}, 32x32, on "
          f"{context.get('device_name', platform.processor())} ({context['device']}), "
          f"LibTorch {context['libtorch_version']} / Python torch {peer['torch_version']}, "
          f"{peer['threads']} threads, median of {args.rounds} alternating rounds\n")
    print("| implementation | ms per step (median) | rounds (ms) | images/s |")
    print("| --- | --- | --- | --- |")
    print(f"| C++ (ResNetTrainer::Step, batch on the device, {args.optimizer_kernels} SGD) | {c:.1f} | {', '.join(f'{x:.1f}' for x in cpp)} | {args.batch / c * 1e3:.0f} |")
    print(f"| Python eager ({peer['model_source']}, {peer['implementation']} SGD) | {p:.1f} | {', '.join(f'{x:.1f}' for x in py)} | "
          f"{args.batch / p * 1e3:.0f} |")
    print(f"\nC++ speed relative to Python: {p / c:.2f}x")
    if args.results:
        threads = context.get("torch_threads")
        records.append_all(args.results, [records.comparison(
            f"resnet{args.depth} train step", args.precision, batch_size=args.batch,
            threads=int(threads) if str(threads).isdigit() else peer["threads"], cpp_seconds=c / 1e3,
            python_seconds=p / 1e3, rounds=args.rounds, libtorch_version=context["libtorch_version"],
            python_torch_version=peer["torch_version"], device=context["device"],
            device_name=context.get("device_name"), model=f"resnet{args.depth}", per="step",
            python_threads=peer["threads"], python_model_source=peer["model_source"],
            cpp_optimizer_kernels=args.optimizer_kernels, python_implementation=peer["implementation"],
            cpp_round_seconds=[x / 1e3 for x in cpp], python_round_seconds=[x / 1e3 for x in py])],
            "train_step_report")


if __name__ == "__main__":
    main()
