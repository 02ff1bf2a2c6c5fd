#!/usr/bin/env python3
"""DDP report: (a) the overhead of resnet_ddp with one process over
resnet_single, beside PyTorch's own (its DDP at world size 1 over its plain
step), measured twice: step by step in one process
(//resnet/benchmarks:reducer_benchmark's DdpOverhead against
tools/peer/resnet_ddp_step.py --paired), where both sides see the same load
and the verdict is taken (after the first round, and printed at once), and as
separate binaries in alternating rounds
(against tools/peer/resnet_train_step.py and resnet_ddp_step.py --world 1), (b) resnet_ddp with 2 CPU processes on Gloo with and without
overlapping the gradient all-reduce with backward, at 25 MiB buckets and at one
bucket, and (c) resnet_ddp against Python PyTorch DDP
(tools/peer/resnet_ddp_step.py). All variants run in alternating rounds so that
they see the same machine load; it prints a Markdown report of the medians.

  bazel build //resnet:resnet_single //resnet:resnet_ddp //resnet/benchmarks:reducer_benchmark
  .venv/bin/python tools/ddp_report.py --depth 18 --batch 32 --steps 10 --rounds 3 --out ddp_report.md

The C++ figures are each binary's step_seconds.median (second epoch of two,
--max_steps steps each); the Python peer warms up for as many steps as it times.
The Python peers run torch.optim's fused SGD (--python_implementation), as
the C++ side does, and glibc's malloc set as the C++ binaries set it
(tools/records.py PEER_MALLOC_ENV). With --results FILE it also appends the (c) comparison as one cpp_vs_python
record (tools/records.py) to FILE, for tools/report.py.

On a GPU host (one GPU is enough) --device cuda measures (a) alone, with NCCL
and a device sync ending every step on both sides, in fp32 or, with
--precision fp16, with autocast and a GradScaler (tools/gpu_check.sh):

  python3 tools/ddp_report.py --device cuda --batch 512 --steps 100 --rounds 2 \
      --bin_dir build-gpu/resnet --python python3
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile

import records as result_records  # tools/records.py (main's `records` are the binaries')

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# Seconds any one command may take (main sets it on a GPU, where every run
# takes seconds and a hung NCCL peer must not use up the caller's time).
TIMEOUT = None
FAILED = []  # the commands try_json saw fail


def run(cmd, env=None):
    """Runs cmd (in `env`, default this process's); on failure prints its last
    lines and exits non-zero."""
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        sys.exit(f"ddp_report: no answer within {TIMEOUT} s from: {' '.join(map(str, cmd))}")
    return result_records.output_of("ddp_report", done)


def try_json(cmd, env=None):
    """The last line of cmd's output as JSON, or None when it fails (its last
    lines and one line naming it on stderr): a failing Python peer costs its
    own figures, not the report."""
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        print(f"ddp_report: no answer within {TIMEOUT} s from: {' '.join(map(str, cmd))}", file=sys.stderr)
        FAILED.append(cmd)
        return None
    if done.returncode != 0:
        FAILED.append(cmd)
        print("\n".join((done.stdout + done.stderr).strip().splitlines()[-15:]), file=sys.stderr)
        print(f"ddp_report: exit code {done.returncode} from: {' '.join(map(str, cmd))}", file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def median_or_none(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def run_binary(cmd, results):
    """Runs a resnet binary that appends one record to results; returns that record."""
    if os.path.exists(results):
        os.remove(results)
    run(cmd + [f"--results={results}"])
    with open(results) as f:
        return json.loads(f.read().strip().splitlines()[-1])


def ms(seconds):
    return "-" if seconds is None else f"{seconds * 1e3:.1f}"


def finish(report, out):
    """Prints the report, and writes it to `out` too where given."""
    print(report)
    if out:
        with open(out, "w") as f:
            f.write(report + "\n")


def step_by_step(args, benchmark, python_step_seconds):
    """(a) in one process: reducer_benchmark's DdpOverhead (resnet_single's step
    and resnet_ddp's, taking turns) and the Python peer's --paired run of about
    as long. Returns (C++ benchmark run or None where the benchmark has no such
    depth and batch, Python record or None where the peer failed)."""
    own_buckets = 0 if args.device == "cuda" else 1  # the reducer's default on each device
    name = f"DdpOverhead/{args.precision}/depth:{args.depth}/batch:{args.batch}/own_buckets:{own_buckets}/"
    # The benchmark takes the GPU where there is one: on the CPU it must not see it.
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="") if args.device == "cpu" else None
    out = run([benchmark, f"--benchmark_filter={name}", f"--benchmark_min_time={args.paired_seconds}",
               "--benchmark_format=json"], env).strip()
    report = json.loads(out) if out else {}  # nothing at all when no benchmark matches the filter
    cpp = report["benchmarks"][0] if report.get("benchmarks") else None
    steps = max(10, round(args.paired_seconds / (2 * python_step_seconds)))
    python = try_json([args.python, os.path.join(ROOT, "tools", "peer", "resnet_ddp_step.py"), "--paired",
                       "--world", "1", "--depth", str(args.depth), "--batch", str(args.batch),
                       "--steps", str(steps), "--warmup", "20" if args.device == "cuda" else "3",
                       "--device", args.device, "--precision", args.precision,
                       "--implementation", args.python_implementation], result_records.peer_env())
    return cpp, python


def in_process_lines(in_process):
    """The step-by-step part of (a) and the verdict line."""
    cpp, python = in_process
    lines = ["Step by step in one process: the plain step and the DDP step (world size 1) take turns, so that "
             "both see the same load.", "",
             "| implementation | plain step ms | DDP step ms | overhead (ratio of medians) | median of each pair's |",
             "| --- | --- | --- | --- | --- |"]
    if cpp:
        lines.append(f"| C++: reducer_benchmark {cpp['run_name']} ({int(cpp['iterations'])} pairs) | "
                     f"{cpp['single_ms']:.1f} | {cpp['ddp_ms']:.1f} | {cpp['overhead_pct']:+.1f} % | "
                     f"{cpp['paired_overhead_pct']:+.1f} % |")
    if python:
        lines.append(f"| Python: resnet_ddp_step.py --paired ({len(python['single_step_seconds'])} pairs) | "
                     f"{ms(python['median_single_seconds'])} | {ms(python['median_ddp_seconds'])} | "
                     f"{python['overhead_pct']:+.1f} % | {python['paired_overhead_pct']:+.1f} % |")
    lines.append("")
    py = (f"PyTorch's DDP measured the same way: {python['overhead_pct']:+.1f} %." if python
          else "PyTorch's DDP: not measured (its peer failed; see above).")
    if python and (python["single_skipped_steps"] or python["ddp_skipped_steps"]):
        py += (f" (Its GradScaler skipped {python['single_skipped_steps']} plain and "
               f"{python['ddp_skipped_steps']} DDP steps of those timed.)")
    if cpp is None:
        lines.append("Overhead: not measured in one process (reducer_benchmark's DdpOverhead runs depth 18 at batch "
                     "32 on the CPU, 512 on a GPU); the separate processes' figure is above. " + py)
    else:
        overhead = cpp["overhead_pct"]
        lines.append(f"Overhead: {overhead:+.1f} % step by step in one process (target: at most 3 %: "
                     f"{'met' if overhead <= 3 else 'NOT met'}). " + py)
    return lines + [""]


def overhead_pct(plain_seconds, ddp_seconds):
    """How much longer the DDP step takes than the plain one, in percent."""
    return (ddp_seconds / plain_seconds - 1) * 100


def hidden_fraction(wait_with_overlap, wait_without_overlap):
    """The share of the exposed all-reduce wait that overlapping with backward
    hid, or None where there was no wait to hide."""
    return 1 - wait_with_overlap / wait_without_overlap if wait_without_overlap > 0 else None


def build_report(args, pairs, records, python, python_single, python_ddp1_runs, in_process, machine, load):
    """The Markdown report of the rounds, and (C++, Python) median step seconds
    of the (c) comparison, or None where (c) was not measured (no pairs).

    records: each variant's binary records, one a round ("single", "ddp1" and
    the (overlap, bucket_cap_mb) pairs); python: the 2-process Python DDP runs;
    python_single: the plain Python step's median seconds each round (None
    where it failed); python_ddp1_runs: the 1-process Python DDP runs (None
    where failed); in_process: step_by_step's result; machine: CPU and count;
    load: the load average before the runs."""
    python_ddp1 = [p["median_step_seconds"] if p else None for p in python_ddp1_runs]
    torch_versions = [p["torch"] for p in python_ddp1_runs if p]

    def rounds(name):
        return ", ".join(ms(rec["step_seconds"]["median"]) for rec in records[name])

    step = {name: statistics.median(rec["step_seconds"]["median"] for rec in recs) for name, recs in records.items()}
    wait = {pair: statistics.median(rec["reducer"]["wait_seconds_per_step"] for rec in records[pair]) for pair in pairs}
    first = records["single"][0]
    lines = [
        f"# DDP report: ResNet-{args.depth} {args.precision}, batch {args.batch} per process, "
        "32x32 synthetic images",
        "",
        f"Machine: {machine} ({first['device']}), load average {load:.1f} before the runs; "
        f"LibTorch {first['libtorch_version']}, "
        f"Python torch {torch_versions[0] if torch_versions else '?'}. Medians of {args.rounds} alternating rounds; "
        f"C++: median step of the second of two {args.steps}-step epochs"
        + (", a device sync ending each step on both sides." if args.device == "cuda" else "."),
        "",
        "## (a) DDP overhead with one process" + (" (NCCL)" if args.device == "cuda" else ""),
        "",
        "Separate processes (resnet_single and resnet_ddp; the Python peers), in alternating rounds:",
        "",
        "| binary | ms per step (median) | rounds (ms) |",
        "| --- | --- | --- |",
        f"| resnet_single | {ms(step['single'])} | {rounds('single')} |",
        f"| resnet_ddp, 1 process | {ms(step['ddp1'])} | {rounds('ddp1')} |",
        "",
    ]
    overhead = overhead_pct(step["single"], step["ddp1"])
    py_single, py_ddp1 = median_or_none(python_single), median_or_none(python_ddp1)
    py_overhead = f"{overhead_pct(py_single, py_ddp1):+.1f} %" if py_single and py_ddp1 else "not measured"
    lines[-1:-1] = [
        f"| Python step (resnet_train_step.py) | {ms(py_single)} | {', '.join(ms(x) for x in python_single)} |",
        f"| Python DDP, 1 process (resnet_ddp_step.py --world 1) | {ms(py_ddp1)} | "
        f"{', '.join(ms(x) for x in python_ddp1)} |"]
    # Each round runs both binaries back to back, so a round's ratio cancels
    # load that changes between rounds; the median of those ratios is shown
    # beside the ratio of the medians.
    round_overheads = [overhead_pct(s["step_seconds"]["median"], d["step_seconds"]["median"])
                       for s, d in zip(records["single"], records["ddp1"])]
    lines += [f"Separate processes: {overhead:+.1f} % (ratio of the medians); PyTorch's DDP: {py_overhead}. "
              f"Round by round: {', '.join(f'{x:+.1f}' for x in round_overheads)} %, "
              f"median {statistics.median(round_overheads):+.1f} %.",
              ""]
    lines += in_process_lines(in_process)
    if not pairs:
        return "\n".join(lines), None

    lines += ["## (b) 2 processes on the CPU with Gloo", "",
              "bucket_cap_mb 25 is the default: gradients of 1 MiB or more are buckets of their own, the rest share. "
              "1000 also passes --own_bucket_min_mb=1000: every gradient after the 1 MiB first bucket in one.", "",
              "| overlap | bucket_cap_mb | buckets | MB per step | ms per step (median) | exposed wait ms/step "
              "| rounds (ms) |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for pair in pairs:
        rec = records[pair][0]["reducer"]
        lines.append(f"| {pair[0]} | {pair[1]} | {rec['buckets']} | {rec['bytes_per_step'] / 1e6:.1f} | "
                     f"{ms(step[pair])} | {ms(wait[pair])} | {rounds(pair)} |")
    lines.append("")
    for bucket in ("25", "1000"):
        hidden = hidden_fraction(wait[("true", bucket)], wait[("false", bucket)])
        lines.append(f"Hidden fraction at bucket_cap_mb={bucket}: "
                     + (f"{hidden:.0%} (1 - exposed wait with overlap / without)." if hidden is not None
                        else "- (no exposed wait without overlap to hide)."))
    lines.append("")

    py = statistics.median(p["median_step_seconds"] for p in python)
    cpp = step[("true", "25")]
    lines += ["## (c) C++ against Python DDP (2 processes, bucket 25 MiB, overlap, SyncBatchNorm)", "",
              "| implementation | ms per step (median) | rounds (ms) |", "| --- | --- | --- |",
              f"| resnet_ddp (fused SGD) | {ms(cpp)} | {rounds(('true', '25'))} |",
              f"| Python DDP (resnet_ddp_step.py, {python[0].get('implementation', '?')} SGD, "
              f"{python[0]['threads']} threads/process) | {ms(py)} | "
              f"{', '.join(ms(p['median_step_seconds']) for p in python)} |", "",
              f"Python / C++ step time: {py / cpp:.2f} (> 1: C++ faster)."]

    return "\n".join(lines), (cpp, py)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--depth", type=int, default=18, choices=[18, 34, 50])
    parser.add_argument("--batch", type=int, default=32, help="samples per process and step")
    parser.add_argument("--steps", type=int, default=10, help="steps per epoch (two epochs, the second timed)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bin_dir", default=os.path.join(ROOT, "bazel-bin", "resnet"))
    parser.add_argument("--python", default=os.path.join(ROOT, ".venv", "bin", "python"))
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                        help="cuda: only (a), with NCCL (one GPU); (b) and (c) need two processes on the CPU")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "fp16"],
                        help="fp16: autocast and a GradScaler on both sides (a GPU's mixed precision)")
    parser.add_argument("--overhead_only", action="store_true", help="measure (a) alone")
    parser.add_argument("--python_implementation", default="fused", choices=["default", "foreach", "fused"],
                        help="torch.optim.SGD's implementation in the Python peers (the C++ side runs fused SGD)")
    parser.add_argument("--paired_seconds", type=float, default=10,
                        help="about how long each side's step-by-step comparison in one process runs")
    parser.add_argument("--out", help="also write the Markdown report here")
    parser.add_argument("--results", metavar="FILE",
                        help="also append the C++ against Python comparison to this JSON Lines file")
    args = parser.parse_args()
    for name in ("batch", "steps", "rounds"):
        if getattr(args, name) < 1:
            sys.exit(f"ddp_report: --{name} must be at least 1")
    single, ddp = (os.path.join(args.bin_dir, name) for name in ("resnet_single", "resnet_ddp"))
    benchmark = os.path.join(args.bin_dir, "benchmarks", "reducer_benchmark")
    for path in (single, ddp, benchmark):
        if not os.path.exists(path):
            sys.exit(f"ddp_report: {path} not found: bazel build //resnet:resnet_single //resnet:resnet_ddp "
                     "//resnet/benchmarks:reducer_benchmark, or pass --bin_dir")
    resolved = args.python if os.sep in args.python else shutil.which(args.python)  # a path, or a name on PATH
    if not resolved or not os.path.exists(resolved):
        sys.exit(f"ddp_report: --python {args.python} not found")
    args.python = resolved
    global TIMEOUT
    TIMEOUT = 120 if args.device == "cuda" else None
    if args.paired_seconds <= 0:
        sys.exit("ddp_report: --paired_seconds must be positive")
    if args.precision == "fp16" and args.device != "cuda":
        sys.exit("ddp_report: --precision fp16 needs --device cuda (a CPU has no fast fp16 kernels)")
    overhead_only = args.overhead_only or args.device == "cuda"
    if args.results and overhead_only:
        sys.exit("ddp_report: --results records the (c) comparison, which --device cuda and --overhead_only leave out")
    if args.results:
        result_records.check_writable(args.results, "ddp_report")

    d = str(args.depth)
    common = ["--dataset=synthetic", f"--synthetic_size={args.batch * args.steps * 2}",
              f"--batch_size={args.batch}", "--epochs=2", f"--max_steps={args.steps}", "--augment=false",
              "--workers=1", "--models_dir="]
    if args.device == "cuda":
        common += ["--device=cuda", "--sync_each_step"]  # the peers sync each step on a GPU too
    else:
        common += ["--device=cpu"]  # as the peers, also on a host with a GPU
    cpu = ["--backend=gloo"]
    mixed = args.precision == "fp16"
    variants = {  # name -> command (without --results)
        "single": [single, f"--depths={d}", "--modes=" + ("mixed" if mixed else "fp32")] + common,
        "ddp1": [ddp, d, "1", "1" if mixed else "0"] + common,
    }
    pairs = [] if overhead_only else [(overlap, bucket) for overlap in ("true", "false") for bucket in ("25", "1000")]
    for overlap, bucket in pairs:
        variants[(overlap, bucket)] = [ddp, d, "2", "0"] + common + cpu + [
            f"--overlap={overlap}", f"--bucket_cap_mb={bucket}"]
        if bucket == "1000":  # one bucket: the large gradients too, which are otherwise their own
            variants[(overlap, bucket)].append("--own_bucket_min_mb=1000")
    peer = [args.python, os.path.join(ROOT, "tools", "peer", "resnet_ddp_step.py"), "--depth", d,
            "--batch", str(args.batch), "--world", "2", "--bucket_cap_mb", "25",
            "--steps", str(args.steps), "--warmup", str(args.steps),
            "--implementation", args.python_implementation]

    # PyTorch's own one-process overhead, measured the same way: its DDP at
    # world size 1 against its plain training step.
    on = ["--device", args.device, "--precision", args.precision, "--implementation", args.python_implementation]
    peer_single = [args.python, os.path.join(ROOT, "tools", "peer", "resnet_train_step.py"), "--depth", d,
                   "--batch", str(args.batch), "--steps", str(args.steps), "--warmup", str(args.steps)] + on
    peer_ddp1 = [args.python, os.path.join(ROOT, "tools", "peer", "resnet_ddp_step.py"), "--depth", d,
                 "--batch", str(args.batch), "--world", "1", "--steps", str(args.steps),
                 "--warmup", str(args.steps)] + on

    load = os.getloadavg()[0]  # other work on the machine skews every figure below
    records = {name: [] for name in variants}
    python = []
    python_single, python_ddp1_runs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        results = os.path.join(tmp, "results.jsonl")
        for r in range(args.rounds):
            for name, cmd in variants.items():
                records[name].append(run_binary(cmd, results))
            if not overhead_only:
                python.append(json.loads(run(peer, result_records.peer_env()).strip().splitlines()[-1]))
            step_run = try_json(peer_single, result_records.peer_env())
            python_single.append(step_run["median_ms"] / 1e3 if step_run else None)
            python_ddp1_runs.append(try_json(peer_ddp1, result_records.peer_env()))
            # Each round's figures as it ends, so that a run cut short still tells something.
            ddp1_run = python_ddp1_runs[-1]
            print(f"round {r + 1}/{args.rounds}: resnet_single {ms(records['single'][-1]['step_seconds']['median'])} "
                  f"ms, resnet_ddp (1 process) {ms(records['ddp1'][-1]['step_seconds']['median'])} ms, "
                  f"Python step {ms(python_single[-1])} ms, "
                  f"Python DDP {ms(ddp1_run['median_step_seconds'] if ddp1_run else None)} ms",
                  file=sys.stderr, flush=True)
            if r == 0:
                # The verdict, step by step in one process, early rather than last.
                in_process = step_by_step(args, benchmark, median_or_none(python_single) or 0.01)
                print("\n".join(in_process_lines(in_process)), file=sys.stderr, flush=True)

    report, compared = build_report(args, pairs, records, python, python_single, python_ddp1_runs, in_process,
                                    f"{cpu_name()}, {os.cpu_count()} CPUs", load)
    finish(report, args.out)
    if args.results:
        cpp, py = compared
        cpp_rounds = records[("true", "25")]
        rec = cpp_rounds[0]
        result_records.append_all(args.results, [result_records.comparison(
            f"resnet{args.depth} ddp 2 processes", "fp32", batch_size=args.batch, threads=rec.get("threads"),
            cpp_seconds=cpp, python_seconds=py, rounds=args.rounds, libtorch_version=rec["libtorch_version"],
            python_torch_version=python[0]["torch"], device=rec.get("device", "cpu"),
            device_name=rec.get("device_name"), model=f"resnet{args.depth}", per="step", processes=2,
            backend="gloo", bucket_cap_mb=25, overlap=True, sync_batchnorm=True,
            python_threads=python[0]["threads"], cpp_round_seconds=[r["step_seconds"]["median"] for r in cpp_rounds],
            python_round_seconds=[p["median_step_seconds"] for p in python])], "ddp_report")


if __name__ == "__main__":
    main()
    if FAILED:  # the report went out with "-" for them; the exit status says so
        sys.exit(f"ddp_report: {len(FAILED)} Python peer run(s) failed (above); the C++ figures stand")
