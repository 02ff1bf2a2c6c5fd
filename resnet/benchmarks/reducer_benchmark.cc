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
//   bazel run //resnet/benchmarks:reducer_benchmark
#include <memory>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/torch.h>
#include <torch/version.h>

#include "common/device.h"
#include "common/distributed/gradient_reducer.h"
#include "common/distributed/launcher.h"
#include "common/distributed/process_group.h"
#include "common/timing.h"
#include "resnet/resnet.h"

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
  for (auto _ : state) {
    for (torch::Tensor& p : params) p.mutable_grad().reset();  // zero_grad(set_to_none=True)
    Backward(params);
    if (reducer) reducer->FinishBackward();
    SynchronizeDevice(device);
  }
  state.SetItemsProcessed(state.iterations());  // steps
  if (reducer) state.counters["allreduces_per_step"] = static_cast<double>(reducer->stats().allreduces) /
                                                     static_cast<double>(reducer->stats().steps);
}

const int kContext = [] {
  benchmark::AddCustomContext("libtorch_version", TORCH_VERSION);
  benchmark::AddCustomContext("device", BenchmarkDevice().str());
  benchmark::AddCustomContext("backend", BackendName());
  benchmark::AddCustomContext("device_name", DescribeRuntime(BenchmarkDevice()).value("device_name", "unknown"));
  benchmark::AddCustomContext("torch_threads", std::to_string(at::get_num_threads()));
  return 0;
}();

BENCHMARK(ReducerStep)
    ->ArgNames({"reducer", "size_full"})
    ->ArgsProduct({{0, 1}, {0, 1}})
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace dlspeed
