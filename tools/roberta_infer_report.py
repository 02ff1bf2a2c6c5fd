#!/usr/bin/env python3
"""C++ against Python for RoBERTa/XLM-R inference on the CPU: runs
//roberta:roberta_infer (eager, --script, --quantize) and
tools/peer/roberta_forward.py (transformers: eager, torchscript, int8) for the
same model, batch, sequence length and threads in alternating rounds, and
prints a Markdown report of median ms per batch, the int8 speed-up over fp32
on each side, and the C++/Python speed ratio per variant.

Both sides run batch x seq shapes with lengths drawn from [seq/2, seq] and
padded to seq under an attention mask (roberta_infer's synthetic data with
--pad_to_max_len, the peer's --random_lengths); the token ids differ.

  bazel build //roberta:roberta_infer
  python3 tools/roberta_infer_report.py --model roberta-base --batch 32 --seq 128 --threads 2 --out report.md

With --results FILE it also appends one cpp_vs_python record per variant
(tools/records.py) with both medians and their ratio to FILE, for
tools/report.py.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile

import records

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# (row label, roberta_infer flags, peer variant)
VARIANTS = [("fp32 eager", [], "eager"), ("fp32 TorchScript (frozen)", ["--script"], "torchscript"),
            ("dynamic int8", ["--quantize"], "int8")]


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def cpp_run(args, flags):
    """Runs roberta_infer once; returns its results record."""
    with tempfile.TemporaryDirectory() as tmp:
        results = os.path.join(tmp, "results.jsonl")
        command = [args.bin, f"--model_name={args.model}", f"--batch_size={args.batch}", f"--max_len={args.seq}",
                   "--pad_to_max_len", f"--synthetic_size={args.batch * args.batches}", "--warmup_batches=2",
                   f"--threads={args.threads}", f"--results={results}", "--log=", *flags]
        run = subprocess.run(command, capture_output=True, text=True)
        if run.returncode != 0:
            sys.exit(f"roberta_infer_report: {' '.join(command)} failed:\n{run.stderr}")
        with open(results) as f:
            return [json.loads(line) for line in f if line.strip()][-1]


def python_run(args):
    """Runs the peer once for all variants; returns {variant: record}."""
    command = [args.python, os.path.join(ROOT, "tools", "peer", "roberta_forward.py"), "--model", args.model,
               "--variant", ",".join(v[2] for v in VARIANTS), "--batch", str(args.batch), "--seq", str(args.seq),
               "--random_lengths", "--iters", str(args.batches), "--warmup", "2", "--threads", str(args.threads)]
    run = subprocess.run(command, capture_output=True, text=True, env=records.peer_env())
    if run.returncode != 0:
        sys.exit(f"roberta_infer_report: {' '.join(command)} failed:\n{run.stderr}")
    lines = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    return {r["variant"]: r for r in lines}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="roberta-base")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batches", type=int, default=4, help="timed batches per run (after 2 warm-up batches)")
    parser.add_argument("--bin", default=os.path.join(ROOT, "bazel-bin", "roberta", "roberta_infer"))
    peer_venv = os.path.join(ROOT, ".venv-peer", "bin", "python")
    parser.add_argument("--python", default=peer_venv if os.path.exists(peer_venv) else "/tmp/hfvenv/bin/python",
                        help="a Python with torch and transformers (tools/setup.sh --peer makes .venv-peer)")
    parser.add_argument("--out", help="also write the report to this file (after the records are appended)")
    parser.add_argument("--results", metavar="FILE",
                        help="also append a cpp_vs_python record per variant to this JSON Lines file")
    args = parser.parse_args()
    if args.out:  # checked before the measurement, which takes minutes
        folder = os.path.dirname(os.path.abspath(args.out))
        if not (os.path.isdir(folder) and os.access(folder, os.W_OK)):
            parser.error(f"--out {args.out}: cannot write a file in {folder}")
    if not os.access(args.bin, os.X_OK):
        sys.exit(f"roberta_infer_report: {args.bin} not found: bazel build //roberta:roberta_infer")
    if not os.access(args.python, os.X_OK):
        sys.exit(f"roberta_infer_report: no Python at {args.python}: run tools/setup.sh --peer or give --python")
    if min(args.batch, args.seq, args.threads, args.rounds, args.batches) < 1:
        sys.exit("roberta_infer_report: --batch, --seq, --threads, --rounds and --batches must be at least 1")
    if args.results:
        records.check_writable(args.results, "roberta_infer_report")

    load_before = os.getloadavg()[0]
    cpp = {label: [] for label, _, _ in VARIANTS}
    py = {label: [] for label, _, _ in VARIANTS}
    cpp_variant = {}  # label -> roberta_infer's name for it ("int8-dynamic", ...)
    for r in range(args.rounds):
        for label, flags, _ in VARIANTS:
            last_cpp = cpp_run(args, flags)
            cpp_variant[label] = last_cpp.get("variant", label)
            cpp[label].append(1e3 * last_cpp["batch_seconds"]["median"])
        peer = python_run(args)
        for label, _, variant in VARIANTS:
            py[label].append(peer[variant]["median_ms"])
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)

    c = {label: statistics.median(ms) for label, ms in cpp.items()}
    p = {label: statistics.median(ms) for label, ms in py.items()}
    any_peer = next(iter(peer.values()))
    lines = [
        f"# {args.model} inference on the CPU: C++ (LibTorch) against Python (transformers)",
        "",
        f"- machine: {cpu_model()}, {os.cpu_count()} cores; {args.threads} intra-op threads on both sides; "
        f"1-minute load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after (other work skews the figures)",
        f"- C++: roberta_infer, LibTorch {last_cpp.get('libtorch_version', '?')}, git {last_cpp.get('git_revision', '?')}",
        f"- Python: transformers {any_peer['transformers']}, torch {any_peer['torch']}, SDPA attention, "
        f"int8 engine {peer['int8'].get('quantized_engine', '?')}",
        f"- work: batch {args.batch} x seq {args.seq}, random weights, 4 labels; lengths drawn from "
        f"[{args.seq // 2}, {args.seq}] and padded to {args.seq} under a mask on both sides (same shapes, "
        f"different token ids)",
        f"- each figure: median over {args.rounds} alternating rounds of the median of {args.batches} timed "
        f"batches (after 2 warm-up batches)",
        "",
        "| variant | C++ ms/batch | Python ms/batch | C++ / Python speed (>1: C++ faster) |",
        "| --- | --- | --- | --- |",
    ]
    for label, _, _ in VARIANTS:
        lines.append(f"| {label} | {c[label]:.1f} | {p[label]:.1f} | {p[label] / c[label]:.2f}x |")
    lines += [
        "",
        f"int8 speed-up over fp32 eager: C++ {c['fp32 eager'] / c['dynamic int8']:.2f}x, "
        f"Python {p['fp32 eager'] / p['dynamic int8']:.2f}x.",
        "",
        "Per-round medians (ms): " + "; ".join(
            f"{label}: C++ {', '.join(f'{x:.1f}' for x in cpp[label])} / Python {', '.join(f'{x:.1f}' for x in py[label])}"
            for label, _, _ in VARIANTS) + ".",
    ]
    report = "\n".join(lines) + "\n"
    print(report, end="")
    if args.results:
        records.append_all(args.results, [records.comparison(
            f"{args.model} cpu inference", cpp_variant[label], batch_size=args.batch, threads=args.threads,
            cpp_seconds=c[label] / 1e3, python_seconds=p[label] / 1e3, rounds=args.rounds,
            libtorch_version=last_cpp.get("libtorch_version", "?"), python_torch_version=any_peer["torch"],
            device="cpu", device_name=last_cpp.get("device_name"), model=args.model, per="batch",
            sequence_length=args.seq, random_lengths=True, batches=args.batches, python_variant=variant,
            transformers_version=any_peer["transformers"], python_threads=any_peer.get("threads"),
            cpp_round_seconds=[x / 1e3 for x in cpp[label]], python_round_seconds=[x / 1e3 for x in py[label]]) for label, _, variant in VARIANTS],
            "roberta_infer_report")
    if args.out:
        try:
            with open(args.out, "w") as f:
                f.write(report)
        except OSError as e:
            sys.exit(f"roberta_infer_report: cannot write --out {args.out}: {e.strerror or e}")


if __name__ == "__main__":
    main()
