#!/usr/bin/env bash
# Installs what the project needs on a Debian 12 machine: the Debian packages
# (Bazel 4, gtest, benchmark, Abseil, JSON, gloo headers, Fashion-MNIST, ...)
# and a virtualenv at .venv holding the LibTorch (a torch wheel) we build on.
# Idempotent: a second run only checks.
#
#   tools/setup.sh                         # torch 2.13.0, CPU build (default), in .venv
#   tools/setup.sh --cuda                  # torch 2.14.1, CUDA build (several GB), in .venv
#   tools/setup.sh --cuda --venv=DIR       # the same in another virtualenv
#   tools/setup.sh --peer                  # also .venv-peer: that torch + transformers, for tools/peer/
#   tools/setup.sh --fuzz                  # also clang + libFuzzer, and .venv-fuzz (atheris), for fuzz/
#   tools/setup.sh --gpu-host              # also .venv-gpuhost: the lent GPU hosts' torch 2.11.0 (CUDA),
#                                          # torchvision and transformers, to rehearse tools/gpu_check.sh here
set -euo pipefail

cd "$(dirname "$0")/.."
TORCH_SPEC="torch==2.13.0"
VENV=.venv
PEER=0
PEER_VENV=.venv-peer
FUZZ=0
FUZZ_VENV=.venv-fuzz
ATHERIS_SPEC="atheris==2.3.0"
GPU_HOST=0
GPU_HOST_VENV=.venv-gpuhost
# What python3 has on the lent GPU hosts (the device tool's KINDS.md, 2026-11).
GPU_HOST_SPECS=(torch==2.11.0 torchvision==0.26.0 transformers==5.17.0 safetensors numpy)
TRANSFORMERS_SPEC="transformers==5.24.0"
for arg in "$@"; do
  case "$arg" in
    --cuda) TORCH_SPEC="torch==2.14.1" ;;
    --cpu) TORCH_SPEC="torch==2.13.0" ;;
    --venv=?*) VENV="${arg#--venv=}" ;;
    --peer) PEER=1 ;;
    --fuzz) FUZZ=1 ;;
    --gpu-host) GPU_HOST=1 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option '$arg' (use --cpu, --cuda, --venv=DIR, --peer, --fuzz, --gpu-host)" >&2; exit 2 ;;
  esac
done

DEBIAN_PACKAGES=(
  bazel-bootstrap g++ pkg-config zlib1g-dev
  libgtest-dev libgmock-dev libbenchmark-dev libbenchmark-tools
  libabsl-dev nlohmann-json3-dev libsentencepiece-dev libgloo-dev
  dataset-fashion-mnist python3-matplotlib python3-venv
)
if ((FUZZ)); then DEBIAN_PACKAGES+=(clang libclang-rt-14-dev); fi

missing=()
for p in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# pip install into the virtualenv $1, quietly. A pip configured with find-links
# folders that do not exist (CI's is) warns once per package; those lines are
# dropped so that a failure's own lines stay in sight.
pip_install() {
  local venv="$1"; shift
  "$venv/bin/pip" install -q --no-cache-dir "$@" 2> >(grep -v "^WARNING: Location '.*' is ignored" >&2)
}

PYTHON="${PYTHON:-python3}"
if [[ ! -x "$VENV/bin/python" ]]; then
  echo "setup: creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
want="${TORCH_SPEC#torch==}"
have="$("$VENV/bin/python" -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null || true)"
if [[ "$have" != "$want" ]]; then
  echo "setup: installing $TORCH_SPEC into $VENV"
  pip_install "$VENV" "$TORCH_SPEC" numpy
fi
# PyPI's Linux torch wheels are CUDA builds; the CPU build (+cpu) comes only
# from a find-links folder or index that has it. Either builds and runs here.
echo "setup: ok ($VENV: $("$VENV/bin/python" -c 'import torch
print("torch", torch.__version__, "(CPU build)" if torch.version.cuda is None else f"(CUDA {torch.version.cuda} build)")'))"

if ((PEER)); then
  # The Python peers (tools/peer/) in their own virtualenv, on the same torch as $VENV.
  torch_version="$("$VENV/bin/python" -c 'import torch; print(torch.__version__.split("+")[0])')"
  if [[ ! -x "$PEER_VENV/bin/python" ]]; then
    echo "setup: creating $PEER_VENV"
    "$PYTHON" -m venv "$PEER_VENV"
  fi
  have="$("$PEER_VENV/bin/python" -c 'import safetensors, torch, transformers
print(torch.__version__.split("+")[0], transformers.__version__)' 2>/dev/null || true)"
  if [[ "$have" != "$torch_version ${TRANSFORMERS_SPEC#transformers==}" ]]; then
    echo "setup: installing torch==$torch_version $TRANSFORMERS_SPEC safetensors into $PEER_VENV"
    pip_install "$PEER_VENV" "torch==$torch_version" "$TRANSFORMERS_SPEC" safetensors numpy
  fi
  echo "setup: ok ($PEER_VENV: $("$PEER_VENV/bin/python" -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'))"
fi

if ((FUZZ)); then
  # atheris (libFuzzer for Python) for fuzz/report_fuzzer.py, on Debian's
  # python3 so that tools/report.py finds python3-matplotlib.
  if [[ ! -x "$FUZZ_VENV/bin/python" ]]; then
    echo "setup: creating $FUZZ_VENV"
    /usr/bin/python3 -m venv --system-site-packages "$FUZZ_VENV"
  fi
  if ! "$FUZZ_VENV/bin/python" -c 'import atheris' 2>/dev/null; then
    echo "setup: installing $ATHERIS_SPEC into $FUZZ_VENV"
    pip_install "$FUZZ_VENV" "$ATHERIS_SPEC"
  fi
  echo "setup: ok (clang $(clang --version | sed -n '1s/.*version \([0-9.]*\).*/\1/p'), $FUZZ_VENV: atheris)"
fi

if ((GPU_HOST)); then
  # tools/gpu_check.sh with DEVICE=cpu and PYTHON=$GPU_HOST_VENV/bin/python
  # builds and runs what a GPU session would, against the same versions.
  if [[ ! -x "$GPU_HOST_VENV/bin/python" ]]; then
    echo "setup: creating $GPU_HOST_VENV"
    "$PYTHON" -m venv "$GPU_HOST_VENV"
  fi
  have="$("$GPU_HOST_VENV/bin/python" -c 'import torch, torchvision, transformers
print("torch==" + torch.__version__.split("+")[0], "torchvision==" + torchvision.__version__.split("+")[0],
      "transformers==" + transformers.__version__)' 2>/dev/null || true)"
  if [[ "$have" != "${GPU_HOST_SPECS[*]:0:3}" ]]; then
    echo "setup: installing ${GPU_HOST_SPECS[*]} into $GPU_HOST_VENV (a CUDA build: several GB)"
    pip_install "$GPU_HOST_VENV" "${GPU_HOST_SPECS[@]}"
  fi
  echo "setup: ok ($GPU_HOST_VENV: $("$GPU_HOST_VENV/bin/python" -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)' 2>/dev/null))"
fi
