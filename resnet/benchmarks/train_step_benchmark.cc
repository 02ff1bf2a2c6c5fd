// Google Benchmark of one ResNet training step of resnet_single's loop
// (ResNetTrainer::Step: forward, cross-entropy, backward, SGD on fused or
// foreach kernels) on a fixed synthetic batch already on the device, with
// the median step (counter median_ms) beside the mean time.
// tools/peer/resnet_train_step.py times the same step in Python PyTorch;
// tools/train_step_report.py runs both and prints the ratio of medians.
//
//   bazel run -c opt //resnet/benchmarks:train_step_benchmark -- --benchmark_filter='fp32/depth:18/batch:64/'
#include <string>
#include <vector>

#include <ATen/Context.h>
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include "common/amp.h"
#include "common/benchmark_context.h"
#include "common/device.h"
#include "common/optim/optimizer_kernels.h"
#include "common/timing.h"
#include "resnet/resnet.h"
#include "resnet/train.h"

namespace dlspeed {
namespace {

c10::Device BenchmarkDevice() {
  static const c10::Device device = *ResolveDevice("auto");
  return device;
}

// Arguments: depth, batch size, channels_last (0/1), fused optimizer kernels
// (1) or foreach ones (0).
void TrainStep(benchmark::State& state, Precision precision) {
  const int depth = static_cast<int>(state.range(0));
  const int64_t batch = state.range(1);
  const bool channels_last = state.range(2) != 0;
  const bool fused = state.range(3) != 0;
  const c10::Device device = BenchmarkDevice();
  torch::manual_seed(0);
  TrainOptions options;
  options.precision = precision;
  options.device = device;
  options.channels_last = channels_last;
  options.sgd.kernels = fused ? OptimizerKernels::kFused : OptimizerKernels::kForeach;
  ResNetTrainer trainer(*MakeResNet(depth), options);
  const auto format = channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  torch::Tensor images = torch::randn({batch, 3, 32, 32}, torch::TensorOptions().device(device)).contiguous(format);
  torch::Tensor labels = torch::randint(10, {batch}, torch::TensorOptions().dtype(torch::kLong).device(device));
  for (int i = 0; i < 3; ++i) trainer.Step(images, labels, nullptr);  // warm-up
  SynchronizeDevice(device);
  std::vector<double> seconds;
  for (auto _ : state) {
    Stopwatch one;
    trainer.Step(images, labels, nullptr);
    SynchronizeDevice(device);
    seconds.push_back(one.Seconds());
  }
  state.SetItemsProcessed(state.iterations() * batch);
  // Google Benchmark's time is the mean; the Python peer reports the median
  // step, which a few slow steps on a shared machine move less.
  state.counters["median_ms"] = 1e3 * Summarize(seconds).median;
  state.counters["images_per_second"] =
      benchmark::Counter(static_cast<double>(batch), benchmark::Counter::kIsIterationInvariantRate);
}

void Context() {
  // As the binaries' defaults and the Python peers: cuDNN times its
  // convolution algorithms for each new shape and keeps the fastest; TF32 in
  // convolutions, not in matmuls (PyTorch's defaults).
  ApplyBackendSettings(BackendSettings());
  AddRuntimeContext(BenchmarkDevice());
}

const int kRegistered = [] {
  Context();
  auto apply = [](benchmark::internal::Benchmark* b) {
    b->ArgNames({"depth", "batch", "channels_last", "fused"})->Unit(benchmark::kMillisecond)->UseRealTime();
    b->Args({18, 8, 0, 1});  // small steps: per-operator overhead shows
    for (int depth : {18, 34, 50}) b->Args({depth, 64, 0, 1});
    b->Args({18, 512, 0, 1});
    // What the fused optimizer saves: the same steps on foreach kernels.
    for (int depth : {18, 50}) b->Args({depth, 64, 0, 0});
    b->Args({18, 512, 0, 0});
  };
  apply(benchmark::RegisterBenchmark("fp32", TrainStep, Precision::kFp32));
  apply(benchmark::RegisterBenchmark("bf16", TrainStep, Precision::kBf16));
  if (BenchmarkDevice().is_cuda()) {
    apply(benchmark::RegisterBenchmark("fp16", TrainStep, Precision::kFp16));
    benchmark::RegisterBenchmark("bf16_channels_last", TrainStep, Precision::kBf16)
        ->ArgNames({"depth", "batch", "channels_last", "fused"})
        ->Args({18, 512, 1, 1})
        ->Args({50, 512, 1, 1})
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  }
  return 0;
}();

}  // namespace
}  // namespace dlspeed
