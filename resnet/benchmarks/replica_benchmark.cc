// Google Benchmark of what resnet_dp does before each step to keep its
// replicas in step with the model, against what LibTorch's
// torch::nn::parallel::data_parallel does instead: clone the module for every
// call. Both onto a second replica on the benchmark's device (a GPU when there
// is one, else the CPU), for ResNet-18 and ResNet-50; the train step benchmark
// gives the step time to set the cost against.
//
//   bazel run -c opt //resnet/benchmarks:replica_benchmark
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include "common/amp.h"
#include "common/benchmark_context.h"
#include "common/device.h"
#include "common/timing.h"
#include "resnet/data_parallel.h"
#include "resnet/resnet.h"

namespace dlspeed {
namespace {

c10::Device BenchmarkDevice() {
  static const c10::Device device = *ResolveDevice("auto");
  return device;
}

double ParameterMegabytes(const ResNet& model) {
  int64_t bytes = 0;
  for (const auto& p : model->parameters()) bytes += p.numel() * p.element_size();
  for (const auto& b : model->buffers()) bytes += b.numel() * b.element_size();
  return static_cast<double>(bytes) / 1e6;
}

// resnet_dp's way: the replica exists; its parameters and buffers are copied in.
void RefreshPersistentReplica(benchmark::State& state) {
  const c10::Device device = BenchmarkDevice();
  ResNet model = *MakeResNet(static_cast<int>(state.range(0)));
  model->to(device);
  DataParallel dp(model, {device, device}, Precision::kFp32);
  dp.RefreshReplicas();
  SynchronizeDevice(device);
  for (auto _ : state) {
    dp.RefreshReplicas();
    SynchronizeDevice(device);
  }
  state.SetItemsProcessed(state.iterations());  // replicas made ready
  state.counters["parameters_mb"] = ParameterMegabytes(model);
}

// LibTorch's data_parallel way: a new replica for every call. ResNet is not a
// torch::nn::Cloneable (data_parallel would refuse it), so this does what
// Cloneable::clone does: build the module afresh (reset(), which initialises
// every layer), then copy the parameters and buffers onto the device.
void CloneReplica(benchmark::State& state) {
  const c10::Device device = BenchmarkDevice();
  ResNet model = *MakeResNet(static_cast<int>(state.range(0)));
  model->to(device);
  const std::vector<torch::Tensor> params = model->parameters(), buffers = model->buffers();
  SynchronizeDevice(device);
  for (auto _ : state) {
    ResNet replica(model->depth(), model->num_classes());
    replica->to(device);
    torch::NoGradGuard no_grad;
    const std::vector<torch::Tensor> to_params = replica->parameters(), to_buffers = replica->buffers();
    for (size_t i = 0; i < params.size(); ++i) to_params[i].copy_(params[i]);
    for (size_t i = 0; i < buffers.size(); ++i) to_buffers[i].copy_(buffers[i]);
    benchmark::DoNotOptimize(replica);
    SynchronizeDevice(device);
  }
  state.SetItemsProcessed(state.iterations());  // replicas made ready
  state.counters["parameters_mb"] = ParameterMegabytes(model);
}

const int kContext = [] {
  AddRuntimeContext(BenchmarkDevice());
  return 0;
}();

// Real time, as the other harnesses: the copies wait on the device or on
// memory, which the thread's CPU time leaves out.
BENCHMARK(RefreshPersistentReplica)->ArgName("depth")->Arg(18)->Arg(50)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(CloneReplica)->ArgName("depth")->Arg(18)->Arg(50)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace dlspeed
