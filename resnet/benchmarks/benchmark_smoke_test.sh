#!/usr/bin/env bash
# Runs a Google Benchmark binary on a filter for a minimal time and checks that
# it succeeded and reported a positive items_per_second in its JSON output.
set -euo pipefail
binary="$1"
filter="$2"
# A file of its own: under ctest -j several of these run at once.
out="$(mktemp "${TEST_TMPDIR:-/tmp}/benchmark.XXXXXX.json")"
trap 'rm -f "$out"' EXIT
"$binary" --benchmark_filter="$filter" --benchmark_min_time=0.01 --benchmark_format=json >"$out"
python3 - "$out" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
runs = report["benchmarks"]
assert runs, "no benchmark ran"
for run in runs:
    assert run["items_per_second"] > 0, run
assert report["context"]["libtorch_version"], report["context"]
print(f"{len(runs)} benchmark(s) ran: " + ", ".join(f"{r['name']} {r['items_per_second']:.0f} items/s" for r in runs))
PY
