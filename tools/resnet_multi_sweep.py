#!/usr/bin/env python3
"""The study's multi-device grid: ResNet-18/34/50 x 1/2/4 devices x fp32/mixed
for resnet_dp (one process over N GPUs, global batch 1024) and resnet_ddp (one
process per GPU, batch 512 per process), plus, on the most devices, each binary
with the other batch size (resnet_dp at 512, resnet_ddp at 1024; these models
are not saved), so that 512 can be set against 1024. Every run appends its
record to --results.

On a host without GPUs (none listed by `nvidia-smi -L`) it runs the CPU
variants only, with short budgets: resnet_dp with 1 and 2 CPU replicas (after
its notice) and resnet_ddp with 1 and 2 CPU processes; it names each skipped
configuration and why. Models go to --models_dir, models/sweep by default (as
tools/sweep.py's), so that the user's trained models in models/ are never
replaced. A failed run is reported and the sweep goes on; the exit status is 1
if any run failed.

  bazel build //resnet:resnet_dp //resnet:resnet_ddp
  .venv/bin/python tools/resnet_multi_sweep.py --depths 18,50 --results results/resnet_multi.jsonl
  .venv/bin/python tools/resnet_multi_sweep.py --quick --dry_run
"""
import argparse
import os
import shlex
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEVICES = [1, 2, 4]
BATCH = {"resnet_dp": 1024, "resnet_ddp": 512}  # the study's: global for resnet_dp, per process for resnet_ddp
OTHER_BATCH = {"resnet_dp": 512, "resnet_ddp": 1024}


def gpu_count():
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


def plan(args, gpus):
    """Returns the commands to run and the lines naming what is skipped."""
    runs, skipped = [], []
    if gpus:
        counts = {name: [n for n in DEVICES if n <= gpus] for name in BATCH}
        why = {name: f"needs more GPUs than the {gpus} here" for name in BATCH}
    else:
        # On the CPU every replica or process shares the same cores: 4 of them
        # would show contention, not a scaling the study measured.
        counts = {"resnet_dp": [1, 2], "resnet_ddp": [1, 2]}
        why = {"resnet_dp": "no GPU here: on the CPU resnet_dp runs 1 and 2 replicas only (they share the cores)",
               "resnet_ddp": "no GPU here: on the CPU resnet_ddp runs 1 and 2 processes only (they share the cores)"}
    scale = 16 if args.quick else 1
    flags = [f"--epochs={args.epochs}", f"--max_steps={args.max_steps}", f"--dataset={args.dataset}",
             f"--results={args.results}"]
    if not gpus:
        flags.append("--test_limit=512")  # a short evaluation on the CPU too

    def command(name, depth, n, mixed, batch, models_dir=args.models_dir):
        return [os.path.join(args.bin_dir, name), str(depth), str(n), str(mixed), f"--batch_size={batch // scale}"] + \
            flags + [f"--models_dir={models_dir}"]

    for depth in args.depths:
        for name in BATCH:
            for n in DEVICES:
                for mixed in (0, 1):
                    if n in counts[name]:
                        runs.append(command(name, depth, n, mixed, BATCH[name]))
                    else:
                        skipped.append(f"skipped: {name} {depth} {n} {mixed}: {why[name]}")
    for depth in args.depths:
        for name in BATCH:
            for mixed in (0, 1):
                # Not saved: the model would replace the one trained with the study's batch.
                runs.append(command(name, depth, max(counts[name]), mixed, OTHER_BATCH[name], models_dir=""))
    return runs, skipped


def minutes(seconds):
    return f"{seconds / 60:.1f} min"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--depths", help="comma-separated ResNet depths (default: 18,34,50; --quick: 18)")
    parser.add_argument("--epochs", type=int, help="default: 20 (the study) with GPUs, 2 without")
    parser.add_argument("--max_steps", type=int, help="steps per epoch, 0: whole epochs (default: 0 with GPUs, "
                        "10 without, 3 with --quick)")
    parser.add_argument("--dataset", default="fashion-mnist", help="cifar10, fashion-mnist or synthetic")
    parser.add_argument("--results", default=os.path.join("results", "resnet_multi.jsonl"))
    parser.add_argument("--models_dir", default=os.path.join("models", "sweep"),
                        help="where models are saved (empty: not saved); not models/, so that trained ones stay")
    parser.add_argument("--bin_dir", default=os.path.join(ROOT, "bazel-bin", "resnet"))
    parser.add_argument("--dry_run", action="store_true", help="print the commands only")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke test: depth 18, 2 epochs of 3 steps, batch sizes / 16")
    args = parser.parse_args()
    try:
        args.depths = [int(d) for d in (args.depths or ("18" if args.quick else "18,34,50")).split(",")]
    except ValueError:
        parser.error(f"--depths {args.depths}: not comma-separated numbers (18,34,50)")

    gpus = gpu_count()
    if args.epochs is None:
        args.epochs = 2 if args.quick or not gpus else 20
    if args.max_steps is None:
        args.max_steps = 3 if args.quick else 0 if gpus else 10
    runs, skipped = plan(args, gpus)
    print(f"resnet_multi_sweep: {gpus} GPUs; {len(runs)} runs, {len(skipped)} configurations skipped")
    for line in skipped:
        print(line)
    if not args.dry_run:
        os.makedirs(os.path.dirname(os.path.abspath(args.results)), exist_ok=True)
        if args.models_dir:
            os.makedirs(args.models_dir, exist_ok=True)

    failed, durations = [], []
    for i, cmd in enumerate(runs, 1):
        line = shlex.join(cmd)
        eta = f" (ETA {minutes(sum(durations) / len(durations) * (len(runs) - i + 1))})" if durations else ""
        print(f"[{i}/{len(runs)}]{eta} {line}", flush=True)
        if args.dry_run:
            continue
        start = time.monotonic()
        try:
            rc = subprocess.run(cmd).returncode
        except OSError as error:
            print(f"resnet_multi_sweep: cannot run {cmd[0]}: {error.strerror}", flush=True)
            rc = 127
        durations.append(time.monotonic() - start)
        if rc != 0:
            print(f"[{i}/{len(runs)}] FAILED with exit code {rc}: {line}", flush=True)
            failed.append(line)
    if args.dry_run:
        return
    print(f"resnet_multi_sweep: {len(runs) - len(failed)} of {len(runs)} runs succeeded in "
          f"{minutes(sum(durations))}; records in {args.results}")
    for line in failed:
        print(f"failed: {line}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
