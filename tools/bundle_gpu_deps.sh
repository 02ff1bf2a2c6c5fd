#!/usr/bin/env bash
# Packs the Debian libraries the CMake build needs (Abseil, GoogleTest, Google
# Benchmark, nlohmann-json, gloo headers) and Fashion-MNIST into .gpu_deps/,
# for GPU hosts that have PyTorch, CMake and nvcc but none of these and no
# network.
# tools/gpu_check.sh uses .gpu_deps/ when it exists. Run here, on Debian 12:
#
#   tools/bundle_gpu_deps.sh           # then carry .gpu_deps to the GPU host
#   tools/bundle_gpu_deps.sh --check   # whether .gpu_deps holds all the build takes from it
#                                      # (a bundle made before a package joined the list does not)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=.gpu_deps
PACKAGES=(libabsl-dev libabsl20220623 libgtest-dev libgmock-dev libbenchmark-dev libbenchmark1debian
          nlohmann-json3-dev libgloo-dev zlib1g zlib1g-dev libsentencepiece-dev libsentencepiece0 dataset-fashion-mnist)
LIB=usr/lib/x86_64-linux-gnu
NEEDED=(usr/include/absl/base/config.h usr/include/gtest/gtest.h usr/include/gmock/gmock.h
        usr/include/benchmark/benchmark.h usr/include/nlohmann/json.hpp usr/include/gloo/config.h
        usr/include/sentencepiece_processor.h usr/include/zlib.h $LIB/libsentencepiece.so
        $LIB/libsentencepiece_train.so $LIB/libz.so $LIB/cmake/absl $LIB/cmake/GTest $LIB/cmake/benchmark
        usr/share/cmake/nlohmann_json usr/share/datasets/fashion-mnist)

check_bundle() {
  local missing=() f
  for f in "${NEEDED[@]}"; do [[ -e "$OUT/$f" ]] || missing+=("$f"); done
  # A link to an absolute path resolves here but not on the GPU host.
  while IFS= read -r f; do missing+=("${f#"$OUT/"} (links to $(readlink "$f"))"); done \
    < <(find "$OUT" -type l -lname '/*')
  if ((${#missing[@]})); then
    echo "bundle_gpu_deps: $OUT lacks ${missing[*]} (run tools/bundle_gpu_deps.sh again)" >&2
    return 1
  fi
  echo "bundle_gpu_deps: $OUT holds all ${#NEEDED[@]} things the CMake build takes from it"
}
if [[ "${1:-}" == --check ]]; then
  check_bundle
  exit
fi
rm -rf "$OUT" && mkdir -p "$OUT/debs"
(cd "$OUT/debs" && apt-get download "${PACKAGES[@]}" >/dev/null)
for deb in "$OUT"/debs/*.deb; do dpkg -x "$deb" "$OUT"; done
# zlib1g-dev's libz.so links to /lib/...: point such links into the bundle.
while IFS= read -r link; do
  ln -sfr "$OUT$(readlink "$link")" "$link"
done < <(find "$OUT" -type l -lname '/*')
rm -rf "$OUT/debs" "$OUT/usr/share/doc"
check_bundle
echo "bundle_gpu_deps: $(du -sh "$OUT" | cut -f1) in $OUT"
