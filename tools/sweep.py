#!/usr/bin/env python3
"""Runs the study's experiment grid as far as this host allows, appends every
record to one results file, and turns that file into a report.

The grid (each binary's records go to --results; the study's budgets with GPUs):
  ResNet training   resnet_single, depths x fp32/mixed; resnet_dp and resnet_ddp,
                    1/2/4 devices x fp32/mixed; on the most devices each of them
                    also with the other batch size (DP 512, DDP 1024)
  ResNet inference  resnet_cpu_infer eager / -q 1 / -ts 1 / -q 1 -ts 1 for each
                    depth; resnet_gpu_script on a GPU; both on the fp32 models
                    that resnet_single saved in this sweep
  RoBERTa training  roberta_train, roberta-small/base/large x 1/2/4 processes x
                    fp32/mixed at batch 32; batch 16 and 64 on the most devices
  RoBERTa inference roberta_infer eager / --quantize / --script / both on the CPU,
                    eager / --script on a GPU, on the model the 1-device fp32
                    training run saved
  C++ against Python (--peers, the default with --quick on a CPU host) after
                    the grid: tools/train_step_report.py (ResNet-18 training
                    step, batch 64: the benchmark has no batch 32) and
                    tools/infer_report.py (ResNet-18 inference, batch 32)
                    under --peer_python, and
                    tools/roberta_infer_report.py (roberta-small, batch 8, seq
                    64) with --hf_python, 1 round each, their cpp_vs_python
                    records to --results too; a comparison is skipped with a
                    line when its Python is missing, and when its C++ binary
                    is (bazel build //resnet/benchmarks/... //roberta:roberta_infer)
What cannot run here (too few GPUs, no GPU) is named with the reason, one line
each. --quick (the default without GPUs) cuts the budgets so that the CPU sweep
takes minutes: ResNet-18 and -50, 2 epochs of 3 steps on 1024 Fashion-MNIST
images, training batch sizes / 8; roberta-small and roberta-base, 64 synthetic
sequences of 64 tokens; 1 and 2 CPU devices; the other batch sizes in fp32
only. Models, run logs and the RoBERTa logs go to --models_dir (not models/,
so the user's models are never replaced); a run whose input model is missing
(its training run failed or was filtered out) is skipped.
A failed run prints its last lines and the sweep goes on; the exit status is 1
if any run failed.

  bazel build //resnet/... //roberta/...
  python3 tools/sweep.py --quick --dry_run                     # the plan
  python3 tools/sweep.py --quick --results results/cpu.jsonl --report_dir results/cpu
  python3 tools/sweep.py --only 'roberta_train roberta-base'   # a part of the grid
  python3 tools/sweep.py --quick --only peer                   # only C++ against Python
"""
import argparse
import collections
import os
import re
import shlex
import subprocess
import sys
import time

# Under `bazel run` the script sits in a runfiles tree: the binaries are those
# of the workspace, and relative paths mean the directory the user ran from.
ROOT = os.environ.get("BUILD_WORKSPACE_DIRECTORY") or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if os.environ.get("BUILD_WORKING_DIRECTORY"):
    os.chdir(os.environ["BUILD_WORKING_DIRECTORY"])
DEVICES = [1, 2, 4]
CPU_DEVICES = [1, 2]  # without GPUs: 1 and 2 CPU replicas / processes
RESNET_BATCH = {"resnet_dp": (1024, 512), "resnet_ddp": (512, 1024)}  # (the study's, the other one)
ROBERTA_BATCHES = (32, 16, 64)  # the study's first; the others on the most devices
CPU_INFER = {"eager": [], "int8": ["-q", "1"], "torchscript": ["-ts", "1"], "int8-torchscript": ["-q", "1", "-ts", "1"]}
ROBERTA_INFER = {"eager": [], "quantize": ["--quantize"], "script": ["--script"],
                 "quantize-script": ["--quantize", "--script"]}

# needs: a path that must exist when the run starts; hint: what to do when it does not.
Run = collections.namedtuple("Run", "name cmd needs hint", defaults=("its training run failed or was not selected",))
PEER_PYTHON = os.path.join(ROOT, ".venv", "bin", "python")  # torch, the LibTorch the binaries link (tools/setup.sh)
HF_PYTHONS = [os.path.join(ROOT, ".venv-peer", "bin", "python"), "/tmp/hfvenv/bin/python"]  # + transformers


def binary(args, name):
    return os.path.join(args.bin_dir, "roberta" if name.startswith("roberta") else "resnet", name)


def gpu_count():
    """GPUs listed by `nvidia-smi -L`, 0 if it is missing or fails."""
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


def device_counts(gpus):
    """(the device counts to run, why the others are skipped)."""
    if not gpus:
        return CPU_DEVICES, "no GPU here: on the CPU only 1 and 2 devices run"
    return [n for n in DEVICES if n <= gpus], f"needs more GPUs than the {gpus} here"


def plan(args, gpus):
    """Returns (runs, skipped): the runs in order, and (name, why) for each
    configuration that cannot run here. --only is not applied yet."""
    runs, skipped = [], []
    counts, why_not = device_counts(gpus)
    div = 8 if args.quick else 1
    models = args.models_dir
    precisions = {0: "fp32", 1: "mixed"}
    other_precisions = {0: "fp32"} if args.quick else precisions  # for the other batch sizes

    # ResNet training.
    budget = [f"--epochs={args.epochs}", f"--max_steps={args.max_steps}", f"--dataset={args.dataset}",
              f"--results={args.results}"]
    if args.quick:
        budget += ["--train_limit=1024", "--test_limit=512"]
    for depth in args.depths:
        runs.append(Run(f"resnet_single {depth} fp32,mixed batch {512 // div}",
                        [binary(args, "resnet_single"), f"--depths={depth}", "--modes=fp32,mixed",
                         f"--batch_size={512 // div}", f"--models_dir={models}"] + budget, None))
    for depth in args.depths:
        for prog, (batch, other) in RESNET_BATCH.items():
            for n in DEVICES:
                for mixed, prec in precisions.items():
                    name = f"{prog} {depth} x{n} {prec} batch {batch // div}"
                    if n not in counts:
                        skipped.append((name, why_not))
                        continue
                    runs.append(Run(name, [binary(args, prog), str(depth), str(n), str(mixed),
                                           f"--batch_size={batch // div}", "--models_dir="] + budget, None))
            for mixed, prec in other_precisions.items():  # 512 against 1024 on the most devices
                n = max(counts)
                runs.append(Run(f"{prog} {depth} x{n} {prec} batch {other // div}",
                                [binary(args, prog), str(depth), str(n), str(mixed), f"--batch_size={other // div}",
                                 "--models_dir="] + budget, None))

    # ResNet inference on resnet_single's fp32 models.
    infer_flags = [f"--dataset={args.dataset}", f"--results={args.results}"]
    if args.quick:
        infer_flags.append("--test_limit=512")
    for depth in args.depths:
        model = os.path.join(models, f"Resnet-{depth}-1gpu.pth")
        for variant, flags in CPU_INFER.items():
            runs.append(Run(f"resnet_cpu_infer {depth} {variant}",
                            [binary(args, "resnet_cpu_infer"), "-r", str(depth), "-m", "0"] + flags +
                            [f"--model={model}", "--batch_size=32"] + infer_flags, model))
        name = f"resnet_gpu_script {depth}"
        if gpus:
            runs.append(Run(name, [binary(args, "resnet_gpu_script"), "-r", str(depth), "-m", "0",
                                   f"--model={model}"] + infer_flags, model))
        else:
            skipped.append((name, "no GPU here (resnet_gpu_script --device=cpu is a different experiment)"))

    # RoBERTa training and inference.
    rb = [f"--max_len={args.max_len}", f"--results={args.results}"]
    if args.roberta_data:
        train_data = [f"--train_data={os.path.join(args.roberta_data, 'train')}",
                      f"--dev_data={os.path.join(args.roberta_data, 'dev')}"]
        dev_data = [f"--dev_data={os.path.join(args.roberta_data, 'dev')}"]
    else:
        train_data = [f"--synthetic_size={args.synthetic_size}"]
        dev_data = [f"--synthetic_size={args.synthetic_size}"]
    for model in args.roberta_models:
        saved = os.path.join(models, model)
        log = os.path.join(models, "logs", f"perf-{model}.log")
        configs = [(n, mixed, ROBERTA_BATCHES[0]) for n in DEVICES for mixed in precisions]
        configs += [(max(counts), mixed, b) for b in ROBERTA_BATCHES[1:] for mixed in other_precisions]
        for n, mixed, batch in configs:
            name = f"roberta_train {model} x{n} {precisions[mixed]} batch {batch // div}"
            if n not in counts:
                skipped.append((name, why_not))
                continue
            save = saved if (n, mixed, batch) == (1, 0, ROBERTA_BATCHES[0]) else ""
            runs.append(Run(name, [binary(args, "roberta_train"), f"--model_name={model}", f"--nproc={n}",
                                   f"--batch_size={batch // div}", f"--epochs={args.roberta_epochs}",
                                   f"--max_steps={args.max_steps}", f"--save_dir={save}", f"--log={log}"] +
                            (["--mixed"] if mixed else []) + train_data + rb, None))
        for device in ("cpu", "cuda"):
            for variant, flags in ROBERTA_INFER.items():
                name = f"roberta_infer {model} {device} {variant}"
                if device == "cuda" and variant.startswith("quantize"):
                    continue  # dynamic int8 is CPU-only, in the study too
                if device == "cuda" and not gpus:
                    skipped.append((name, "no GPU here"))
                    continue
                runs.append(Run(name, [binary(args, "roberta_infer"), f"--model_path={saved}", f"--device={device}",
                                       f"--batch_size={32 // div}",
                                       f"--log={os.path.join(models, 'logs', 'inference.log')}"] +
                                flags + dev_data + rb, os.path.join(saved, "config.json")))

    if args.peers:
        peer_runs(args, runs, skipped)
    return runs, skipped


def peer_runs(args, runs, skipped):
    """C++ against Python PyTorch for the same work, 1 round each (tools/*_report.py --results)."""
    tools = os.path.join(ROOT, "tools")
    benchmarks = os.path.join(args.bin_dir, "resnet", "benchmarks")
    peers = [  # (name, Python, script and flags, C++ binary, its Bazel target)
        # train_step_benchmark registers ResNet-18 at batch 8, 64 and 512 only: 64, as in the README's table.
        ("peer train_step resnet18 batch 64", args.peer_python,
         [os.path.join(tools, "train_step_report.py"), "--depth", "18", "--batch", "64", "--rounds", "1"],
         os.path.join(benchmarks, "train_step_benchmark"), "//resnet/benchmarks:train_step_benchmark"),
        ("peer infer resnet18 batch 32", args.peer_python,
         [os.path.join(tools, "infer_report.py"), "--depth", "18", "--batch", "32", "--rounds", "1"],
         os.path.join(benchmarks, "resnet_infer_benchmark"), "//resnet/benchmarks:resnet_infer_benchmark"),
        ("peer roberta_infer roberta-small batch 8 seq 64", args.hf_python,
         [os.path.join(tools, "roberta_infer_report.py"), "--model", "roberta-small", "--batch", "8", "--seq", "64",
          "--rounds", "1", "--batches", "2", "--python", args.hf_python],
         binary(args, "roberta_infer"), "//roberta:roberta_infer"),
    ]
    for name, python, script, cpp, target in peers:
        if not os.path.exists(python):
            setup = "tools/setup.sh --peer" if script[0].endswith("roberta_infer_report.py") else "tools/setup.sh"
            skipped.append((name, f"no Python at {python} ({setup}, or give "
                                  f"{'--hf_python' if python == args.hf_python else '--peer_python'})"))
            continue
        flag = "--bin" if script[0].endswith("roberta_infer_report.py") else "--binary"
        runs.append(Run(name, [python] + script + [f"{flag}={cpp}", f"--results={args.results}"], cpp,
                        f"bazel build {target}"))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", default=os.path.join("results", "sweep.jsonl"),
                        help="JSON Lines file to append to")
    parser.add_argument("--report_dir", default=os.path.join("results", "report"), help="where report.md goes")
    parser.add_argument("--no_report", action="store_true", help="do not run tools/report.py at the end")
    parser.add_argument("--models_dir", default=os.path.join("models", "sweep"),
                        help="the sweep's own directory for models and logs")
    parser.add_argument("--bin_dir", default=os.path.join(ROOT, "bazel-bin"), help="Bazel's output: bazel-bin")
    parser.add_argument("--quick", action=argparse.BooleanOptionalAction,
                        help="short budgets (default: on without GPUs, off with)")
    parser.add_argument("--gpus", type=int, help="GPUs to plan for (default: counted by nvidia-smi -L)")
    parser.add_argument("--depths", help="ResNet depths (default: 18,34,50; --quick: 18,50)")
    parser.add_argument("--roberta_models", help="default: roberta-small,roberta-base,roberta-large; "
                        "--quick: roberta-small,roberta-base")
    parser.add_argument("--dataset", default="fashion-mnist", help="ResNet data: cifar10, fashion-mnist, synthetic")
    parser.add_argument("--roberta_data", help="folder with the study's train_ids.txt, train_labels.txt, dev_ids.txt, "
                        "dev_labels.txt (default: synthetic ids)")
    parser.add_argument("--epochs", type=int, help="ResNet epochs (default: 20; --quick: 2)")
    parser.add_argument("--roberta_epochs", type=int, help="RoBERTa epochs (default: 3; --quick: 2)")
    parser.add_argument("--max_steps", type=int, help="steps an epoch, 0: all (default: 0; --quick: 3)")
    parser.add_argument("--max_len", type=int, help="RoBERTa sequence length (default: 128; --quick: 64)")
    parser.add_argument("--synthetic_size", type=int, help="synthetic RoBERTa sequences (default: 2048; --quick: 64)")
    parser.add_argument("--peers", action=argparse.BooleanOptionalAction,
                        help="after the grid, time C++ against Python PyTorch for the same work (tools/*_report.py) "
                        "(default: on with --quick without GPUs)")
    parser.add_argument("--peer_python", default=PEER_PYTHON,
                        help="Python with torch for the ResNet peers (default: .venv's)")
    parser.add_argument("--hf_python", default=next((p for p in HF_PYTHONS if os.path.exists(p)), HF_PYTHONS[0]),
                        help="Python with torch and transformers for the RoBERTa peer (default: .venv-peer's, "
                        "else /tmp/hfvenv's)")
    parser.add_argument("--only", help="run only the runs whose name matches this regular expression")
    parser.add_argument("--dry_run", action="store_true", help="print the plan and run nothing")
    args = parser.parse_args(argv)
    try:
        re.compile(args.only or "")
    except re.error as e:
        parser.error(f"--only: not a regular expression: {e}")
    if args.gpus is not None and args.gpus < 0:
        parser.error(f"--gpus {args.gpus}: must be 0 or more")
    if args.gpus is None:
        args.gpus = gpu_count()
    if args.quick is None:
        args.quick = args.gpus == 0
    if args.peers is None:
        args.peers = args.quick and args.gpus == 0
    q = args.quick
    try:
        args.depths = [int(d) for d in (args.depths or ("18,50" if q else "18,34,50")).split(",")]
    except ValueError:
        parser.error(f"--depths {args.depths}: not comma-separated numbers (18,34,50)")
    roberta = "roberta-small,roberta-base" + ("" if q else ",roberta-large")
    args.roberta_models = (args.roberta_models or roberta).split(",")
    for name, quick, full in [("epochs", 2, 20), ("roberta_epochs", 2, 3), ("max_steps", 3, 0), ("max_len", 64, 128),
                              ("synthetic_size", 64, 2048)]:
        if getattr(args, name) is None:
            setattr(args, name, quick if q else full)
    return args


def select(runs, skipped, only):
    if not only:
        return runs, skipped
    match = re.compile(only).search
    return [r for r in runs if match(r.name)], [s for s in skipped if match(s[0])]


def minutes(seconds):
    return f"{seconds / 60:.1f} min"


def report_python():
    return "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable  # Debian's has matplotlib


def main(argv=None):
    args = parse_args(argv)
    runs, skipped = select(*plan(args, args.gpus), args.only)
    print(f"sweep: {args.gpus} GPUs, {'quick' if args.quick else 'full'} budgets; {len(runs)} runs, "
          f"{len(skipped)} configurations skipped")
    for name, why in skipped:
        print(f"skipped: {name}: {why}")
    if args.dry_run:
        for i, run in enumerate(runs, 1):
            print(f"[{i}/{len(runs)}] {run.name}\n    {shlex.join(run.cmd)}")
        return 0
    logs = os.path.join(args.models_dir, "logs")
    os.makedirs(logs, exist_ok=True)
    os.makedirs(os.path.dirname(os.path.abspath(args.results)), exist_ok=True)

    start, durations, failed, missing = time.monotonic(), [], [], []
    for i, run in enumerate(runs, 1):
        elapsed = time.monotonic() - start
        eta = f", ETA {minutes(sum(durations) / len(durations) * (len(runs) - i + 1))}" if durations else ""
        print(f"[{i}/{len(runs)}] {run.name} (elapsed {minutes(elapsed)}{eta})", flush=True)
        if run.needs and not os.path.exists(run.needs):
            print(f"    skipped: {run.needs} is missing ({run.hint})")
            missing.append(run.name)
            continue
        log = os.path.join(logs, re.sub(r"[^\w.,-]+", "_", run.name) + ".log")
        t0 = time.monotonic()
        with open(log, "w") as out:
            out.write(shlex.join(run.cmd) + "\n")
            out.flush()
            try:
                rc = subprocess.run(run.cmd, stdout=out, stderr=subprocess.STDOUT).returncode
            except OSError as e:
                out.write(f"cannot run {run.cmd[0]}: {e.strerror}\n")
                rc = 127
        durations.append(time.monotonic() - t0)
        if rc == 0:
            print(f"    done in {durations[-1]:.1f} s")
            continue
        failed.append(run.name)
        with open(log) as f:
            tail = f.read().splitlines()[-12:]
        print(f"    FAILED with exit code {rc} after {durations[-1]:.1f} s; the last lines of {log}:")
        print("\n".join("    | " + line for line in tail), flush=True)

    print(f"sweep: {len(runs) - len(failed) - len(missing)} of {len(runs)} runs succeeded, {len(failed)} failed, "
          f"{len(missing)} skipped for a missing model or binary, {len(skipped)} configurations skipped; "
          f"{minutes(time.monotonic() - start)}; records in {args.results}")
    for name in failed:
        print(f"failed: {name}")
    report_rc = 0
    if not args.no_report:
        if os.path.exists(args.results):
            report_rc = subprocess.run([report_python(), os.path.join(ROOT, "tools", "report.py"), args.results,
                                        "--out", args.report_dir]).returncode
        else:
            print(f"sweep: no report: {args.results} was not written")
    return 1 if failed or report_rc else 0


if __name__ == "__main__":
    sys.exit(main())
