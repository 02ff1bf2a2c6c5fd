// Google Benchmark of what resnet_ddp's GradientReducer adds to a backward
// pass at world size 1: the hooks, the copies into the buckets, the bucket
// allreduces and the write-back, against the same backward without a reducer.
// The parameters have ResNet-18's shapes; `size_full:1` gives them their real
// sizes (the copies then cost memory bandwidth), `size_full:0` 16 elements
// each, so that what is left is the reducer's host work per step: the part that
// costs wall time where a step is bound by launching kernels, as ResNet-18's
// step on a GPU is (results/gpu-h200-2026-11-27/README.md). Runs on the GPU
// with NCCL where there is one, else on the CPU with Gloo.
//
// DdpOverhead measures issue 3's target directly: resnet_single's training
// step (ResNetTrainer::Step) against the same step with the reducer attached,
// as resnet_ddp runs it at world size 1. Two trainers with the same weights
// live in this one process and take turns, step by step, each step ending in a
// device sync, so both see the same machine load; separate processes differ by
// more than the 3 % target on a shared machine. Its counters: the median step
// of each, `overhead_pct` (their ratio) and `paired_overhead_pct` (the median
// of each pair's ratio). Its time and items/s cover a pair of steps, one of
// each trainer.
//
//   bazel run //resnet/benchmarks:reducer_benchmark
//   bazel run //resnet/benchmarks:reducer_benchmark -- --benchmark_filter=DdpOverhead
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <benchmark/benchmark.h>
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/torch.h>

#include "common/amp.h"
#include "common/benchmark_context.h"
#include "common/device.h"
#include "common/distributed/gradient_reducer.h"
#include "common/distributed/launcher.h"
#include "common/distributed/process_group.h"
#include "common/timing.h"
#include "resnet/resnet.h"
#include "resnet/train.h"

namespace dlspeed {
namespace {

c10::Device BenchmarkDevice() {
  static const c10::Device device = *ResolveDevice("auto");
  return device;
}

// NCCL for a GPU where this LibTorch has it, else Gloo.
std::string BackendName() {
  return BenchmarkDevice().is_cuda() && BackendAvailable("nccl") ? "nccl" : "gloo";
}

// One process group for the whole run: a one-rank job on a free local port.
ProcessGroup& Group() {
  static ProcessGroup* const group = [] {
    RankEnv env;
    env.master_port = *FindFreePort();
    env.launcher = "benchmark";
    ProcessGroupOptions options;
    options.backend = BackendName();
    absl::StatusOr<std::unique_ptr<ProcessGroup>> made = ProcessGroup::Create(env, options);
    if (!made.ok()) {
      std::cerr << "reducer_benchmark: " << made.status().message() << std::endl;
      std::exit(1);
    }
    return made->release();
  }();
  return *group;
}

// Parameters shaped as ResNet-18's (62 tensors), at full size or 16 elements.
std::vector<torch::Tensor> Parameters(bool full) {
  std::vector<torch::Tensor> params;
  for (const torch::Tensor& p : (*MakeResNet(18))->parameters()) {
    torch::Tensor made = full ? p.detach().clone() : torch::randn({16});
    params.push_back(made.to(BenchmarkDevice()).requires_grad_());
  }
  return params;
}

// One training step's backward: every parameter gets a fresh gradient (2p),
// which autograd's AccumulateGrad takes over as the step's .grad().
void Backward(const std::vector<torch::Tensor>& params) {
  torch::Tensor loss = params[0].square().sum();
  for (size_t i = 1; i < params.size(); ++i) loss = loss + params[i].square().sum();
  loss.backward();
}

void ReducerStep(benchmark::State& state) {
  const bool with_reducer = state.range(0) != 0;
  const bool full = state.range(1) != 0;
  std::vector<torch::Tensor> params = Parameters(full);
  std::unique_ptr<GradientReducer> reducer;
  if (with_reducer) reducer = std::make_unique<GradientReducer>(params, Group().backend_ptr());
  const c10::Device device = BenchmarkDevice();
  auto step = [&] {
    for (torch::Tensor& p : params) p.mutable_grad().reset();  // zero_grad(set_to_none=True)
    Backward(params);
    if (reducer) reducer->FinishBackward();
    SynchronizeDevice(device);
  };
  // The first steps allocate the gradients and the reducer's buckets.
  for (int i = 0, warmup = device.is_cuda() ? 20 : 3; i < warmup; ++i) step();
  std::vector<double> seconds;
  for (auto _ : state) {
    Stopwatch stopwatch;
    step();
    seconds.push_back(stopwatch.Seconds());
  }
  state.SetItemsProcessed(state.iterations());  // steps
  state.counters["median_ms"] = Summarize(seconds).median * 1e3;
  if (reducer) state.counters["allreduces_per_step"] = static_cast<double>(reducer->stats().allreduces) /
                                                     static_cast<double>(reducer->stats().steps);
}

// A trainer of a fresh ResNet of `depth` (seed 0, so that every trainer starts
// from the same weights) with resnet_single's step options.
std::unique_ptr<ResNetTrainer> MakeTrainer(int depth, Precision precision,
                                           std::function<void()> after_backward = nullptr) {
  torch::manual_seed(0);
  TrainOptions options;
  options.precision = precision;
  options.device = BenchmarkDevice();
  options.after_backward = std::move(after_backward);
  return std::make_unique<ResNetTrainer>(*MakeResNet(depth), options);
}

// Arguments: depth, batch, own_buckets (0: every gradient shares a bucket, as
// in PyTorch's DDP; 1: the reducer's default, large CPU gradients
// allreduced in place). Each iteration is one step of each trainer, in
// alternating order so that neither always follows the other.
void DdpOverhead(benchmark::State& state, Precision precision) {
  const int depth = static_cast<int>(state.range(0));
  const int64_t batch = state.range(1);
  ReducerOptions options;
  if (state.range(2) == 0) options.own_bucket_min_bytes = std::numeric_limits<int64_t>::max();
  const c10::Device device = BenchmarkDevice();
  std::unique_ptr<ResNetTrainer> single = MakeTrainer(depth, precision);
  // As resnet_ddp: the trainer moves the model to the device, then the
  // reducer takes its parameters there.
  std::unique_ptr<GradientReducer> reducer;
  std::unique_ptr<ResNetTrainer> ddp = MakeTrainer(depth, precision, [&reducer] { reducer->FinishBackward(); });
  BroadcastFromRankZero(ddp->model()->parameters(), Group().backend());
  reducer = std::make_unique<GradientReducer>(ddp->model()->parameters(), Group().backend_ptr(), options);
  torch::manual_seed(1);
  torch::Tensor images = torch::randn({batch, 3, 32, 32}, torch::TensorOptions().device(device));
  torch::Tensor labels = torch::randint(10, {batch}, torch::TensorOptions().dtype(torch::kLong).device(device));
  auto timed_step = [&](ResNetTrainer& trainer) {
    SynchronizeDevice(device);
    Stopwatch stopwatch;
    trainer.Step(images, labels, nullptr);
    SynchronizeDevice(device);
    return stopwatch.Seconds();
  };
  const int warmup = device.is_cuda() ? 20 : 3;
  for (int i = 0; i < warmup; ++i) {
    timed_step(*single);
    timed_step(*ddp);
  }
  std::vector<double> single_seconds, ddp_seconds, paired;
  bool ddp_first = false;
  for (auto _ : state) {
    double ddp_time = 0;
    if (ddp_first) ddp_time = timed_step(*ddp);
    const double single_time = timed_step(*single);
    if (!ddp_first) ddp_time = timed_step(*ddp);
    ddp_first = !ddp_first;
    single_seconds.push_back(single_time);
    ddp_seconds.push_back(ddp_time);
    paired.push_back(ddp_time / single_time - 1);
  }
  const double single_median = Summarize(single_seconds).median, ddp_median = Summarize(ddp_seconds).median;
  state.SetItemsProcessed(state.iterations() * 2 * batch);  // an iteration trains both trainers on a batch
  state.counters["single_ms"] = single_median * 1e3;
  state.counters["ddp_ms"] = ddp_median * 1e3;
  state.counters["overhead_pct"] = (ddp_median / single_median - 1) * 100;
  state.counters["paired_overhead_pct"] = Summarize(paired).median * 100;
  state.counters["allreduces_per_step"] =
      static_cast<double>(reducer->stats().allreduces) / static_cast<double>(reducer->stats().steps);
}

const int kContext = [] {
  // As the binaries' defaults and the Python peers: cuDNN times its
  // convolution algorithms for each new shape and keeps the fastest; TF32 in
  // convolutions, not in matmuls (PyTorch's defaults).
  ApplyBackendSettings(BackendSettings());
  AddRuntimeContext(BenchmarkDevice());
  benchmark::AddCustomContext("backend", BackendName());
  return 0;
}();

BENCHMARK(ReducerStep)
    ->ArgNames({"reducer", "size_full"})
    ->ArgsProduct({{0, 1}, {0, 1}})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

const int kOverheadRegistered = [] {
  // Batch 32 a process on the CPU (as ddp_report.py), 512 on a GPU (the
  // study's), where gradients always share buckets.
  const bool cuda = BenchmarkDevice().is_cuda();
  const int64_t batch = cuda ? 512 : 32;
  std::vector<std::pair<std::string, Precision>> precisions = {{"fp32", Precision::kFp32}};
  if (cuda) precisions.push_back({"fp16", Precision::kFp16});
  for (const auto& [name, precision] : precisions) {
    benchmark::RegisterBenchmark(("DdpOverhead/" + name).c_str(), DdpOverhead, precision)
        ->ArgNames({"depth", "batch", "own_buckets"})
        ->ArgsProduct({{18}, {batch}, cuda ? std::vector<int64_t>{0} : std::vector<int64_t>{1, 0}})
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  }
  return 0;
}();

}  // namespace
}  // namespace dlspeed
