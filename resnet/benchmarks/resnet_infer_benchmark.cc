// Google Benchmark of ResNet inference: depth x batch (1, 32, 256) x variant
// (on the CPU eager, torchscript-frozen, int8, int8-torchscript; on a GPU,
// when there is one, cuda-eager, cuda-torchscript-frozen, and cuda-graph
// replay captured from the eager model and from the frozen one), items per
// second as a rate and the median batch (counter median_ms) beside the mean
// time; the TorchScript variants' label lists their graph's operators.
// tools/peer/resnet_infer.py runs the same variants in Python PyTorch.
//
//   bazel run //resnet/benchmarks:resnet_infer_benchmark -- --benchmark_filter=int8/depth:50/batch:32
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <ATen/Context.h>
#include <benchmark/benchmark.h>
#include <torch/cuda.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "common/benchmark_context.h"
#include "common/cuda_graph.h"
#include "common/device.h"
#include "common/timing.h"
#include "resnet/quantized_resnet.h"
#include "resnet/resnet.h"
#include "resnet/resnet_script.h"

namespace dlspeed {
namespace {

enum class Variant { kEager, kScript, kInt8, kInt8Script, kCudaEager, kCudaScript, kCudaGraph, kCudaGraphFrozen };

bool OnCuda(Variant variant) {
  return variant == Variant::kCudaEager || variant == Variant::kCudaScript || variant == Variant::kCudaGraph ||
         variant == Variant::kCudaGraphFrozen;
}

// The variants scripted from the eager model (ScriptResNet).
bool Scripted(Variant variant) {
  return variant == Variant::kScript || variant == Variant::kCudaScript || variant == Variant::kCudaGraphFrozen;
}

// The variants that run a TorchScript module: those, and the int8 one's.
bool RunsTorchScript(Variant variant) { return Scripted(variant) || variant == Variant::kInt8Script; }

// One prepared model per (depth, variant), built on first use: random weights,
// BatchNorm statistics from a few training-mode passes, then eval. A
// TorchScript module is made anew for each batch size, as the binaries and
// the Python peer run one: its profiling executor specialises the graph to the
// first shapes it sees, and a later batch size would run a fallback graph.
struct Prepared {
  ResNet eager{nullptr};
  torch::jit::Module script;
  std::unique_ptr<QuantizedResNet> int8;
  std::map<int64_t, std::unique_ptr<CudaGraphRunner>> graphs;  // one per batch size
};

// The model for a variant, made once; an error (say, an int8 engine this
// LibTorch lacks) skips the variant instead of aborting the binary.
absl::StatusOr<Prepared*> Get(int depth, Variant variant, int64_t batch) {
  static std::map<std::tuple<int, Variant, int64_t>, Prepared> cache;
  const auto key = std::make_tuple(depth, variant, RunsTorchScript(variant) ? batch : 0);
  auto it = cache.find(key);
  if (it != cache.end()) return &it->second;
  torch::manual_seed(0);
  Prepared prepared;
  prepared.eager = *MakeResNet(depth);
  {
    torch::NoGradGuard no_grad;
    prepared.eager->train();
    for (int i = 0; i < 3; ++i) prepared.eager->forward(torch::randn({32, 3, 32, 32}));
    prepared.eager->eval();
  }
  // Frozen on the device it runs on: the constants stay where freezing found
  // them, and on a GPU optimize_for_inference can fuse conv+add+relu in cuDNN.
  if (OnCuda(variant)) prepared.eager->to(torch::kCUDA);
  if (Scripted(variant)) {
    absl::StatusOr<torch::jit::Module> script = ScriptResNet(prepared.eager);
    if (!script.ok()) return script.status();
    prepared.script = *script;
  }
  if (variant == Variant::kInt8 || variant == Variant::kInt8Script) {
    std::vector<torch::Tensor> calibration;
    for (int i = 0; i < 4; ++i) calibration.push_back(torch::randn({32, 3, 32, 32}));
    absl::StatusOr<std::unique_ptr<QuantizedResNet>> int8 = QuantizeResNet(prepared.eager, calibration);
    if (!int8.ok()) return int8.status();
    prepared.int8 = std::move(*int8);
    if (variant == Variant::kInt8Script) {
      absl::StatusOr<torch::jit::Module> script = prepared.int8->ToTorchScript();
      if (!script.ok()) return script.status();
      prepared.script = *script;
    }
  }
  return &cache.emplace(key, std::move(prepared)).first->second;
}

void Infer(benchmark::State& state, Variant variant) {
  const int depth = static_cast<int>(state.range(0));
  const int64_t batch = state.range(1);
  absl::StatusOr<Prepared*> prepared = Get(depth, variant, batch);
  if (!prepared.ok()) {
    state.SkipWithError(std::string(prepared.status().message()).c_str());
    return;
  }
  Prepared& model = **prepared;
  const bool cuda = OnCuda(variant);
  torch::Tensor images = torch::randn({batch, 3, 32, 32}, cuda ? torch::kCUDA : torch::kCPU);
  // The int8 TorchScript module runs on the engine its weights were packed for.
  if (variant == Variant::kInt8Script) at::globalContext().setQEngine(model.int8->qengine());
  c10::InferenceMode inference;
  const bool graphed = variant == Variant::kCudaGraph || variant == Variant::kCudaGraphFrozen;
  if (graphed && !model.graphs[batch]) {
    CudaGraphRunner::Forward forward = [&](const torch::Tensor& x) { return model.eager->forward(x); };
    if (variant == Variant::kCudaGraphFrozen) {
      forward = [&](const torch::Tensor& x) { return model.script.forward({x}).toTensor(); };
    }
    absl::StatusOr<std::unique_ptr<CudaGraphRunner>> graph = CudaGraphRunner::Capture(forward, images);
    if (!graph.ok()) {
      state.SkipWithError(std::string(graph.status().message()).c_str());
      return;
    }
    model.graphs[batch] = std::move(*graph);
  }
  auto run = [&] {
    switch (variant) {
      case Variant::kEager: return model.eager->forward(images);
      case Variant::kScript: return model.script.forward({images}).toTensor();
      case Variant::kInt8: return model.int8->forward(images);
      case Variant::kInt8Script: return model.script.forward({images}).toTensor();
      case Variant::kCudaEager: return model.eager->forward(images);
      case Variant::kCudaScript: return model.script.forward({images}).toTensor();
      case Variant::kCudaGraph:
      case Variant::kCudaGraphFrozen: return model.graphs[batch]->Run(images);
    }
    return torch::Tensor();
  };
  // Warm-up: TorchScript's profiling runs and cuDNN's algorithm search; on a
  // GPU as many calls as the Python peer and resnet_gpu_script make.
  for (int i = 0, calls = cuda ? 20 : 3; i < calls; ++i) run();
  if (variant == Variant::kScript || variant == Variant::kCudaScript) state.SetLabel(GraphOperators(model.script));
  const c10::Device device = images.device();
  SynchronizeDevice(device);
  std::vector<double> seconds;
  for (auto _ : state) {
    Stopwatch one;
    benchmark::DoNotOptimize(run());
    if (cuda) SynchronizeDevice(device);
    seconds.push_back(one.Seconds());
  }
  state.SetItemsProcessed(state.iterations() * batch);
  // Google Benchmark's time is the mean; the Python peer reports the median
  // batch, which a few slow batches on a shared machine move less.
  state.counters["median_ms"] = 1e3 * Summarize(seconds).median;
}

const int kRegistered = [] {
  // As the binaries' defaults and the Python peers: cuDNN times its
  // convolution algorithms for each new shape and keeps the fastest; TF32 in
  // convolutions, not in matmuls (PyTorch's defaults).
  ApplyBackendSettings(BackendSettings());
  const bool cuda = torch::cuda::is_available();
  // device_name stays the CPU's (tools/infer_report.py labels CPU runs with
  // it); gpu_name names the GPU.
  AddRuntimeContext(c10::Device(c10::kCPU));
  benchmark::AddCustomContext("variant_devices", cuda ? "cpu and cuda" : "cpu");  // where the variants run
  // Only the graph variants need CUDA-graph support in this build.
  const bool graphs = cuda && CudaGraphsBuiltIn();
  if (cuda && !graphs) benchmark::AddCustomContext("cuda_graphs", "not built in: no cuda-graph variants");
  for (auto [name, variant] : {std::make_pair("eager", Variant::kEager),
                               std::make_pair("torchscript-frozen", Variant::kScript),
                               std::make_pair("int8", Variant::kInt8),
                               std::make_pair("int8-torchscript", Variant::kInt8Script),
                               std::make_pair("cuda-eager", Variant::kCudaEager),
                               std::make_pair("cuda-torchscript-frozen", Variant::kCudaScript),
                               std::make_pair("cuda-graph", Variant::kCudaGraph),
                               std::make_pair("cuda-graph-frozen", Variant::kCudaGraphFrozen)}) {
    if (!cuda && OnCuda(variant)) continue;
    if (!graphs && (variant == Variant::kCudaGraph || variant == Variant::kCudaGraphFrozen)) continue;
    auto* b = benchmark::RegisterBenchmark(name, Infer, variant);
    b->ArgNames({"depth", "batch"})->Unit(benchmark::kMillisecond)->UseRealTime();
    for (int depth : {18, 34, 50}) {
      for (int batch : {1, 32, 256}) b->Args({depth, batch});
    }
  }
  return 0;
}();

}  // namespace
}  // namespace dlspeed
