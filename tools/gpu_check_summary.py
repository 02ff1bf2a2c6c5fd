#!/usr/bin/env python3
"""What tools/gpu_check.sh brought back, as Markdown: each C++ measurement
beside the Python peer's on the same machine, and the issues' GPU targets.

  python3 tools/gpu_check_summary.py gpu_check-1.log gpu_check-2.log > summary.md

For each LOG it reads the peers' JSON lines in the log (not those of the
trace-* checks), LOG-results.jsonl (the binaries' records) and
LOG-<benchmark>.json (Google Benchmark), where present.
Times are medians of a batch or step; "C++ speed-up" is Python's time over
C++'s, so above 1 means C++ is faster. A row with one side missing shows "-".
The peers synchronise the GPU around every step, so a C++ training run on a
GPU compares like for like only with --sync_each_step; without it the caveats
column says so. A run whose timed steps include steps the fp16 GradScaler
skipped (no optimizer work) gets the verdict "invalid"; the peer's skipped
steps are a caveat. The reports of the rounds stage in the logs
(tools/ddp_report.py, tools/train_step_report.py) are copied in last.
C++ and Python are paired within one log (and the files beside it) only: with
several logs each log has its own sections, headed with its name and machine.
A record, peer line or benchmark run that lacks what the summary reads is left
out with a line on stderr.
Exit status 2 when no log can be read.
"""
import argparse
import glob
import json
import os
import re
import sys

# The issues' GPU targets (DESIGN.md's H100 figures for Python PyTorch).
ROBERTA_TRAIN_TARGETS = {"fp16": 1058.0, "fp32": 526.0}  # samples/s, xlm-roberta-base, batch 32, seq 128
DDP_OVERHEAD_TARGET = 0.03  # resnet_ddp at world size 1 against resnet_single
PYTHON_FROZEN_R18_MS = 0.66  # Python's frozen TorchScript, ResNet-18 batch 32, H100
FORWARD_MODELS = ["roberta-small", "roberta-base"]  # roberta_forward_benchmark's model:0 and model:1


def read_json_lines(path, skip_checks=None):
    """The JSON objects among a file's lines; other lines are skipped, and so
    are those printed under a gpu_check check ("=== NAME: ...") whose name
    starts with `skip_checks`."""
    objects, skipping = [], False
    with open(path, errors="replace") as f:
        for line in f:
            if skip_checks and line.startswith("=== "):
                skipping = line.startswith("=== " + skip_checks)
            line = line.strip()
            if skipping or not line.startswith("{"):
                continue
            try:
                objects.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return objects


# The fields of a binary's record that the summary reads.
RECORD_FIELDS = {"resnet_gpu_script": ("precision", "variant"), "resnet_single": ("model", "precision", "batch_size"),
                 "resnet_ddp": ("model", "precision", "batch_size"), "resnet_dp": ("model", "precision", "batch_size"),
                 "roberta_train": ("model", "precision", "batch_size")}


def has(item, fields):
    """Whether `item` (a record or peer line) has each of `fields`; if not,
    says so on stderr, and the item is left out."""
    missing = [field for field in fields if item.get(field) is None]
    if missing:
        print(f"gpu_check_summary: left out a line without {', '.join(missing)}: {json.dumps(item)[:100]}",
              file=sys.stderr)
    return not missing


def load(log):
    """(records, peer lines, benchmark runs) from a log and the files beside it."""
    # A traced peer run times a few steps only, then runs more under the
    # profiler: its line does not stand in for the timed run's.
    peers = [o for o in read_json_lines(log, skip_checks="trace-") if "peer" in o or "impl" in o]
    prefix = log[:-len(".log")] if log.endswith(".log") else log
    records = []
    if os.path.exists(prefix + "-results.jsonl"):
        records = [r for r in read_json_lines(prefix + "-results.jsonl")
                   if "binary" in r and has(r, RECORD_FIELDS.get(r["binary"], ()))]
    benchmarks = []
    for path in sorted(glob.glob(glob.escape(prefix) + "-*.json")):
        try:
            with open(path) as f:
                data = json.load(f)
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(data, dict) and isinstance(data.get("benchmarks", []), list):
            benchmarks += [b for b in data.get("benchmarks", []) if isinstance(b, dict)]
        else:
            print(f"gpu_check_summary: {path}: not Google Benchmark's JSON (an object with a list of benchmarks); "
                  "left out", file=sys.stderr)
    return records, peers, benchmarks


def machines(records):
    """The machines (device, LibTorch) that `records` name."""
    return sorted({f"{r.get('device_name', '?')}, LibTorch {r.get('libtorch_version', '?')}" for r in records})


def median_ms(summary):
    return 1e3 * summary["median"] if summary and "median" in summary else None


def fmt(value, digits=2):
    return "-" if value is None else f"{value:.{digits}f}"


def ratio(python, cpp):
    return f"{python / cpp:.2f}x" if python and cpp else "-"


def timed_skips(record=None, peer=None):
    """(side, count) for each side whose timed steps include steps the fp16 GradScaler skipped."""
    sides = (("C++", record, "measured_skipped_steps"), ("Python", peer, "skipped_steps"))
    return [(who, item[key]) for who, item, key in sides if item and item.get(key)]


# The backend switches both sides record (common/device.h DescribeRuntime;
# tools/peer/backend_settings.py), as a caveat names them.
BACKEND_SETTINGS = {"cudnn_benchmark": "cuDNN benchmark", "allow_tf32_cudnn": "TF32 convolutions",
                    "allow_tf32_cublas": "TF32 matmuls"}


def setting_differences(record=None, peer=None):
    """The backend switches that differ between a C++ record and its peer's
    line on a GPU (a side that does not say is not compared; on the CPU they
    change nothing)."""
    if not record or not peer or not str(record.get("device", "")).startswith("cuda"):
        return []
    on = {True: "on", False: "off"}
    return [f"{name}: C++ {on[record[key]]}, Python {on[peer[key]]}" for key, name in BACKEND_SETTINGS.items()
            if isinstance(record.get(key), bool) and isinstance(peer.get(key), bool) and record[key] != peer[key]]


def caveats(record=None, peer=None):
    """What makes a C++ training record and its peer's line less than like for like."""
    notes = setting_differences(record, peer)
    if record and str(record.get("device", "")).startswith("cuda") and not record.get("sync_each_step"):
        notes.append("C++ steps not synced")
    kernels, theirs = (record or {}).get("optimizer_kernels"), (peer or {}).get("implementation")
    if kernels and theirs and kernels not in theirs:
        notes.append(f"C++ {kernels} optimizer, Python {theirs}")
    # cudaMalloc/cudaFree calls or cache-emptying retries during the timed steps
    # (the records' cuda_allocator): some steps waited for the allocator.
    allocator = (record or {}).get("cuda_allocator") or {}
    busy = {k: v for k, v in allocator.items() if k in ("device_mallocs", "device_frees", "alloc_retries") and v}
    if busy:
        notes.append("C++ allocator in timed steps: " + ", ".join(f"{v} {k}" for k, v in busy.items()))
    return notes + [f"{who} skipped {count} steps" for who, count in timed_skips(record, peer)]


def judge(met, skipped):
    """A target's verdict: skipped steps make the timed steps not training steps."""
    if skipped:
        return "invalid"
    return "met" if met else "not met"


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def benchmark_ms(run):
    """A Google Benchmark run's median batch in ms where it counts one (the peers'
    statistic), else its mean."""
    unit = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[run.get("time_unit", "ns")]
    return run["median_ms"] if "median_ms" in run else run["real_time"] * unit


def inference(records, peers, benchmarks=()):
    """resnet_gpu_script's records against tools/peer/resnet_infer.py's lines,
    then resnet_infer_benchmark's GPU variants at ResNet-18, batch 32."""
    cpp = {(r["precision"], r["variant"]): r for r in records if r["binary"] == "resnet_gpu_script"}
    names = {"torchscript-frozen": "torchscript"}
    python = {(p["precision"], names.get(p["variant"], p["variant"])): p
              for p in peers if p.get("peer") == "python" and "variant" in p and "work" not in p
              and has(p, ("precision", "median_ms"))}
    if not cpp and not python:
        return []
    keys = sorted(set(cpp) | set(python))
    rows = []
    for precision, variant in keys:
        c = cpp.get((precision, variant))
        p = python.get((precision, variant))
        c_ms = median_ms(c["batch_seconds"]) if c else None
        p_ms = p["median_ms"] if p else None
        rows.append([precision, variant, fmt(c_ms, 3), fmt(p_ms, 3), ratio(p_ms, c_ms),
                     "; ".join(setting_differences(c, p)) or "-"])
    device = next(iter(cpp.values()), next(iter(python.values()), {})).get("device", "?")
    out = ["## ResNet-18 inference, batch 32 (median ms a batch, synced each batch)", "",
           f"Device: {device}. C++: resnet_gpu_script; Python: tools/peer/resnet_infer.py.", ""]
    out += table(["precision", "variant", "C++ ms", "Python ms", "C++ speed-up", "caveats"], rows)
    # CUDA-graph replay captured from the eager model or from the frozen one:
    # the faster of the two is set against Python's frozen TorchScript.
    graphs = [(median_ms(cpp[("fp32", v)]["batch_seconds"]), v) for v in ("cuda-graph", "cuda-graph-frozen")
              if ("fp32", v) in cpp]
    frozen = python.get(("fp32", "torchscript"))
    if graphs and frozen:
        g, variant = min(graphs)
        f = frozen["median_ms"]
        verdict = "met" if g < f else "not met"
        out += ["", f"- Target (issue 4): C++ CUDA-graph replay ({variant}), fp32, faster than Python's frozen "
                    f"TorchScript: {g:.3f} ms against {f:.3f} ms, {verdict} (DESIGN.md's H100 figure for Python: "
                    f"{PYTHON_FROZEN_R18_MS} ms)."]
    script, frozen = cpp.get(("fp32", "torchscript")), python.get(("fp32", "torchscript"))
    if script and frozen:
        s, f = median_ms(script["batch_seconds"]), frozen["median_ms"]
        if not (graphs and frozen):
            out.append("")
        out += [f"- Target (issue 4): C++ frozen TorchScript at least Python's: {s:.3f} ms against {f:.3f} ms, "
                f"{'met' if s <= f else 'not met'}."]
    # The same model timed by Google Benchmark: more calls, after 3 warm-up calls.
    suffix = "/depth:18/batch:32/real_time"
    bench = {b["name"][:-len(suffix)]: benchmark_ms(b) for b in benchmarks
             if b.get("name", "").startswith("cuda-") and b["name"].endswith(suffix)
             and b.get("run_type", "iteration") == "iteration"}
    if bench:
        out += ["", "resnet_infer_benchmark, fp32 (median ms a batch): "
                + ", ".join(f"{name} {ms:.3f}" for name, ms in sorted(bench.items())) + "."]
        if "cuda-torchscript-frozen" in bench and frozen:
            s, f = bench["cuda-torchscript-frozen"], frozen["median_ms"]
            out.append(f"- There, C++ frozen TorchScript at least Python's: {s:.3f} ms against {f:.3f} ms, "
                       f"{'met' if s <= f else 'not met'}.")
    return out + [""]


def training(records, peers):
    """resnet_single's steps against tools/peer/resnet_train_step.py's, and DDP/DP at one device."""
    out = []
    singles = [r for r in records if r["binary"] == "resnet_single"]
    # A peer run with --from_host steps as resnet_single's loop does (batch
    # copied from pinned host memory, correct predictions counted); one
    # without it (older logs) is used when there is no other, with a caveat.
    python = {}
    for p in peers:
        if str(p.get("peer")).startswith("python-") and "batch" in p and has(p, ("model", "precision", "median_ms")):
            key = (p["model"], p["precision"], p["batch"], bool(p.get("channels_last")))
            if p.get("from_host") or not python.get(key, {}).get("from_host"):
                python[key] = p
    rows = []
    for r in singles:
        key = (r["model"], r["precision"], r["batch_size"], bool(r.get("channels_last")))
        # The peer draws no augmentation: set it beside the runs without.
        p = python.get(key) if r.get("augment") is False else None
        c_ms = median_ms(r.get("step_seconds"))
        p_ms = p["median_ms"] if p else None
        augment = {True: "yes", False: "no"}.get(r.get("augment"), "?")
        notes = caveats(r, p)
        if p and not p.get("from_host"):
            notes.append("Python's batch already on the device (C++ copies its batch in the step)")
        rows.append([r["model"], r["precision"], r["batch_size"], "yes" if key[3] else "no", augment, fmt(c_ms, 1),
                     fmt(p_ms, 1), ratio(p_ms, c_ms), "; ".join(notes) or "-"])
    if rows:
        out += ["## ResNet training step (median ms a step)", "",
                "C++: resnet_single, one row a run; Python: tools/peer/resnet_train_step.py, beside the runs without "
                "augmentation, run with --from_host (the batch copied from pinned host memory in the step, as "
                "resnet_single's loop does) unless its row says otherwise. The step alone, on a batch already on the "
                "device, is train_step_report's.", ""]
        out += table(["model", "precision", "batch", "channels_last", "augment", "C++ ms", "Python ms",
                      "C++ speed-up", "caveats"], rows)
        out.append("")
    rows = []
    for i, r in enumerate(records):
        if r["binary"] not in ("resnet_ddp", "resnet_dp"):
            continue
        # The resnet_single run gpu_check makes just before, with the same flags.
        base = next((b for b in reversed(records[:i]) if b["binary"] == "resnet_single"
                     and b["model"] == r["model"] and b["precision"] == r["precision"]
                     and b["batch_size"] == r.get("global_batch_size", r["batch_size"])), None)
        c_ms = median_ms(r.get("step_seconds"))
        b_ms = median_ms(base.get("step_seconds")) if base else None
        overhead = c_ms / b_ms - 1 if c_ms and b_ms else None
        what = r["binary"] + (f" ({r.get('backend', '?')}, 1 process)" if r["binary"] == "resnet_ddp" else " (1 device)")
        notes = caveats(r) + [n + " (resnet_single)" for n in caveats(base)]
        skipped = timed_skips(r) + timed_skips(base)
        verdict = "-" if overhead is None else judge(overhead <= DDP_OVERHEAD_TARGET, skipped)
        rows.append([what, r["precision"], fmt(c_ms, 1), fmt(b_ms, 1),
                     "-" if overhead is None else f"{100 * overhead:+.1f} %", verdict, "; ".join(notes) or "-"])
    if rows:
        out += ["## One device: resnet_ddp and resnet_dp against resnet_single (median ms a step)", "",
                f"Target (issue 3): resnet_ddp's overhead at most {100 * DDP_OVERHEAD_TARGET:.0f} %; "
                "the verdict column applies it to resnet_dp too.", ""]
        out += table(["binary", "precision", "ms", "resnet_single ms", "overhead", "target", "caveats"], rows)
        out.append("")
    return out


def reducer(benchmarks):
    """reducer_benchmark: a backward over ResNet-18's parameter shapes with and without the reducer."""
    steps = {}
    for b in benchmarks:
        parts = b.get("name", "").split("/")
        if parts[0] != "ReducerStep" or b.get("run_type", "iteration") != "iteration":
            continue
        fields = dict(part.split(":") for part in parts[1:] if ":" in part)
        steps[(fields.get("size_full"), fields.get("reducer"))] = benchmark_ms(b)
    rows = []
    for size, label in (("0", "16 elements a parameter (host work)"), ("1", "full size")):
        without, with_reducer = steps.get((size, "0")), steps.get((size, "1"))
        if without is None or with_reducer is None:
            continue
        rows.append([label, fmt(without, 3), fmt(with_reducer, 3), f"{with_reducer - without:+.3f}",
                     f"{100 * (with_reducer / without - 1):+.1f} %"])
    if not rows:
        return []
    out = ["## Gradient reducer at one process (reducer_benchmark, ms a backward)", "",
           "ResNet-18's 62 parameter shapes; the backward alone against the backward with resnet_ddp's reducer.", ""]
    return out + table(["parameters", "without", "with reducer", "added ms", "added"], rows) + [""]


def roberta(records, peers, benchmarks):
    """roberta_train against tools/peer/roberta_train_step.py; the forward benchmark against roberta_forward.py."""
    out = []
    python = {(p["model"], p["precision"], p["batch"]): p for p in peers if p.get("work") == "roberta_train_step"
              and has(p, ("model", "precision", "batch", "samples_per_second"))}
    rows = []
    for r in (r for r in records if r["binary"] == "roberta_train"):
        batch = r.get("global_batch_size", r["batch_size"])
        step = median_ms(r.get("step_seconds"))
        cpp_rate = 1e3 * batch / step if step else None
        p = python.get((r["model"], r["precision"], batch))
        py_rate = p["samples_per_second"] if p else None
        target = ROBERTA_TRAIN_TARGETS.get(r["precision"]) if r["model"] == "xlm-roberta-base" and batch == 32 else None
        notes = caveats(r, p)
        # The target is a rate C++ reaches or not: only its own skipped steps
        # void it. The peer's are a caveat on the ratio (a skipped step is a
        # short one, so they can only make Python look faster).
        verdict = "-" if target is None or cpp_rate is None else judge(cpp_rate >= target, timed_skips(r))
        rows.append([r["model"], r["precision"], batch, r.get("max_len", "?"), fmt(cpp_rate, 1), fmt(py_rate, 1),
                     ratio(cpp_rate, py_rate), fmt(target, 0), verdict, "; ".join(notes) or "-"])
    if rows:
        out += ["## RoBERTa training (samples/s, median step)", "",
                "C++: roberta_train; Python: tools/peer/roberta_train_step.py (transformers). Targets (issue 5): "
                "xlm-roberta-base, batch 32, seq 128 on an H100.", ""]
        out += table(["model", "precision", "batch", "seq", "C++", "Python", "C++ speed-up", "target", "verdict",
                      "caveats"], rows)
        out.append("")
    names = {"fp32": "eager"}
    cpp = {}
    for b in benchmarks:
        name = str(b.get("name", ""))
        if "/model:" not in name or b.get("run_type", "iteration") != "iteration":
            continue
        match = re.match(r"(\w+)-([\w-]+)/model:(\d+)/batch:(\d+)(/|$)", name)  # cuda-fp16/model:1/batch:32/...
        if not match:
            print(f"gpu_check_summary: left out benchmark {name!r}: not DEVICE-VARIANT/model:N/batch:N",
                  file=sys.stderr)
            continue
        device, variant, model, batch = match.group(1, 2, 3, 4)
        model = FORWARD_MODELS[int(model)] if int(model) < len(FORWARD_MODELS) else f"model:{model}"
        cpp[(device, names.get(variant, variant), model, int(batch))] = benchmark_ms(b)
    python = {(p["device"], p["variant"], p["model"], p["batch"]): p["median_ms"] for p in peers
              if p.get("impl") == "python-transformers" and "median_ms" in p
              and has(p, ("device", "variant", "model", "batch"))}
    if cpp or python:
        rows = []
        for key in sorted(set(cpp) | set(python)):
            c, p = cpp.get(key), python.get(key)
            rows.append([*key, fmt(c), fmt(p), ratio(p, c)])
        out += ["## RoBERTa encoder forward, seq 128 (ms a batch)", "",
                "C++: roberta_forward_benchmark; Python: tools/peer/roberta_forward.py (transformers).", ""]
        out += table(["device", "variant", "model", "batch", "C++ ms", "Python ms", "C++ speed-up"], rows)
        out.append("")
    return out


# The reports of gpu_check's rounds stage, copied whole from the logs:
# (what its first line starts with, what its verdict line starts with, the
# heading set above it; None: its own Markdown title, one level down).
ROUND_REPORTS = (
    ("# DDP report:", "Overhead:", None),  # tools/ddp_report.py
    ("ResNet-", "C++ speed relative to Python:",  # tools/train_step_report.py
     "## Training step in alternating rounds (train_step_report.py)"),
)


def round_reports(logs):
    """The rounds stage's reports (tools/ddp_report.py, tools/train_step_report.py)
    as the logs hold them; one cut short (no verdict line) is left out."""
    out = []
    for log in logs:
        with open(log, errors="replace") as f:
            block, end = None, None
            for line in f:
                line = line.rstrip("\n")
                report = next((r for r in ROUND_REPORTS if line.startswith(r[0])), None)
                if block is None and report:
                    _, end, heading = report
                    block = ["#" + line] if heading is None else [heading, "", line]
                elif block is not None:
                    block.append(line)
                    if line.startswith(end):
                        out += block + [""]
                        block = None
                    elif line.startswith("--- "):  # the check ended without its verdict line
                        block = None
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("logs", nargs="+", help="gpu_check logs (the files beside each are read too)")
    args = parser.parse_args()
    missing = [log for log in args.logs if not os.path.isfile(log)]
    if missing:
        print(f"gpu_check_summary: no such log: {missing[0]}", file=sys.stderr)
        return 2
    loaded = {log: load(log) for log in args.logs}
    all_records = [r for rs, _, _ in loaded.values() for r in rs]
    peer_count = sum(len(ps) for _, ps, _ in loaded.values())
    benchmark_count = sum(len(bs) for _, _, bs in loaded.values())
    lines = ["# gpu_check summary", "", f"From {', '.join(os.path.basename(l) for l in args.logs)}: "
             f"{len(all_records)} records, {peer_count} peer lines, {benchmark_count} benchmark runs."]
    lines += [f"Machine: {m}." for m in machines(all_records)] + [""]
    for log, (records, peers, benchmarks) in loaded.items():  # C++ against Python within one log only
        sections = inference(records, peers, benchmarks) + training(records, peers) + reducer(benchmarks)
        sections += roberta(records, peers, benchmarks)
        if len(loaded) > 1:
            whose = f", from {os.path.basename(log)} ({'; '.join(machines(records)) or 'no records'})"
            sections = [line + whose if line.startswith("## ") else line for line in sections]
        lines += sections
    lines += round_reports(args.logs)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
