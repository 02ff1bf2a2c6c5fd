#!/usr/bin/env bash
# Runs a Google Benchmark binary on a filter for a minimal time and checks that
# at least one benchmark ran, none reported an error (a skipped variant says
# why), each reported a positive items_per_second, and each reported every
# counter named in the optional third argument (comma-separated, e.g.
# median_ms, which tools/train_step_report.py and tools/infer_report.py read):
# a finite number, and positive for a time (NAME_ms).
#
#   benchmark_smoke_test.sh BINARY FILTER [COUNTER,...]
set -euo pipefail
binary="$1"
filter="$2"
counters="${3:-}"
# A file of its own: under ctest -j several of these run at once.
out="$(mktemp "${TEST_TMPDIR:-/tmp}/benchmark.XXXXXX.json")"
trap 'rm -f "$out"' EXIT
"$binary" --benchmark_filter="$filter" --benchmark_min_time=0.01 --benchmark_format=json >"$out"
python3 - "$out" "$filter" "$counters" <<'PY'
import json, math, sys
path, filter_, counters = sys.argv[1], sys.argv[2], [c for c in sys.argv[3].split(",") if c]
text = open(path).read()
# Google Benchmark writes no JSON when the filter matches nothing.
report = json.loads(text) if text.strip() else {}
runs = report.get("benchmarks", [])
problems = []
if not runs:
    problems.append(f"no benchmark matched --benchmark_filter={filter_}")
for run in runs:
    name = run.get("name", "?")
    if run.get("error_occurred"):
        problems.append(f"{name}: {run.get('error_message', 'error without a message')}")
        continue
    for counter in ["items_per_second"] + counters:
        value = run.get(counter)
        # Rates and times must be positive; another counter (an overhead in %) a number.
        positive = counter == "items_per_second" or counter.endswith("_ms")
        if not isinstance(value, (int, float)) or not math.isfinite(value) or (positive and not value > 0):
            problems.append(f"{name}: {counter} is {value!r}, not a {'positive ' if positive else ''}number")
if report and not report.get("context", {}).get("libtorch_version"):
    problems.append("the context has no libtorch_version")
if problems:
    sys.exit("benchmark smoke test failed:\n  " + "\n  ".join(problems))
print(f"{len(runs)} benchmark(s) ran: " + ", ".join(f"{r['name']} {r['items_per_second']:.0f} items/s" for r in runs))
PY
