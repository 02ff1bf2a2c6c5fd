#!/usr/bin/env python3
"""Fuzz target for tools/report.py's results reader: each input is a results
file (JSON Lines, any bytes) that report.read_records reads and report.render
writes a report of. Every line must be used or listed as skipped with a reason,
and neither may raise. report.bar_chart is replaced by a check of its
arguments (values finite, every bar in a group and a series, a file name that
fits) so that an input takes milliseconds; see check_bar_chart.

With atheris (pip install atheris==2.3.0, in a venv made with
--system-site-packages to see Debian's matplotlib), libFuzzer flags and corpus
directories (the first one gets the new inputs; a crash is written to
crash-<sha1> in the current directory, or under -artifact_prefix):

  python3 fuzz/report_fuzzer.py -max_total_time=60 -max_len=4096 -dict=fuzz/report_fuzzer.dict \\
      /tmp/corpus fuzz/corpus/report_fuzzer fuzz/regressions/report_fuzzer

Half the mutations are libFuzzer's, half change one record's field to an edge
value (custom_mutator). A crash found this way belongs, fixed, under
fuzz/regressions/report_fuzzer/ with a name that says what it was.

Without atheris, or with -runs=0, runs each file in the named directories
(and each named file) once and says how many ran: the regression replay that
`bazel test //fuzz:report_fuzzer_test` runs on fuzz/corpus/report_fuzzer and
fuzz/regressions/report_fuzzer (inputs that once crashed it). With
REPORT_FUZZER_DRAW=1 the charts are drawn too, after the checks (slow).
"""
import atexit
import inspect
import json
import math
import os
import random
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))  # not realpath: in Bazel's runfiles tools/ lies beside fuzz/
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tools"))

try:
    import atheris
except ImportError:
    atheris = None

if atheris is not None:
    import matplotlib.pyplot  # noqa: F401  (imported here, so not instrumented: only report is)

    with atheris.instrument_imports(include=["report"]):
        import report
else:
    import report

NAME_MAX = 255  # bytes in a file name (Linux)
BAR_CHART_PARAMETERS = ["path", "title", "subtitle", "groups", "series", "values", "ylabel", "spec", "hline"]
if list(inspect.signature(report.bar_chart).parameters) != BAR_CHART_PARAMETERS:
    sys.exit(f"report_fuzzer: report.bar_chart{inspect.signature(report.bar_chart)} is not what check_bar_chart "
             f"checks ({', '.join(BAR_CHART_PARAMETERS)}): update check_bar_chart")

WORK = tempfile.mkdtemp(prefix="report_fuzzer-", dir=os.environ.get("TEST_TMPDIR"))
atexit.register(shutil.rmtree, WORK, ignore_errors=True)
RESULTS = os.path.join(WORK, "results.jsonl")
OUT = os.path.join(WORK, "out")
os.mkdir(OUT)
charts = set()  # the chart paths of the input being run


def is_real(value):
    """A finite int or float (not a bool): what matplotlib can draw a bar or a line at."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond a float's range
        return False


def is_text(value):
    """A str that can be written out as UTF-8 (no lone surrogates)."""
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_bar_chart(path, title, subtitle, groups, series, values, ylabel, spec, hline):
    """Stands in for report.bar_chart (same parameters): checks what it would
    draw instead of drawing. groups: the x ticks; series: the bars' colours;
    values: (group, series) -> bar height; hline: a reference line or None.
    Raises AssertionError where the arguments would fail or draw nonsense."""
    assert is_text(path) and path.endswith(".png"), f"chart path {path!r}"
    assert os.path.dirname(path) == OUT, f"chart {path!r} is not in the output directory {OUT!r}"
    name = os.path.basename(path)
    assert len(name.encode("utf-8")) <= NAME_MAX, f"chart file name of {len(name.encode('utf-8'))} bytes: {name!r}"
    assert path not in charts, f"two charts of one report written to {name!r}"
    charts.add(path)
    for label, text in (("title", title), ("subtitle", subtitle), ("ylabel", ylabel)):
        assert is_text(text), f"chart {label} {text!r}"
    assert isinstance(spec, str), f"spec {spec!r}"
    assert isinstance(groups, list) and groups, f"groups {groups!r}"
    assert isinstance(series, list) and series, f"series {series!r}"
    assert len(set(groups)) == len(groups), f"repeated groups {groups!r}"
    assert len(set(series)) == len(series), f"repeated series {series!r}"
    for label in groups + series:
        assert is_text(label) and label.strip(), f"chart label {label!r}"
    assert isinstance(values, dict) and values, f"values {values!r}"
    for key, value in values.items():
        assert isinstance(key, tuple) and len(key) == 2, f"values key {key!r}"
        assert key[0] in groups and key[1] in series, f"value {key!r} not in groups {groups!r} or series {series!r}"
        assert is_real(value), f"value {key!r}: {value!r} is not a finite number"
        assert isinstance(format(value, spec), str)
    assert hline is None or is_real(hline), f"hline {hline!r}"
    # As many groups as x ticks, each with a bar; each series (legend entry) with a bar.
    present = [[name for name in series if (group, name) in values] for group in groups]
    assert len(present) == len(groups) and all(present), f"a group without bars: {groups!r}, {list(values)!r}"
    assert {s for _, s in values} == set(series), f"a series without bars: {series!r}, {list(values)!r}"
    if DRAW:
        draw_bar_chart(path, title, subtitle, groups, series, values, ylabel, spec, hline)


DRAW = os.environ.get("REPORT_FUZZER_DRAW") == "1"  # also draw, to see that what passes the checks draws
draw_bar_chart = report.bar_chart
report.bar_chart = check_bar_chart


def nonblank_lines(path):
    """The numbers of the lines of `path` that are not blank, read as read_records does."""
    with open(path, encoding="utf-8", errors="replace") as f:
        return [number for number, line in enumerate(f, 1) if line.strip()]


def TestOneInput(data):
    with open(RESULTS, "wb") as f:
        f.write(data)
    charts.clear()
    records, skipped = report.read_records(RESULTS)
    used = [r["_line"] for r in records]
    assert all(isinstance(why, str) and why for _, why in skipped), f"a skipped line without a reason: {skipped!r}"
    assert sorted(used + [n for n, _ in skipped]) == nonblank_lines(RESULTS), \
        f"lines used {used} and skipped {[n for n, _ in skipped]} are not the file's nonblank lines"
    report.render(RESULTS, records, skipped, OUT)
    with open(os.path.join(OUT, "report.md"), encoding="utf-8") as f:  # strict: valid UTF-8
        text = f.read()
    assert f"{len(records)} records used, {len(skipped)} lines skipped" in text, text[:500]
    for number, _ in skipped:
        assert f"\n| {number} | " in text, f"skipped line {number} is not in the report"


# Structure-aware mutations (libFuzzer's custom mutator), half of all: byte
# mutations seldom turn a record's number into 0, 1e-320, a list or a huge int
# and keep the line JSON. These set a field of one record (or of a dict in it)
# to an edge value, drop one, or repeat a line.
FIELDS = ["schema_version", "binary", "model", "depth", "batch_size", "precision", "devices", "variant",
          "avg_epoch_seconds", "throughput", "throughput_unit", "batch_seconds", "channels_last", "overlap", "mixed",
          "engine", "threads", "device", "device_name", "hostname", "libtorch_version", "dataset", "timestamp",
          "max_steps", "train_samples", "test_accuracy", "accuracy", "dev_accuracy", "total_seconds", "max_len",
          "work", "cpp_seconds", "python_seconds", "rounds", "python_torch_version", "sequence_length"]
BINARIES = ["resnet_single", "resnet_dp", "resnet_ddp", "roberta_train", "resnet_cpu_infer", "resnet_gpu_script",
            "roberta_infer", "cpp_vs_python"]
EDGES = [0, 1, -1, 0.0, -0.0, 1e-320, 5e-324, 1e308, -1e308, 2 ** 63, 10 ** 400, float("nan"), float("inf"),
         float("-inf"), None, True, False, "", "0.5", "32", "cuda:0", "cpu", "\ud800", "\u0000|\n", "x" * 300, [], {},
         [0.9], [[]], {"median": 0}, {"median": 1e-320, "p10": "a", "p90": None}, {"a": {"b": [1]}}]


def random_value(rng, old):
    choice = rng.randrange(6)
    if choice == 0 and isinstance(old, (int, float)) and not isinstance(old, bool):
        try:
            return rng.choice([-old, old * 10 ** rng.randint(-400, 400), int(old), old / 3, float(old) * 1e300])
        except (OverflowError, ValueError):
            return rng.choice(EDGES)
    if choice == 1:
        return rng.choice(BINARIES)
    if choice == 2:
        return rng.choice([10 ** rng.randint(0, 330), 10.0 ** rng.randint(-330, 308), rng.randint(-3, 3)])
    return rng.choice(EDGES)


def mutate_structure(data, max_size, seed):
    rng = random.Random(seed)
    lines = data.decode("utf-8", "surrogateescape").split("\n")
    parsed = []
    for i, line in enumerate(lines):
        try:
            parsed.append((i, json.loads(line)))
        except (ValueError, RecursionError):
            pass
    if not parsed:
        return None
    i, record = rng.choice(parsed)
    if rng.randrange(8) == 0:  # repeat the line (two records of one configuration), maybe changed below
        lines.insert(rng.randrange(len(lines) + 1), lines[i])
    targets = [record] if isinstance(record, (dict, list)) else []
    targets += [v for v in (record.values() if isinstance(record, dict) else []) if isinstance(v, (dict, list))]
    if not targets:
        record = {}
        targets = [record]
    target = rng.choice(targets)
    if isinstance(target, dict):
        key = rng.choice(list(target) + FIELDS) if target else rng.choice(FIELDS)
        if key in target and rng.randrange(4) == 0:
            del target[key]
        else:
            target[key] = random_value(rng, target.get(key))
    elif target:
        target[rng.randrange(len(target))] = random_value(rng, None)
    else:
        target.append(random_value(rng, None))
    lines[i] = json.dumps(record, ensure_ascii=rng.randrange(2) == 0)
    text = "\n".join(lines)
    try:
        out = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        out = text.encode("utf-8", "surrogatepass")
    return out[:max_size]


def custom_mutator(data, max_size, seed):
    if seed % 2:
        mutated = mutate_structure(data, max_size, seed)
        if mutated is not None:
            return mutated
    return atheris.Mutate(data, max_size)


def custom_crossover(data1, data2, max_size, seed):
    """Lines of one input, then lines of the other."""
    rng = random.Random(seed)
    one, two = data1.split(b"\n"), data2.split(b"\n")
    return b"\n".join(one[:rng.randint(0, len(one))] + two[rng.randint(0, len(two)):])[:max_size]


def replay(paths):
    """Runs each file under `paths` (directories, files) once; returns how many ran."""
    files = []
    for path in paths:
        if os.path.isdir(path):
            files += sorted(os.path.join(d, n) for d, _, names in os.walk(path) for n in names)
        elif os.path.isfile(path):
            files.append(path)
        else:
            sys.exit(f"report_fuzzer: no such file or directory: {path}")
    for path in files:
        with open(path, "rb") as f:
            data = f.read()
        try:
            TestOneInput(data)
        except BaseException:
            print(f"report_fuzzer: {path} failed:", file=sys.stderr)
            raise
    return len(files)


def main(argv):
    flags = [a for a in argv[1:] if a.startswith("-")]
    paths = [a for a in argv[1:] if not a.startswith("-")]
    if atheris is not None and "-runs=0" not in flags:
        atheris.Setup(argv, TestOneInput, custom_mutator=custom_mutator, custom_crossover=custom_crossover)
        atheris.Fuzz()
        return 0
    if not paths:
        print(__doc__, file=sys.stderr)
        return 2
    count = replay(paths)
    print(f"report_fuzzer: ran {count} inputs" + ("" if atheris else " (replay: atheris is not installed)"))
    return 0 if count else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
