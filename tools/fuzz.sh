#!/usr/bin/env bash
# Fuzzes every reader of outside data for SECONDS each (default 30): the C++
# targets in fuzz/ under clang's libFuzzer with AddressSanitizer and UBSan
# (their own Bazel output base, as the compiler differs), and the results
# reader of tools/report.py under atheris. Needs `tools/setup.sh --fuzz`.
# A crashing input lands in bazel's test outputs (or ./crash-* for atheris);
# fix the bug and keep the input under fuzz/regressions/<target>/.
#
#   tools/fuzz.sh        # 30 s per target
#   tools/fuzz.sh 600    # longer
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-30}"
if ! command -v clang >/dev/null || [[ ! -x .venv-fuzz/bin/python ]]; then
  echo "fuzz.sh: clang or .venv-fuzz is missing: run tools/setup.sh --fuzz" >&2
  exit 2
fi
status=0
# gold warns once per ASan symbol on every link ("Cannot export local symbol"): dropped.
# Fuzzing is random: a second run fuzzes again rather than reusing a cached pass.
# Each test fuzzes for $seconds plus its start (LibTorch, the corpus): its timeout
# (600 s in .bazelrc) must grow with it.
bazel --output_base="$HOME/.cache/dlspeed-bazel-fuzz" test --config=fuzz --symlink_prefix=/ --nocache_test_results \
  --test_env=FUZZ_SECONDS="$seconds" --test_timeout=$((seconds + 300)) //fuzz/... 2>&1 |
  grep -v "Cannot export local symbol" || status=$?

work="$(mktemp -d)"
atheris_log="$(mktemp)"
trap 'rm -rf "$work" "$atheris_log"' EXIT
cp -rL fuzz/corpus/report_fuzzer/. "$work"/
dirs=("$work" fuzz/corpus/report_fuzzer)
[[ -d fuzz/regressions/report_fuzzer ]] && dirs+=(fuzz/regressions/report_fuzzer)
# Its progress lines run to thousands: kept in a file, the end shown on failure.
if .venv-fuzz/bin/python fuzz/report_fuzzer.py -max_total_time="$seconds" -max_len=4096 \
  -dict=fuzz/report_fuzzer.dict "${dirs[@]}" >"$atheris_log" 2>&1; then
  echo "//fuzz:report_fuzzer_atheris                                           PASSED in ${seconds}s"
else
  status=1
  tail -n 60 "$atheris_log"
  echo "//fuzz:report_fuzzer_atheris                                           FAILED"
fi
exit "$status"
