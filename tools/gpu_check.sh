#!/usr/bin/env bash
# On a GPU host with PyTorch, CMake and nvcc (no Bazel): builds the project
# with CMake against python3's torch, runs the unit tests (GPU ones included)
# and each binary's short GPU check, and writes everything to one log.
#
#   tools/gpu_check.sh [LOG]          # default LOG: gpu_check.log
#   DEVICE=cpu SYNTHETIC_SIZE=1024 PEER_STEPS=2 tools/gpu_check.sh   # a short dry run on a CPU host
#
# STAGES picks what runs, in this order (default: all of them):
#   build      CMake configure and build
#   gpu-tests  the unit tests with GPU paths (autocast and GradScaler, CUDA graphs, TorchScript, benchmarks)
#   infer      resnet_gpu_script, the inference benchmark and the Python peer, side by side
#   resnet     training: resnet_single fp16 / bf16 channels_last, DDP (NCCL) and DP at 1 GPU, Python peer
#   roberta    XLM-R base training fp16 and fp32 and the forward benchmark, each beside its Python peer
#   rounds     alternating rounds, fp32 and fp16: tools/ddp_report.py (resnet_ddp at one process against
#              resnet_single, and step by step in one process, beside PyTorch's DDP) and
#              tools/train_step_report.py (the training step against Python's), in that order;
#              about 5-6 minutes on a GPU (estimated)
#   unit       every other unit test (ctest)
# DEADLINE_S stops starting checks that many seconds after the script starts
# (and cuts a running one short), so a device call with a time limit still
# gets the tally line. A lease of ~15 minutes fits two calls made back to
# back (the build stays in build-gpu/ while the machine is warm: it is given
# back 30 s after a call). What is still open goes first (issue 3's DDP
# overhead in rounds, issue 4's cuda-graph-frozen in infer); roberta, whose
# targets were met on the H200, is left out:
#   DEADLINE_S=540 STAGES="build infer rounds" tools/gpu_check.sh $OUT/gpu_check-1.log
#   DEADLINE_S=<device time left - 40> STAGES="build gpu-tests resnet" tools/gpu_check.sh $OUT/gpu_check-2.log
# Beside each log come the records (gpu_check-1-results.jsonl: /usr/bin/python3
# tools/report.py FILE --out DIR plots them), each benchmark's JSON (for
# compare.py) and Chrome traces of a few training steps on both sides
# (gpu_check-1-traces.tar.gz).
# tools/gpu_check_summary.py LOG... sets each C++ figure beside the Python
# peer's and the issues' GPU targets, in Markdown.
#
# Libraries the host lacks (Abseil, GoogleTest, Benchmark, nlohmann-json) are
# taken from .gpu_deps/ when present (tools/bundle_gpu_deps.sh makes it). It is
# ignored by git, so the device tool's run must name it: carry [".gpu_deps"];
# without it the configure fails at find_package(absl).
# Exit status: the number of failed checks (0: all passed).
set -uo pipefail
cd "$(dirname "$0")/.."
LOG="$(realpath -m "${1:-gpu_check.log}")"
# The binaries' records and the benchmarks' JSON go beside the log (LOG without
# .log, then -results.jsonl or -<benchmark>.json), so that a device run that
# writes its log under $OUT brings them back too, for tools/report.py and compare.py.
OUT_PREFIX="${LOG%.log}"
RESULTS="${OUT_PREFIX}-results.jsonl"
# Chrome traces of a few steps (--trace) gather here and leave as one
# LOG-traces.tar.gz at the end (a device call brings back at most 8 files).
TRACES="${OUT_PREFIX}-traces"
rm -rf "$TRACES" "$TRACES.tar.gz"
: >"$RESULTS"
BUILD="${BUILD_DIR:-build-gpu}"
PYTHON="${PYTHON:-python3}"
# The Python peers, with glibc's malloc set as the C++ binaries set it
# (common/host_malloc.h; tools/records.py PEER_MALLOC_ENV).
PEER=(env MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2147483647 "$PYTHON")
DEVICE="${DEVICE:-cuda}"
SYNTHETIC_SIZE="${SYNTHETIC_SIZE:-20480}"
# Traced runs trace TRACE_STEPS steps after TRACE_AFTER (a CPU dry run has 2 steps an epoch).
TRACE_AFTER=20 TRACE_STEPS=5
[[ "$DEVICE" == cpu ]] && TRACE_AFTER=1 TRACE_STEPS=1
TRACE_PEER=(--precision fp16 --batch 512)
[[ "$DEVICE" == cpu ]] && TRACE_PEER=(--precision bf16 --batch 64 --warmup 1)
PEER_STEPS="${PEER_STEPS:-30}"
# Untimed steps before a training peer's timed ones (cuDNN's algorithm search, the allocator's pool).
PEER_WARMUP=20
[[ "$DEVICE" == cpu ]] && PEER_WARMUP=1
STAGES="${STAGES:-build gpu-tests infer resnet roberta rounds unit}"
DEADLINE_S="${DEADLINE_S:-0}"
: >"$LOG"
failures=0
passed=0
skipped=0

log() { echo "$*" | tee -a "$LOG"; }

# stage NAME: whether STAGES asks for it.
stage() { [[ " $STAGES " == *" $1 "* ]]; }

# check NAME TIMEOUT_SECONDS COMMAND...: runs one check, logs its output and
# verdict. With fewer than CHECK_MIN_S (default 20) seconds left before
# DEADLINE_S it is skipped; nearer than its limit, its limit shrinks. A check
# that ignores SIGTERM (the training binaries stop at a step boundary) is
# killed 10 s later.
check() {
  local name="$1" limit="$2"
  shift 2
  if ((DEADLINE_S > 0)); then
    local left=$((DEADLINE_S - SECONDS))
    if ((left < ${CHECK_MIN_S:-20})); then
      skipped=$((skipped + 1)); log "--- SKIP $name ($left s left before DEADLINE_S=$DEADLINE_S, it needs ${CHECK_MIN_S:-20})"
      return
    fi
    ((limit > left)) && limit=$left
  fi
  log "=== $name: $*"
  local start=$SECONDS
  timeout -k 10 "$limit" "$@" >>"$LOG" 2>&1
  local rc=$?
  if ((rc == 0)); then
    passed=$((passed + 1)); log "--- PASS $name ($((SECONDS - start)) s)"
  else
    failures=$((failures + 1)); log "--- FAIL $name (exit $rc, $((SECONDS - start)) s)"
  fi
}

log "gpu_check: $(date -u +%FT%TZ) on $(hostname), git $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >>"$LOG" 2>&1 || log "nvidia-smi: not available"
TORCH_PREFIX="$("$PYTHON" -c 'import torch; print(torch.utils.cmake_prefix_path)')"
log "torch: $("$PYTHON" -c 'import torch; print(torch.__version__, "cuda", torch.version.cuda, "gpus", torch.cuda.device_count())')"
PREFIX="$TORCH_PREFIX"
EXTRA_INCLUDE=""
if [[ -d .gpu_deps/usr ]]; then
  check gpu-deps 30 bash tools/bundle_gpu_deps.sh --check
  PREFIX="$TORCH_PREFIX;$PWD/.gpu_deps/usr"
  EXTRA_INCLUDE="$PWD/.gpu_deps/usr/include"
  export LD_LIBRARY_PATH="$PWD/.gpu_deps/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  # The tests read Fashion-MNIST where Debian's package puts it.
  if [[ ! -d /usr/share/datasets/fashion-mnist && -d .gpu_deps/usr/share/datasets/fashion-mnist ]]; then
    mkdir -p /usr/share/datasets && cp -r .gpu_deps/usr/share/datasets/fashion-mnist /usr/share/datasets/
  fi
fi

B="$BUILD"
if stage build; then
  GENERATOR=Ninja
  command -v ninja >/dev/null || GENERATOR="Unix Makefiles"
  check configure 300 cmake -S . -B "$B" -G "$GENERATOR" -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$PREFIX" \
    -DDLSPEED_EXTRA_INCLUDE="$EXTRA_INCLUDE"
  # Without the unit stage, only what the other stages run (about half the
  # build: the end-to-end and reader tests are left out).
  TARGETS=()
  stage unit || TARGETS=(--target resnet_single resnet_dp resnet_ddp resnet_gpu_script train_step_benchmark
                         resnet_infer_benchmark reducer_benchmark roberta_train roberta_forward_benchmark amp_test
                         cuda_graph_test device_test gradient_reducer_test resnet_gpu_test)
  check build 900 cmake --build "$B" -j "$(nproc)" "${TARGETS[@]}"
fi

# The unit tests with GPU paths; the unit stage runs all the others.
GPU_TESTS='/(amp|cuda_graph|device|gradient_reducer|resnet_gpu|resnet_infer_benchmark_smoke|roberta_forward_benchmark_smoke|train_step_benchmark_smoke)_test$'
if stage gpu-tests; then
  check gpu-unit-tests 300 ctest --test-dir "$B" --output-on-failure -j 4 -R "$GPU_TESTS"
  # On the H200 host of 2026-11-27 six tests crashed where they called
  # std::filesystem::remove_all (results/gpu-h200-2026-11-27). Which library such calls bind to
  # there: libstdc++'s is expected, not the copy torch's wheels export
  # (CMakeLists.txt's link order).
  log "device_test's libstdc++: $(ldd "$B/common/device_test" | grep -o 'libstdc++[^ ]* => [^ ]*')"
  LD_BIND_NOW=1 LD_DEBUG=bindings "$B/common/device_test" --gtest_list_tests 2>&1 \
    | grep -o "binding file [^ ]*device_test .* to [^ ]* .*_ZNSt10filesystem[^']*" | sed 's/binding file [^ ]* \[0\]//' \
    | sort | uniq -c | head -20 >>"$LOG"
fi

if stage infer; then
  # Inference on the GPU: eager, frozen TorchScript, CUDA-graph replay (fp32,
  # fp16 channels_last), then the same variants in Python on the same GPU.
  if [[ ! -f "$B/models/Resnet-18-1gpu.pth" ]]; then
    check resnet_single-for-infer 300 "$B/resnet/resnet_single" --device="$DEVICE" --dataset=synthetic \
      --synthetic_size=$SYNTHETIC_SIZE --depths=18 --modes=fp32 --epochs=1 --batch_size=512 --results= --models_dir="$B/models"
  fi
  # 7 passes over the first 992 test images (31 full batches, as the peer
  # times batches of 32 only): 217 timed batches after 20 warm-up batches,
  # like the peer's 200 after 20. On the H200 of 2026-11-27, one pass after 5
  # warm-up batches timed eager fp32 at 1.110 ms a batch where
  # resnet_infer_benchmark's longer run timed the same code at 0.913 ms.
  PASSES=7
  [[ "$DEVICE" == cpu ]] && PASSES=1
  check resnet_gpu_script-18 300 "$B/resnet/resnet_gpu_script" -m 0 -r 18 --device="$DEVICE" \
    --model="$B/models/Resnet-18-1gpu.pth" --dataset=synthetic --test_limit=992 --passes=$PASSES --results="$RESULTS"
  PEER_INFER=(--variants eager,torchscript-frozen,cuda-graph,cuda-graph-frozen)
  [[ "$DEVICE" == cpu ]] && PEER_INFER=(--variants eager,torchscript-frozen)
  for p in fp32 fp16; do
    [[ "$DEVICE" == cpu && $p == fp16 ]] && continue
    check peer-python-infer-$p 300 "${PEER[@]}" tools/peer/resnet_infer.py --device "$DEVICE" --depth 18 --batch 32 \
      --precision $p --iters 200 --warmup 20 "${PEER_INFER[@]}"
  done
  INFER_FILTER="cuda-.*/depth:18/batch:32"
  [[ "$DEVICE" == cpu ]] && INFER_FILTER="^eager/depth:18/batch:32"
  check resnet_infer_benchmark 300 "$B/resnet/benchmarks/resnet_infer_benchmark" --benchmark_filter="$INFER_FILTER" \
    --benchmark_min_time="${BENCHMARK_MIN_TIME:-1}" --benchmark_out="${OUT_PREFIX}-resnet_infer_benchmark.json"
fi

if stage resnet; then
  # The peers synchronise the GPU around each step: so do the C++ runs set
  # beside them (--sync_each_step), so that step times compare like for like.
  check resnet_single-fp16 300 "$B/resnet/resnet_single" --device="$DEVICE" --dataset=synthetic --synthetic_size=$SYNTHETIC_SIZE \
    --depths=18 --epochs=2 --batch_size=512 --sync_each_step --results="$RESULTS" --models_dir="$B/models"
  check resnet_single-bf16-channels-last 300 "$B/resnet/resnet_single" --device="$DEVICE" --dataset=synthetic \
    --synthetic_size=$SYNTHETIC_SIZE --depths=50 --modes=mixed --precision=bf16 --channels_last --epochs=2 --batch_size=512 \
    --sync_each_step --results="$RESULTS" --models_dir=
  # DDP at world size 1 (NCCL on a GPU) against resnet_single with the same
  # flags: the records' step_seconds give the reducer's overhead. resnet_dp on 1 GPU.
  # 200 timed steps on a GPU (40 gave resnet_dp's p10-p90 a spread of about
  # +-15 % on the H200 of 2026-11-27); a CPU dry run keeps SYNTHETIC_SIZE.
  OVERHEAD_SIZE=$((SYNTHETIC_SIZE * 5))
  [[ "$DEVICE" == cpu ]] && OVERHEAD_SIZE=$SYNTHETIC_SIZE
  MULTI_FLAGS=(--device="$DEVICE" --dataset=synthetic --synthetic_size=$OVERHEAD_SIZE --epochs=2 --batch_size=512
               --augment=false --sync_each_step --results="$RESULTS" --models_dir="$B/models")
  for mixed in 0 1; do
    modes=fp32; ((mixed)) && modes=mixed
    check resnet_single-overhead-base-$modes 300 "$B/resnet/resnet_single" --depths=18 --modes=$modes "${MULTI_FLAGS[@]}"
    check resnet_ddp-1-$modes 300 "$B/resnet/resnet_ddp" 18 1 $mixed "${MULTI_FLAGS[@]}"
    check resnet_dp-1-$modes 300 "$B/resnet/resnet_dp" 18 1 $mixed "${MULTI_FLAGS[@]}"
  done
  # The peer steps as resnet_single's loop does (--from_host: the batch copied
  # from pinned host memory in the step, correct predictions counted), to set
  # beside the runs without augmentation above; the rounds stage's
  # train_step_report compares the step alone, on a batch already on the device.
  PEER_PRECISIONS="fp32 fp16 bf16"
  [[ "$DEVICE" == cpu ]] && PEER_PRECISIONS="fp32 bf16"  # fp16 on a CPU takes minutes a step
  for p in $PEER_PRECISIONS; do
    check peer-python-train-$p 300 "${PEER[@]}" tools/peer/resnet_train_step.py --depth 18 --batch 512 --precision $p \
      --steps $PEER_STEPS --warmup $PEER_WARMUP --device "$DEVICE" --implementation fused --from_host
  done
  check train_step_benchmark 300 "$B/resnet/benchmarks/train_step_benchmark" --benchmark_min_time="${BENCHMARK_MIN_TIME:-1}" \
    --benchmark_out="${OUT_PREFIX}-train_step_benchmark.json" \
    --benchmark_filter="depth:18/batch:(8|512)/" --benchmark_format=console
  # What resnet_ddp's gradient reducer adds to a backward at one process:
  # host work alone (16-element parameters) and at ResNet-18's full sizes
  # (its DdpOverhead, the whole step, runs in the rounds stage's ddp_report).
  check reducer_benchmark 120 "$B/resnet/benchmarks/reducer_benchmark" --benchmark_min_time="${BENCHMARK_MIN_TIME:-1}" \
    --benchmark_filter=ReducerStep --benchmark_out="${OUT_PREFIX}-reducer_benchmark.json" --benchmark_format=console
  # Traces of the steps the timings above leave unexplained: fp16 against
  # fp32, DDP at one process, and the Python peer's fp16 step. Runs of their
  # own (no records): traced steps run slower.
  mkdir -p "$TRACES"
  TRACE_FLAGS=(--device="$DEVICE" --dataset=synthetic --synthetic_size=$SYNTHETIC_SIZE --epochs=1 --max_steps=30
               --batch_size=512 --augment=false --results= --models_dir= --trace_after_steps=$TRACE_AFTER --trace_steps=$TRACE_STEPS)
  check trace-resnet_single-fp32 120 "$B/resnet/resnet_single" --depths=18 --modes=fp32 "${TRACE_FLAGS[@]}" \
    --trace="$TRACES/resnet_single-18-fp32.json"
  check trace-resnet_single-fp16 120 "$B/resnet/resnet_single" --depths=18 --modes=mixed "${TRACE_FLAGS[@]}" \
    --trace="$TRACES/resnet_single-18-mixed.json"
  check trace-resnet_ddp-fp32 120 "$B/resnet/resnet_ddp" 18 1 0 "${TRACE_FLAGS[@]}" --trace="$TRACES/resnet_ddp-18-fp32.json"
  check trace-peer-python-train-fp16 120 "${PEER[@]}" tools/peer/resnet_train_step.py --depth 18 "${TRACE_PEER[@]}" \
    --steps 3 --device "$DEVICE" --trace "$TRACES/python-resnet18-${TRACE_PEER[1]}.json"
fi

if stage roberta; then
  # XLM-R base fine-tuning at batch 32, seq 128, and the same steps in Python
  # transformers on the same GPU (DESIGN.md's H100 figures: 526 samples/s
  # fp32, 1058 fp16 AMP): full-length sequences without padding on both sides,
  # steps synchronised on both. A CPU dry run takes roberta-small at batch 4
  # and few steps, and the forward at batch 1.
  TRAIN_MODEL=xlm-roberta-base TRAIN_BATCH=32 TRAIN_SIZE=4096 TRAIN_STEPS=40 PEER_TRAIN_STEPS=20
  FORWARD_MODEL=roberta-base FORWARD_BATCH=32 FORWARD_INDEX=1 FORWARD_VARIANTS=eager,torchscript,fp16 FORWARD_ITERS=20
  if [[ "$DEVICE" == cpu ]]; then
    TRAIN_MODEL=roberta-small TRAIN_BATCH=4 TRAIN_SIZE=64 TRAIN_STEPS=4 PEER_TRAIN_STEPS=$PEER_STEPS
    FORWARD_MODEL=roberta-small FORWARD_BATCH=1 FORWARD_INDEX=0 FORWARD_VARIANTS=eager,torchscript FORWARD_ITERS=3
  fi
  for p in fp16 fp32; do
    [[ "$DEVICE" == cpu && $p == fp16 ]] && continue
    mixed=(); [[ $p == fp16 ]] && mixed=(--mixed)
    check roberta_train-$TRAIN_MODEL-$p 400 "$B/roberta/roberta_train" --model_name $TRAIN_MODEL --batch-size $TRAIN_BATCH \
      --max_len 128 --pad_to_max_len --synthetic_min_len 128 --epochs 2 --max_steps $TRAIN_STEPS --synthetic_size $TRAIN_SIZE \
      --device="$DEVICE" --sync_each_step "${mixed[@]}" --results="$RESULTS" --save_dir= --nolog_file --checkpoint=
    check peer-python-roberta-train-$p 300 "${PEER[@]}" tools/peer/roberta_train_step.py --model $TRAIN_MODEL \
      --batch $TRAIN_BATCH --seq 128 --precision $p --steps $PEER_TRAIN_STEPS --device "$DEVICE" --implementation fused
  done
  check roberta_forward_benchmark 300 "$B/roberta/benchmarks/roberta_forward_benchmark" \
    --benchmark_filter="${DEVICE}-.*/model:$FORWARD_INDEX/batch:$FORWARD_BATCH" --benchmark_min_time="${BENCHMARK_MIN_TIME:-1}" \
    --benchmark_out="${OUT_PREFIX}-roberta_forward_benchmark.json"
  check peer-python-roberta-forward 300 "${PEER[@]}" tools/peer/roberta_forward.py --model $FORWARD_MODEL \
    --batch $FORWARD_BATCH --seq 128 --device "$DEVICE" --variant $FORWARD_VARIANTS --iters $FORWARD_ITERS
  # Traces of the fp16 training step on both sides (fp32 on a CPU), in runs of
  # their own; 2 steps each (an XLM-R step has thousands of events).
  mkdir -p "$TRACES"
  p=fp16 mixed=(--mixed)
  [[ "$DEVICE" == cpu ]] && p=fp32 mixed=()
  check trace-roberta_train-$TRAIN_MODEL-$p 300 "$B/roberta/roberta_train" --model_name $TRAIN_MODEL \
    --batch-size $TRAIN_BATCH --max_len 128 --pad_to_max_len --synthetic_min_len 128 --epochs 1 --max_steps 30 \
    --synthetic_size $TRAIN_SIZE --device="$DEVICE" "${mixed[@]}" --results= --save_dir= --nolog_file --checkpoint= \
    --trace_after_steps=$TRACE_AFTER --trace_steps=2 --trace="$TRACES/roberta_train-$TRAIN_MODEL-$p.json"
  check trace-peer-python-roberta-train-$p 300 "${PEER[@]}" tools/peer/roberta_train_step.py --model $TRAIN_MODEL \
    --batch $TRAIN_BATCH --seq 128 --precision $p --steps 3 --device "$DEVICE" --implementation fused \
    --trace "$TRACES/python-roberta_train-$TRAIN_MODEL-$p.json" --trace_steps 2
fi

if stage rounds; then
  # C++ against Python, and resnet_ddp at one process against resnet_single,
  # in alternating rounds: on the H200 of 2026-11-27 the same binary's median
  # step moved by 10-20 % between processes (and Python's fp16 step from 7.0
  # to 10.2 ms), more than the differences measured, so what compares is a
  # round's ratio. ddp_report also times PyTorch's own DDP at one process,
  # and both DDP overheads step by step in one process (--paired_seconds);
  # train_step_report sets train_step_benchmark's step against the Python
  # peer's on the same fixed batch.
  ROUND_PRECISIONS="fp32 fp16" DDP_BATCH=512 DDP_STEPS=100 PAIRED_S=5 STEP_BATCH=512 STEP_ROUNDS=3
  [[ "$DEVICE" == cpu ]] && ROUND_PRECISIONS="fp32" DDP_BATCH=32 DDP_STEPS=$PEER_STEPS PAIRED_S=1 STEP_BATCH=8 STEP_ROUNDS=1
  # The DDP overhead (issue 3, never measured this way on a GPU) first, in
  # both precisions; each takes about 2 minutes on an H200 and is not started
  # with less than 90 s left. Then the step against Python's (measured before).
  for p in $ROUND_PRECISIONS; do
    CHECK_MIN_S=90 check ddp_report-$p 300 "$PYTHON" tools/ddp_report.py --device "$DEVICE" --overhead_only \
      --precision $p --batch $DDP_BATCH --steps $DDP_STEPS --rounds 2 --paired_seconds $PAIRED_S --bin_dir "$B/resnet" \
      --python "$PYTHON"
  done
  for p in $ROUND_PRECISIONS; do
    CHECK_MIN_S=70 check train_step_report-$p 300 "$PYTHON" tools/train_step_report.py \
      --binary "$B/resnet/benchmarks/train_step_benchmark" --depth 18 --batch $STEP_BATCH --precision $p \
      --rounds $STEP_ROUNDS --steps "$PEER_STEPS" --min_time "${BENCHMARK_MIN_TIME:-1}"
  done
fi

if stage unit; then
  check unit-tests 600 ctest --test-dir "$B" --output-on-failure -j 4 -E "$GPU_TESTS"
fi
if [[ -d "$TRACES" ]] && compgen -G "$TRACES/*.json" >/dev/null; then
  tar -czf "$TRACES.tar.gz" -C "$(dirname "$TRACES")" "$(basename "$TRACES")" && rm -rf "$TRACES"
  log "traces: $TRACES.tar.gz ($(du -h "$TRACES.tar.gz" | cut -f1); chrome://tracing or ui.perfetto.dev open each)"
else
  rm -rf "$TRACES"
fi
log "gpu_check: $passed passed, $failures failed, $skipped skipped (stages: $STAGES)"
exit "$failures"
