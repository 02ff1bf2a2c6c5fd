#!/usr/bin/env bash
# Packs the Debian libraries the CMake build needs (Abseil, GoogleTest, Google
# Benchmark, nlohmann-json, gloo headers) and Fashion-MNIST into .gpu_deps/,
# for GPU hosts that have PyTorch, CMake and nvcc but none of these and no
# network.
# tools/gpu_check.sh uses .gpu_deps/ when it exists. Run here, on Debian 12:
#
#   tools/bundle_gpu_deps.sh      # then carry .gpu_deps to the GPU host
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=.gpu_deps
PACKAGES=(libabsl-dev libabsl20220623 libgtest-dev libgmock-dev libbenchmark-dev libbenchmark1debian
          nlohmann-json3-dev libgloo-dev zlib1g-dev libsentencepiece-dev libsentencepiece0 dataset-fashion-mnist)
rm -rf "$OUT" && mkdir -p "$OUT/debs"
(cd "$OUT/debs" && apt-get download "${PACKAGES[@]}" >/dev/null)
for deb in "$OUT"/debs/*.deb; do dpkg -x "$deb" "$OUT"; done
rm -rf "$OUT/debs" "$OUT/usr/share/doc"
grep -qx '/.gpu_deps/' .git/info/exclude 2>/dev/null || echo '/.gpu_deps/' >> .git/info/exclude
echo "bundle_gpu_deps: $(du -sh "$OUT" | cut -f1) in $OUT"
