#!/usr/bin/env bash
# Runs a fuzz target on its committed inputs: run_fuzzer.sh FUZZER DIR... [-FLAG...]
# (FLAGs, such as -dict=FILE, go to libFuzzer).
# Without FUZZ_SECONDS each input runs once (a regression test; what the GCC
# build does). With FUZZ_SECONDS (bazel test --config=fuzz) the libFuzzer build
# fuzzes for that long, starting from a copy of the inputs; a crashing input is
# written to the test's undeclared outputs (bazel-testlogs/.../test.outputs/).
set -euo pipefail
fuzzer="$1"
shift
# LibTorch's own leaks (see the file); relative to the runfiles tree.
[[ -f fuzz/lsan_suppressions.txt ]] && export LSAN_OPTIONS="suppressions=$PWD/fuzz/lsan_suppressions.txt"
if [[ -z "${FUZZ_SECONDS:-}" ]]; then
  exec "$fuzzer" -runs=0 "$@"
fi
flags=()
dirs=()
for arg in "$@"; do
  if [[ "$arg" == -* ]]; then flags+=("$arg"); else dirs+=("$arg"); fi
done
work="${TEST_TMPDIR:-$(mktemp -d)}/corpus"
rm -rf "$work"
mkdir -p "$work"
for dir in "${dirs[@]}"; do cp -rL "$dir"/. "$work"/; done
artifacts="${TEST_UNDECLARED_OUTPUTS_DIR:-$PWD}/"
"$fuzzer" -max_total_time="$FUZZ_SECONDS" -timeout=30 -rss_limit_mb=4096 -print_final_stats=1 \
  -artifact_prefix="$artifacts" "${flags[@]}" "$work"
