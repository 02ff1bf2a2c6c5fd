#!/usr/bin/env python3
"""Markdown report with PNG bar charts from a dlspeed results file.

Reads the JSON Lines records that the binaries append (resnet_single,
resnet_dp, resnet_ddp, resnet_cpu_infer, resnet_gpu_script, roberta_train,
roberta_infer) and the cpp_vs_python records of the scripts that set C++
against Python PyTorch (tools/train_step_report.py, infer_report.py,
ddp_report.py, roberta_infer_report.py with --results), and draws the study's
figures as far as the records allow: training speed-up by method, training time
by batch size, CPU and GPU inference variants; and ours: fp16 / bf16 /
channels_last, C++ against Python PyTorch for the same work, and int8 static
(ResNet) against dynamic (RoBERTa) quantization. Records are grouped by where
they ran (device name, host, LibTorch version) and data set; the last two of
ours take a machine's records of all data sets. Of several records with the
same configuration the latest (by timestamp) is used. Each section ends with
the commands behind its records (their "command" and "git_revision"). Lines
that cannot be used are listed in the report and on stderr.

  python3 tools/report.py results.jsonl --out report   # report/report.md, report/*.png

Exit status: 0 when the report was written (also with skipped lines), 1 when
the results file cannot be read, holds no usable record (DIR is then left as
it was) or DIR cannot be written, 2 for usage. report.md and each chart are
written to a temporary file that is renamed into place.
"""
import argparse
import collections
import json
import math
import os
import pathlib
import re
import reprlib
import sys

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.patches
    import matplotlib.pyplot as plt
except ImportError:
    plt = None

TRAIN = ("resnet_single", "resnet_dp", "resnet_ddp", "roberta_train")
INFER = ("resnet_cpu_infer", "resnet_gpu_script", "roberta_infer")
RESNET_TRAIN = ("resnet_single", "resnet_dp", "resnet_ddp")
COMPARE = "cpp_vs_python"  # tools/records.py: C++ against Python PyTorch, one record per compared measurement
SCHEMA_VERSION = 1  # the records' schema_version that this report reads
PRECISIONS = ["fp32", "fp16", "bf16"]
VARIANTS = ["eager", "torchscript", "torchscript-frozen", "torchscript-file", "int8", "int8-torchscript",
            "int8-dynamic", "int8-dynamic-torchscript", "cuda-graph", "cuda-graph-frozen"]


# Optional fields that label or group the records they are in: a record with
# one of another type (null is as if absent) is skipped. The report tells apart
# records that differ in them, which needs values of one kind (and hashable).
OPTIONAL = {"threads": int, "sequence_length": int, "max_len": int, "pad_to_max_len": bool, "device": str,
            "engine": str, "precision": str, "mixed": bool, "channels_last": bool, "overlap": bool, "augment": bool,
            "optimizer_kernels": str, "cpp_optimizer_kernels": str, "python_implementation": str}


def is_number(value):
    """A finite int or float, not a bool: an int beyond a float's range is not."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # math.isfinite(10**400)
        return False


def is_kind(value, kind):
    return isinstance(value, kind) and (kind is bool or not isinstance(value, bool))


def positive(value):
    """A number > 0: a time or throughput that can be divided by (a 1-epoch run writes avg_epoch_seconds 0)."""
    return is_number(value) and value > 0


# A batch, step or epoch that took under 1 ns or over 1e6 s (11.6 days) is no
# measurement; such times, and their ratios, overflow the charts.
SECONDS = (1e-9, 1e6)
SECONDS_TEXT = "a time from 1 ns to 1e6 s"
MAX_COUNT = 10 ** 6  # devices or threads: no machine has more (a training run's CPU threads are their product)


def plausible_seconds(value):
    return is_number(value) and SECONDS[0] <= value <= SECONDS[1]


def times(value, factor):
    """value * factor, or None where that is no finite number (1e3 * 1e308)."""
    return value * factor if is_number(value) and is_number(value * factor) else None


def quotient(a, b):
    """a / b of two numbers, or None where that is no finite number (b is 0, or it overflows)."""
    if not (is_number(a) and is_number(b)) or b == 0:
        return None
    try:
        q = a / b
    except OverflowError:  # of two ints
        return None
    return q if math.isfinite(q) else None


SHORT = reprlib.Repr()
SHORT.maxstring = SHORT.maxother = SHORT.maxlong = 60


def shown(value):
    """repr(value) for a skipped line's reason, cut short (a value can be kilobytes of nested lists)."""
    return SHORT.repr(value)


def median_seconds(record):
    batches = record.get("batch_seconds")
    return batches.get("median") if isinstance(batches, dict) else None


def check(record):
    """Returns why `record` cannot be used, or "" when it can."""
    if not isinstance(record, dict):
        return "not a JSON object"
    binary = record.get("binary")
    if binary not in TRAIN + INFER + (COMPARE,):
        return f"unknown binary {shown(binary)}" if binary is not None else "no binary field"
    if record.get("schema_version", SCHEMA_VERSION) != SCHEMA_VERSION:
        return f"schema_version {shown(record['schema_version'])}; this report reads {SCHEMA_VERSION}"
    if binary == COMPARE:
        return check_comparison(record)
    if record.get("model") is None and is_kind(record.get("depth"), int):  # model from depth
        record["model"] = f"resnet{record['depth']}"
    need = {"model": str, "batch_size": int}
    need.update({"precision": str, "devices": int} if binary in TRAIN else {"variant": str})
    problems = field_problems(record, need)
    epoch, throughput = record.get("avg_epoch_seconds"), record.get("throughput")
    if binary in TRAIN and not (is_number(epoch) or is_number(throughput)):
        problems.append("lacks avg_epoch_seconds and throughput" if epoch is None and throughput is None else
                        f"has no usable avg_epoch_seconds ({shown(epoch)}) or throughput ({shown(throughput)})")
    elif binary in TRAIN and is_number(epoch) and epoch != 0 and not plausible_seconds(epoch):  # 1 epoch: 0
        problems.append(f"has a bad avg_epoch_seconds ({shown(epoch)}): not 0 or {SECONDS_TEXT}")
    if binary in INFER and not plausible_seconds(median_seconds(record)):
        median = median_seconds(record)
        problems.append("lacks batch_seconds.median" if median is None else
                        f"has a bad batch_seconds.median ({shown(median)}): not {SECONDS_TEXT}")
    problems += [f"has a bad {field} ({shown(record[field])}): more than {MAX_COUNT}"
                 for field in ("devices", "threads") if is_kind(record.get(field), int) and record[field] > MAX_COUNT]
    problems += optional_field_problems(record, need)
    return f"{binary} record {', '.join(problems)}" if problems else ""


def field_problems(record, need):
    """What is wrong with `record`'s fields that `need` (field -> type) names;
    text must not be blank (it names the chart's bars)."""
    return [f"lacks {field}" if record.get(field) is None else f"has a bad {field} ({shown(record[field])})"
            for field, kind in need.items()
            if not is_kind(record.get(field), kind) or (kind is str and not record[field].strip())]


def optional_field_problems(record, need):
    """What is wrong with `record`'s OPTIONAL fields (other than those in `need`)."""
    return [f"has a bad {field} ({shown(record[field])})" for field, kind in OPTIONAL.items()
            if field not in need and record.get(field) is not None and not is_kind(record[field], kind)]


def check_comparison(record):
    """check() for a cpp_vs_python record: what was compared and both medians."""
    need = {"work": str, "variant": str, "batch_size": int}
    problems = field_problems(record, need)
    problems += [f"lacks {field}" if record.get(field) is None else f"has a bad {field} ({shown(record[field])})"
                 for field in ("cpp_seconds", "python_seconds") if not plausible_seconds(record.get(field))]
    problems += optional_field_problems(record, need)
    return f"{COMPARE} record {', '.join(problems)}" if problems else ""


def without_surrogates(text):
    """`text` with each lone surrogate (a JSON "\\ud800" escape without its pair)
    replaced by U+FFFD, as bytes that are not UTF-8 are: such text cannot be
    written to the report or drawn."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def read_records(path):
    """Returns (records, skipped): the usable records, each with its line number
    in "_line", and (line, why) for the others. Raises OSError."""
    records, skipped = [], []
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line.rstrip("\r\n"))
            except json.JSONDecodeError as e:
                skipped.append((number, f"not JSON ({e.msg}, column {e.colno})"))
                continue
            except RecursionError:  # [[[[... a thousand deep
                skipped.append((number, "not JSON that Python reads (nested too deeply)"))
                continue
            except ValueError as e:  # a number of more than 4300 digits (sys.get_int_max_str_digits)
                skipped.append((number, f"not JSON that Python reads ({str(e).split(';')[0]})"))
                continue
            if isinstance(record, dict):  # the report prints a record's fields' text, and str() of the others
                record = {k: without_surrogates(v) if isinstance(v, str) else v for k, v in record.items()}
            why = check(record)
            if why:
                skipped.append((number, why))
            else:
                record["_line"] = number
                records.append(record)
    return records, skipped


# Labels and configurations.

def model_name(model):
    match = re.fullmatch(r"resnet(\d+)", model)
    return f"ResNet-{match[1]}" if match else model


def method(r):
    n = r["devices"]
    if r["binary"] == "resnet_dp":
        return f"DP ×{n}"
    if r["binary"] == "resnet_ddp" or (r["binary"] == "roberta_train" and n > 1):
        return f"DDP ×{n}" + (" no overlap" if r.get("overlap") is False else "")
    return "1 device"


def precision(r):
    """The precision and what else sets a training run apart from the
    defaults: channels_last, no augmentation, the SGD's foreach kernels."""
    return r["precision"] + (" channels_last" if r.get("channels_last") else "") + regimen(r)


def regimen(r):
    """What sets a training run apart from the defaults other than its
    precision and memory format: its speed-up is over a run with the same."""
    return ((" no augmentation" if r.get("augment") is False else "")
            + (" foreach SGD" if r.get("optimizer_kernels") == "foreach" else ""))


def sequence(r):
    """A RoBERTa record's sequence length, and whether each batch was padded to it ("" without one)."""
    return f", seq {r['max_len']}" + (" padded" if r.get("pad_to_max_len") else "") if r.get("max_len") else ""


def cpu_threads(r):
    """The threads a training run on a CPU used in all (DDP: a process's
    threads times its processes), else None (a GPU's host threads are not what
    it measures)."""
    if "cuda" in str(r.get("device")) or not r.get("threads"):
        return None
    return r["threads"] * (r["devices"] if method(r).startswith("DDP") else 1)


def train_group(r):
    """A training record's model, sequence length and CPU threads: its speed-ups compare runs of the same."""
    threads = cpu_threads(r)
    return model_name(r["model"]) + sequence(r) + (f", {threads} threads" if threads else "")


def batch(r):
    return f"batch {r['batch_size']}" + ("/process" if method(r).startswith("DDP") else "")


def train_label(r):
    return f"{method(r)}, {precision(r)}, {batch(r)}"


def variant(r):
    engine = r.get("engine")
    name = r["variant"] + (f" ({engine})" if engine and r["variant"].startswith("int8") else "")
    # resnet_gpu_script runs each variant in fp32 and in fp16 (bf16 on a CPU) with channels_last.
    if r.get("precision") not in (None, "fp32"):
        name += f" {r['precision']}" + (" channels_last" if r.get("channels_last") else "")
    return name


def layout(r):
    """An inference record's precision and memory format."""
    return r.get("precision") or "fp32", bool(r.get("channels_last"))


def infer_group(r):
    label = f"{model_name(r['model'])}{' mixed-trained' if r.get('mixed') else ''}, batch {r['batch_size']}"
    label += sequence(r)
    return label + (f", {r['threads']} threads" if "cuda" not in str(r.get("device")) and r.get("threads") else "")


def describe(r):
    if r["binary"] == COMPARE:
        return f"{COMPARE}: {r['work']}, {r['variant']}, batch {r['batch_size']}"
    if r["binary"] in TRAIN:
        return f"{r['binary']}: {train_group(r)}, {train_label(r)}"
    return f"{r['binary']}: {model_name(r['model'])}, {infer_group(r)}, {variant(r)}"


def config(r):
    """What makes two records measurements of the same thing."""
    if r["binary"] == COMPARE:
        return (r["binary"], r["work"], compare_variant(r), r["batch_size"], r.get("threads"), r.get("device"),
                r.get("sequence_length"))
    if r["binary"] in TRAIN:
        return (r["binary"], r["model"], precision(r), r["devices"], r["batch_size"], r.get("overlap") is not False,
                sequence(r), cpu_threads(r))
    return (r["binary"], r["model"], r["variant"], r["batch_size"], r.get("threads"), r.get("device"),
            bool(r.get("mixed")), r.get("engine") or "", r.get("precision") or "fp32", bool(r.get("channels_last")),
            sequence(r))


def section_key(r):
    return tuple(str(r.get(k) or "?") for k in ("device_name", "hostname", "libtorch_version", "dataset"))


def train_order(r):
    kind = 0 if method(r) == "1 device" else 1 if r["binary"] == "resnet_dp" else 2
    prec = PRECISIONS.index(r["precision"]) if r["precision"] in PRECISIONS else len(PRECISIONS)
    return (kind, r["devices"], r.get("overlap") is False, prec, bool(r.get("channels_last")), r["batch_size"])


def variant_order(name):
    base = name.split(" ")[0]
    return (VARIANTS.index(base) if base in VARIANTS else len(VARIANTS), name)


def latest(records):
    """Keeps the latest record (by timestamp, then line) of each configuration;
    returns (kept, notes saying which records were set aside)."""
    same = collections.defaultdict(list)
    for r in records:
        same[config(r)].append(r)
    kept, notes = [], []
    for group in same.values():
        group.sort(key=lambda r: (str(r.get("timestamp") or ""), r["_line"]))
        last = group[-1]
        kept.append(last)
        if len(group) > 1:
            lines = ", ".join(str(n) for n in sorted(r["_line"] for r in group))
            notes.append(f"{describe(last)}: {len(group)} records (lines {lines}); "
                         f"the latest, line {last['_line']} ({last.get('timestamp') or 'no timestamp'}), is used")
    return kept, notes


# Numbers.

def fmt(value, spec):
    return format(value, spec) if is_number(value) else "-"


def speedup(base, r):
    """Returns (speed-up of r over base, mark): from the average epoch time when
    both ran the same full epochs, else from throughput (marked *)."""
    full = (not base.get("max_steps") and not r.get("max_steps")
            and base.get("train_samples") == r.get("train_samples"))
    if full and positive(base.get("avg_epoch_seconds")) and positive(r.get("avg_epoch_seconds")):
        value = quotient(base["avg_epoch_seconds"], r["avg_epoch_seconds"])
        if value is not None:
            return value, ""
    if positive(base.get("throughput")) and positive(r.get("throughput")):
        return quotient(r["throughput"], base["throughput"]), "*"
    return None, ""


def speedup_text(value, mark):
    return f"{value:.2f}x{mark}" if value is not None else "-"


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def percent(value):
    return f"{100 * value:.1f} %" if times(value, 100) is not None else "-"


def accuracy(r):
    """Test accuracy (ResNet), or dev-set accuracy (RoBERTa: roberta_infer's
    "accuracy", roberta_train's last "dev_accuracy")."""
    if is_number(r.get("test_accuracy")):
        return r["test_accuracy"]
    if is_number(r.get("accuracy")):
        return r["accuracy"]
    dev = r.get("dev_accuracy")
    return dev[-1] if isinstance(dev, list) and dev and is_number(dev[-1]) else None


# Figures: each takes a section's records and returns None when it has none to
# show, else a dict (see chart_result): table lines, chart (groups, series,
# values, ylabel, spec, hline) or None, caption, notes, the records shown.


def train_row(r, speed):
    return [train_group(r), method(r), precision(r), r["batch_size"], fmt(r.get("avg_epoch_seconds"), ".2f"),
            fmt(r.get("throughput"), ".0f"), percent(accuracy(r)), speed]


def unit(records):
    """The records' throughput unit (images/s, sequences/s)."""
    return next((r["throughput_unit"] for r in records if isinstance(r.get("throughput_unit"), str)), "items/s")


def train_header(records):
    return ["model", "method", "precision", "batch", "avg epoch (s)", unit(records), "test accuracy", "speed-up"]


THROUGHPUT_NOTE = ("Speed-ups marked \\* are from throughput (items/s): those runs' epochs differ (--max_steps or data size), "
                   "so their epoch times do not compare.")


def speedup_by_method(records, binaries):
    rs = sorted((r for r in records if r["binary"] in binaries and not r.get("channels_last")),
                key=lambda r: (len(r["model"]), r["model"], train_group(r), train_order(r)))
    if not rs:
        return None
    rows, values, ones, notes = [], {}, {}, {}
    for r in rs:
        group = train_group(r)
        base = baseline([o for o in rs if train_group(o) == group], r, lambda o: method(o) == "1 device")
        if base is None:
            notes[f"{group}: no 1-device fp32{regimen(r)} record, so no speed-up."] = None
        else:
            ones[f"{group}: {train_label(base)} ({fmt(base.get('avg_epoch_seconds'), '.2f')} s an epoch)"] = None
        s, mark = speedup(base, r) if base else (None, "")
        rows.append(train_row(r, speedup_text(s, mark)))
        if s is not None:
            values[group, train_label(r)] = s
    notes = list(notes)
    if any(row[-1].endswith("*") for row in rows):
        notes.append(THROUGHPUT_NOTE)
    caption = ("Speed-up = the 1-device fp32 run's average epoch time (epochs after the first) / this run's, "
               "of the same model, sequence length, CPU threads in all, augmentation and SGD kernels; "
               "1.0 = " + "; ".join(ones) + "." if ones else "")
    return chart_result(train_header(rs), rows, values, rs, train_label, "speed-up (1.0 = 1 device, fp32)", ".2f",
                        1.0, caption, notes)


def baseline(records, r, is_single):
    """The 1-device fp32 NCHW record to compare `r` with: of `r`'s regimen
    (augmentation, SGD kernels), at the batch size most of `records` use
    (ties: the larger), else None."""
    singles = [o for o in records if is_single(o) and o["precision"] == "fp32" and not o.get("channels_last")
               and regimen(o) == regimen(r)]
    if not singles:
        return None
    counts = collections.Counter(o["batch_size"] for o in records)
    return max(singles, key=lambda o: (counts[o["batch_size"]], o["batch_size"]))


def chart_result(header, rows, values, records, series_of, ylabel, spec, hline, caption, notes):
    groups = list(dict.fromkeys(g for g, _ in values))
    shown = {s for _, s in values}
    series = [s for s in dict.fromkeys(map(series_of, records)) if s in shown]
    chart = (groups, series, values, ylabel, spec, hline) if values else None
    return {"table": table(header, rows), "chart": chart, "caption": caption, "notes": notes, "records": records}


def time_by_batch(records, binaries):
    rs = [r for r in records if r["binary"] in binaries and positive(r.get("avg_epoch_seconds"))]
    runs = collections.defaultdict(list)
    for r in rs:
        runs[train_group(r), method(r), precision(r)].append(r)
    runs = {k: sorted(v, key=lambda r: r["batch_size"]) for k, v in runs.items() if len(v) > 1}
    if not runs:
        return None
    rows, values, used, estimated = [], {}, [], False
    for key in sorted(runs, key=lambda k: (len(k[0]), k[0], train_order(runs[k][0]))):
        group = ", ".join(key)
        for r in runs[key]:
            seconds, mark = epoch_time(r)
            estimated = estimated or mark == "*"
            rows.append([*key, r["batch_size"], fmt(r["avg_epoch_seconds"], ".2f"),
                         fmt(seconds, ".2f") + mark if seconds is not None else "-", fmt(r.get("throughput"), ".0f"),
                         r.get("max_steps") or "all"])
            if seconds is not None:
                values[group, f"batch {r['batch_size']}"] = seconds
            used.append(r)
    used.sort(key=lambda r: r["batch_size"])
    caption = ("Epoch time (the average over the epochs after the first) of each configuration run at two or more "
               "batch sizes; DDP's batch is per process, DP's is split over its devices.")
    notes = [] if not estimated else [
        "Epoch times marked * are the whole training set at the run's throughput (train samples / images or "
        "samples a second): those runs stopped each epoch after a number of steps, so their own epochs hold more "
        "samples at a larger batch and do not compare."]
    return chart_result(["model", "method", "precision", "batch", "avg epoch (s)", "epoch time compared (s)",
                         unit(used), "steps an epoch"],
                        rows, values, used, lambda r: f"batch {r['batch_size']}", "epoch time (s)", ".2f",
                        None, caption, notes)


def epoch_time(r):
    """(seconds, mark): the run's average epoch time when its epochs were
    whole, else the whole training set's time at its throughput (marked *);
    (None, "") when neither is known."""
    if not r.get("max_steps"):
        return r["avg_epoch_seconds"], ""
    if positive(r.get("throughput")) and positive(r.get("train_samples")):
        return quotient(r["train_samples"], r["throughput"]), "*"
    return None, ""


def inference(records, binary, device=None):
    rs = [r for r in records if r["binary"] == binary
          and (device is None or ("cuda" in str(r.get("device"))) == (device == "cuda"))]
    if not rs:
        return None
    rs.sort(key=lambda r: (infer_group(r), variant_order(variant(r))))
    rows, values = [], {}
    for r in rs:
        eagers = [e for e in rs if infer_group(e) == infer_group(r) and e["variant"] == "eager"]
        eager = next((e for e in eagers if layout(e) == layout(r)), None)
        fp32 = next((e for e in eagers if layout(e) == ("fp32", False)), None) if eager is None else None
        b = r["batch_seconds"]
        ms = times(b["median"], 1e3)
        vs_eager = quotient(median_seconds(eager or fp32), b["median"]) if eager or fp32 else None
        rows.append([infer_group(r), variant(r), fmt(ms, ".2f"),
                     f"{fmt(times(b['p10'], 1e3), '.2f')}–{fmt(times(b['p90'], 1e3), '.2f')}"
                     if is_number(b.get("p10")) and is_number(b.get("p90")) else "-",
                     fmt(r.get("total_seconds"), ".2f"), fmt(r.get("throughput"), ".0f"), percent(accuracy(r)),
                     speedup_text(vs_eager, "") + (" vs fp32 eager" if fp32 and vs_eager is not None else "")])
        if ms is not None:
            values[infer_group(r), variant(r)] = ms
    caption = ("Median time a batch (lower is better); the table adds p10–p90, the whole test set's time and "
               "the speed-up over eager in the same precision and memory format (else over fp32 eager, so marked).")
    return chart_result(["model", "variant", "median ms a batch", "p10–p90 ms", "total (s)", unit(rs),
                         "test accuracy", "vs eager"], rows, values, rs, variant, "median ms a batch", ".1f", None,
                        caption, [])


def precision_and_layout(records):
    rs = [r for r in records if r["binary"] == "resnet_single"]
    if not any(r["precision"] == "bf16" or r.get("channels_last") for r in rs):
        return None
    rs.sort(key=lambda r: ((len(r["model"]), r["model"]), train_group(r), r["batch_size"], train_order(r)))
    rows, values, notes = [], {}, []
    for r in rs:
        group = f"{train_group(r)}, batch {r['batch_size']}"
        base = baseline([o for o in rs if f"{train_group(o)}, batch {o['batch_size']}" == group], r, lambda o: True)
        s, mark = speedup(base, r) if base else (None, "")
        rows.append(train_row(r, speedup_text(s, mark)))
        if s is not None:
            values[group, precision(r)] = s
    if any(row[-1].endswith("*") for row in rows):
        notes.append(THROUGHPUT_NOTE)
    caption = ("1 device; speed-up = the fp32 (NCHW) run's average epoch time / this run's, "
               "for the same model, batch size, CPU threads, augmentation and SGD kernels (1.0 = fp32).")
    return chart_result(train_header(rs), rows, values, rs, precision, "speed-up (1.0 = fp32)", ".2f", 1.0,
                        caption, notes)


ROBERTA_SIZES = ["roberta-small", "roberta-base", "roberta-large"]


def model_order(model):
    """ResNets by depth, then RoBERTa small, base, large, then the others by name."""
    model = str(model)
    match = re.fullmatch(r"resnet(\d+)", model)
    if match:
        return (0, int(match[1]), model)
    return (1, ROBERTA_SIZES.index(model), model) if model in ROBERTA_SIZES else (2, 0, model)


def work_order(r):
    """Training steps, then DDP, then inference; smaller models first."""
    work = r["work"]
    kind = 0 if "train" in work else 1 if "ddp" in work else 2
    return (kind, model_order(r.get("model") or work.split(" ")[0]), work)


def compare_group(r, records):
    """The chart group of a cpp_vs_python record: its work and batch size, and
    the threads and sequence length where records of that work differ in them."""
    label = f"{r['work']}\nbatch {r['batch_size']}" + ("/process" if "ddp" in r["work"] else "")
    same = [o for o in records if o["work"] == r["work"] and o["batch_size"] == r["batch_size"]]
    if len({o.get("sequence_length") for o in same}) > 1:
        label += f", seq {r.get('sequence_length')}"
    if len({o.get("threads") for o in same}) > 1:
        label += f", {r.get('threads')} threads"
    return label


def compare_variant(r):
    """A cpp_vs_python record's variant, with the optimizers of a training
    step where the record names them (C++'s SGD kernels, Python's
    torch.optim implementation)."""
    cpp, python = r.get("cpp_optimizer_kernels"), r.get("python_implementation")
    if not isinstance(cpp, str) and not isinstance(python, str):
        return r["variant"]
    return f"{r['variant']} (SGD: C++ {cpp or '?'}, Python {python or '?'})"


def torch_version(version):
    return str(version).split("+")[0]  # "2.13.0+cpu" -> "2.13.0"


def cpp_against_python(records):
    rs = sorted((r for r in records if r["binary"] == COMPARE),
                key=lambda r: (work_order(r), r["batch_size"], variant_order(r["variant"]),
                               str(r.get("threads")), str(r.get("sequence_length"))))
    if not rs:
        return None
    rows, values, notes = [], {}, []
    for r in rs:
        ratio = quotient(r["python_seconds"], r["cpp_seconds"])
        rows.append([r["work"], compare_variant(r), r["batch_size"], r.get("threads") or "-",
                     fmt(times(r["cpp_seconds"], 1e3), ".2f"), fmt(times(r["python_seconds"], 1e3), ".2f"),
                     speedup_text(ratio, ""),
                     r.get("rounds") if isinstance(r.get("rounds"), int) else "-",
                     r.get("python_torch_version") or "-"])
        if ratio is not None:
            values[compare_group(r, rs), compare_variant(r)] = ratio
    mismatched = sorted({f"{r['work']} (LibTorch {r.get('libtorch_version')}, Python torch "
                         f"{r.get('python_torch_version')})" for r in rs
                         if torch_version(r.get("python_torch_version")) != torch_version(r.get("libtorch_version"))})
    if mismatched:
        notes.append("C++ and Python ran different torch versions: " + "; ".join(mismatched) + ".")
    caption = ("Python PyTorch's median time a step or batch / C++'s (LibTorch) for the same work on the same "
               "machine, timed in alternating rounds by tools/train_step_report.py, infer_report.py, ddp_report.py "
               "and roberta_infer_report.py: > 1 means C++ faster, 1.0 = the same speed; the table gives both "
               "medians (ms a step or batch).")
    return chart_result(["work", "variant", "batch", "threads", "C++ ms (median)", "Python ms (median)",
                         "Python / C++", "rounds", "Python torch"], rows, values, rs, compare_variant,
                        "Python time / C++ time (> 1: C++ faster)", ".2f", 1.0, caption, notes)


INT8 = {  # binary -> (its int8 variant, quantization, whose)
    "resnet_cpu_infer": ("int8", "static", "ResNet, resnet_cpu_infer"),
    "roberta_infer": ("int8-dynamic", "dynamic", "RoBERTa, roberta_infer"),
}


def int8_pair_key(r):
    return (r["binary"], r["model"], r["batch_size"], r.get("threads"), bool(r.get("mixed")), r.get("dataset"),
            sequence(r))


def int8_static_vs_dynamic(records):
    """The int8 variant's speed-up over fp32 eager in C++, for each model; a
    chart series for each kind of quantization and engine."""
    pairs, notes = [], []
    for binary, (int8, kind, whose) in INT8.items():
        rs = [r for r in records if r["binary"] == binary and "cuda" not in str(r.get("device"))]
        for q in sorted((r for r in rs if r["variant"] == int8),
                        key=lambda r: (model_order(r["model"]), infer_group(r), str(r.get("engine")))):
            eager = next((e for e in rs if e["variant"] == "eager" and int8_pair_key(e) == int8_pair_key(q)), None)
            series = f"{kind} int8 ({whose}" + (f", {q['engine']}" if q.get("engine") else "") + ")"
            if eager is None:
                notes.append(f"{describe(q)}: no eager record of the same model, batch size and threads.")
            else:
                pairs.append((kind, series, eager, q))
    if not pairs:
        return None
    for binary, (int8, kind, _) in INT8.items():
        if not any(k == kind for k, _, _, _ in pairs):
            notes.append(f"No {kind} int8 here: needs {binary} records of {int8} and eager on the CPU.")
    keys = [(infer_group(q), series) for _, series, _, q in pairs]
    rows, values = [], {}
    for (label, series), (kind, _, eager, q) in zip(keys, pairs):
        if keys.count((label, series)) > 1:  # the same model and batch on two data sets
            label += f", {q.get('dataset') or '?'}"
        speed = quotient(median_seconds(eager), median_seconds(q))
        rows.append([label, kind + (f" ({q['engine']})" if q.get("engine") else ""), q.get("dataset") or "-",
                     fmt(times(median_seconds(eager), 1e3), ".2f"), fmt(times(median_seconds(q), 1e3), ".2f"),
                     speedup_text(speed, "")])
        if speed is not None:
            values[label, series] = speed
    series_of = {id(q): series for _, series, _, q in pairs}
    caption = ("C++ int8 speed-up over fp32 eager = eager's median time a batch / int8's, same model, batch size and "
               "threads: static post-training quantization in resnet_cpu_infer (int8 weights and calibrated int8 "
               "activations; engine in brackets) against dynamic quantization in roberta_infer (int8 Linear "
               "weights, activations quantized batch by batch); 1.0 = as fast as fp32.")
    return chart_result(["model", "int8 quantization", "data", "fp32 eager ms a batch", "int8 ms a batch",
                         "int8 speed-up"], rows, values, [q for _, _, _, q in pairs], lambda q: series_of[id(q)],
                        "int8 speed-up over fp32 eager (1.0 = fp32)", ".2f", 1.0, caption, notes)


FIGURES = [  # (name, title, file stem, builder, what it needs)
    ("Figure 1", "ResNet training speed-up by method", "fig1-resnet-train-speedup",
     lambda rs: speedup_by_method(rs, RESNET_TRAIN), "resnet_single, resnet_dp or resnet_ddp records"),
    ("Figure 2", "RoBERTa training speed-up by method", "fig2-roberta-train-speedup",
     lambda rs: speedup_by_method(rs, ("roberta_train",)), "roberta_train records"),
    ("Figure 3", "ResNet training time by batch size", "fig3-resnet-batch-size",
     lambda rs: time_by_batch(rs, RESNET_TRAIN),
     "ResNet training records of one configuration at two or more batch sizes"),
    ("Figure 4", "RoBERTa training time by batch size", "fig4-roberta-batch-size",
     lambda rs: time_by_batch(rs, ("roberta_train",)),
     "roberta_train records of one configuration at two or more batch sizes"),
    ("Figure 5", "ResNet CPU inference", "fig5-resnet-cpu-infer",
     lambda rs: inference(rs, "resnet_cpu_infer"), "resnet_cpu_infer records"),
    ("Figure 6", "RoBERTa CPU inference", "fig6-roberta-cpu-infer",
     lambda rs: inference(rs, "roberta_infer", "cpu"), "roberta_infer records on the CPU"),
    ("Figure 7", "ResNet GPU inference", "fig7-resnet-gpu-infer",
     lambda rs: inference(rs, "resnet_gpu_script"), "resnet_gpu_script records"),
    ("Figure 8", "RoBERTa GPU inference", "fig8-roberta-gpu-infer",
     lambda rs: inference(rs, "roberta_infer", "cuda"), "roberta_infer records on a GPU"),
    ("Ours", "ResNet training precision and memory format (fp16, bf16, channels_last)",
     "ours-resnet-precision-layout", precision_and_layout, "resnet_single records in bf16 or channels_last"),
]
MACHINE_FIGURES = [  # as FIGURES, from a machine's records of all data sets
    ("Ours", "C++ against Python PyTorch", "ours-cpp-vs-python", cpp_against_python,
     "cpp_vs_python records: tools/*_report.py --results, or tools/sweep.py --peers"),
    ("Ours", "int8: static (ResNet) against dynamic (RoBERTa)", "ours-int8-static-vs-dynamic",
     int8_static_vs_dynamic, "resnet_cpu_infer int8 or roberta_infer int8-dynamic records beside eager ones"),
]


# Output.

def dates(records):
    days = sorted({str(r["timestamp"])[:10] for r in records if r.get("timestamp")})
    return "date unknown" if not days else days[0] if len(days) == 1 else f"{days[0]} to {days[-1]}"


def where(key):
    device_name, hostname, libtorch, _ = key
    return f"{device_name} ({hostname}), LibTorch {libtorch}"


# Agg saves images of under 2**16 pixels a side (595 inches at 110 dpi): the
# chart's width, its labels and its legend are kept well within that.
DPI = 110
MAX_WIDTH = 400  # inches; more groups than fit are squeezed
LEGEND_ENTRIES = 40


def clip(text, chars=60, lines=3):
    """`text` cut to `lines` lines of `chars` characters each, for a chart's label."""
    parts = str(text).splitlines() or [""]
    cut = [part if len(part) <= chars else part[:chars - 1] + "…" for part in parts[:lines]]
    return "\n".join(cut + (["…"] if len(parts) > lines else []))


def bar_chart(path, title, subtitle, groups, series, values, ylabel, spec, hline):
    """Grouped bars: one group per x tick, each group's bars centred on it, one colour per series."""
    colors = plt.get_cmap("tab10" if len(series) <= 10 else "tab20").colors
    color = {name: colors[i % len(colors)] for i, name in enumerate(series)}
    present = [[name for name in series if (group, name) in values] for group in groups]
    width = min(0.3, 0.8 / (max(map(len, present), default=0) or 1))
    ticks = [clip(group) for group in groups]
    longest = max((len(line) for tick in ticks for line in tick.splitlines()), default=1)  # x labels must not overlap
    fig, ax = plt.subplots(figsize=(min(MAX_WIDTH, max(6.0, 1.5 + width * sum(map(len, present)) * 1.6,
                                                       1.5 + len(groups) * (0.07 * longest + 0.2))), 4.5))
    for g, (group, names) in enumerate(zip(groups, present)):
        for i, name in enumerate(names):
            bars = ax.bar(g + (i - (len(names) - 1) / 2) * width, values[group, name], width, color=color[name])
            ax.bar_label(bars, labels=[format(values[group, name], spec)], fontsize=7)
    if hline is not None:
        ax.axhline(hline, color="gray", linewidth=0.8, linestyle="--")
    ax.set_xticks(range(len(groups)), ticks, fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(f"{clip(title, 150, 2)}\n{clip(subtitle, 150, 2)}", fontsize=10)
    handles = [matplotlib.patches.Patch(color=color[name], label=clip(name)) for name in series[:LEGEND_ENTRIES]]
    if len(series) > LEGEND_ENTRIES:
        handles.append(matplotlib.patches.Patch(color="white", label=f"and {len(series) - LEGEND_ENTRIES} more"))
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    write_whole(path, lambda temporary: fig.savefig(temporary, format="png", dpi=DPI, bbox_inches="tight"))
    plt.close(fig)


def write_whole(path, write):
    """Calls write(a temporary file's name), then renames that file to `path`:
    `path` is whole or as it was. Raises what `write` raises, and OSError."""
    temporary = path + ".tmp"
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def slug(text):
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-")


def chart_file(key, stem, taken):
    """The file name of figure `stem`'s chart for `key` (device name, host,
    LibTorch, data set): their slug, cut short to keep the name within any file
    system's 255 bytes, and numbered where another chart of this report (in
    `taken`, which it joins) has the name: machines whose names differ only in
    punctuation or case slug the same."""
    prefix = slug("-".join(filter(None, (key[1], key[0], key[2], key[3]))))[:160].strip("-")
    base = f"{prefix}-{stem}" if prefix else stem
    name, n = f"{base}.png", 2
    while name in taken:
        name, n = f"{base}-{n}.png", n + 1
    taken.add(name)
    return name


def data_sets(records):
    names = sorted({str(r["dataset"]) for r in records if r.get("dataset")})
    return " and ".join(names)


def draw(figures, records, key, out, drawn, files):
    """The Markdown of each of `figures` that `records` (of the machine and,
    where key[3] is set, data set `key`) can show; writes their charts, adds
    their file stems to `drawn` and the charts' file names to `files`."""
    lines = []
    for name, title, stem, build, _ in figures:
        figure = build(records)
        if figure is None:
            continue
        drawn.add(stem)
        subtitle = f"{where(key)}, {dates(figure['records'])}"
        lines += [f"### {name}: {title}", ""]
        if figure["chart"]:
            png = chart_file(key, stem, files)
            bar_chart(os.path.join(out, png), f"{name}: {title}", subtitle, *figure["chart"])
            lines += [f"![{name}: {title}]({png})", ""]
        else:
            lines += ["No chart: nothing to compare with (see the notes).", ""]
        data = key[3] or data_sets(figure["records"])
        caption = " ".join(filter(None, [f"{subtitle}{', ' + data if data else ''}.", figure["caption"]]))
        lines += [f"*{caption}*", ""] + figure["table"] + [""]
        lines += [f"- {note}" for note in figure["notes"]] + ([""] if figure["notes"] else [])
    return lines


MAX_COMMANDS = 60  # a section lists at most this many commands


def commands(records):
    """The Markdown that lists the commands behind `records` (their "command"
    and "git_revision" fields), each once, in the file's order, in a fenced
    block; records that do not name their command are counted."""
    runs, unnamed = {}, 0
    for r in sorted(records, key=lambda r: r["_line"]):
        command = r.get("command")
        if isinstance(command, str) and command.strip():
            runs.setdefault(f"git {r.get('git_revision') or 'unknown'}: {command}", None)
        else:
            unnamed += 1
    if not runs and not unnamed:
        return []
    lines = ["### Commands", ""]
    if runs:
        shown = list(runs)[:MAX_COMMANDS]
        fence = "`" * max(3, 1 + max(len(run) for run in re.findall(r"`+", "\n".join(shown)) or [""]))
        lines += ["The runs behind the records above, each with the git revision it ran at; a binary's "
                  "command runs again from `bazel-bin/<package>/`, a script's from `tools/`.", "",
                  fence] + shown + [fence, ""]
        if len(runs) > MAX_COMMANDS:
            lines += [f"- and {len(runs) - MAX_COMMANDS} more.", ""]
    if unnamed:
        lines += [f"- {unnamed} record{'s do' if unnamed > 1 else ' does'} not say how "
                  f"{'they were' if unnamed > 1 else 'it was'} run (written before the records named their "
                  "command).", ""]
    return lines


def render(path, records, skipped, out):
    """Writes out/report.md and the charts."""
    lines = ["# dlspeed results report", "",
             f"From `{path}`: {len(records)} records used, {len(skipped)} lines skipped. "
             "Where several records share a configuration, the latest (by timestamp) is used, "
             "and each such case is listed under its machine.", ""]
    if not records:
        lines += ["This results file holds no usable records.", ""]
    machines = collections.defaultdict(dict)  # (device name, host, LibTorch) -> data set -> records
    comparisons = collections.defaultdict(list)  # the machine's cpp_vs_python records (no data set)
    for r in records:
        key = section_key(r)
        if r["binary"] == COMPARE:
            machines[key[:3]]  # in the order the file first names the machines
            comparisons[key[:3]].append(r)
        else:
            machines[key[:3]].setdefault(key[3], []).append(r)
    drawn, files = set(), set()
    for machine, data in machines.items():  # in the order the file first names them
        everything = []
        for dataset, rs in data.items():
            key = machine + (dataset,)
            kept, repeated = latest(rs)
            everything += kept
            lines += [f"## {where(key)}, {dataset}", "", f"Records of {dates(kept)}.", ""]
            lines += draw(FIGURES, kept, key, out, drawn, files)
            if repeated:
                lines += ["### Repeated configurations", ""] + [f"- {note}" for note in repeated] + [""]
            lines += commands(kept)
        kept, repeated = latest(comparisons[machine])
        shown = draw(MACHINE_FIGURES, everything + kept, machine + ("",), out, drawn, files)
        if shown or repeated:
            lines += [f"## {where(machine + ('',))}, across data sets", "",
                      "Figures from this machine's records of all data sets.", ""] + shown
            if repeated:
                lines += ["### Repeated configurations", ""] + [f"- {note}" for note in repeated] + [""]
            lines += commands(kept)
    missing = [(name, title, needs) for name, title, stem, _, needs in FIGURES + MACHINE_FIGURES
               if stem not in drawn]
    if missing and records:
        lines += ["## Not in this results file", ""]
        lines += [f"- {name}: {title} (needs {needs})" for name, title, needs in missing] + [""]
    if skipped:
        lines += ["## Skipped lines", ""] + table(["line", "why"], [(n, why.replace("|", "\\|")) for n, why in skipped])
        lines += [""]
    text = "\n".join(lines).rstrip("\n") + "\n"
    write_whole(os.path.join(out, "report.md"), lambda temporary: pathlib.Path(temporary).write_text(text, "utf-8"))


def main(argv=None):
    if os.environ.get("BUILD_WORKING_DIRECTORY"):  # `bazel run`: paths are the user's
        os.chdir(os.environ["BUILD_WORKING_DIRECTORY"])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", help="JSON Lines results file")
    parser.add_argument("--out", required=True, help="directory for report.md and the PNG charts")
    args = parser.parse_args(argv)
    if plt is None:
        print("report: matplotlib is missing: apt-get install python3-matplotlib (and run /usr/bin/python3)",
              file=sys.stderr)
        return 1
    try:
        records, skipped = read_records(args.results)
    except OSError as e:
        print(f"report: cannot read {args.results}: {e.strerror or e}", file=sys.stderr)
        return 1
    for number, why in skipped:
        print(f"report: line {number}: {why}", file=sys.stderr)
    if not records:
        print(f"report: {args.results} holds no usable record; nothing written to {args.out}", file=sys.stderr)
        return 1
    try:
        os.makedirs(args.out, exist_ok=True)
        render(args.results, records, skipped, args.out)
    except OSError as e:
        print(f"report: cannot write to {args.out}: {e.strerror or e}", file=sys.stderr)
        return 1
    print(f"report: wrote {os.path.join(args.out, 'report.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
