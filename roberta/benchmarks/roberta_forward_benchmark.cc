// Google Benchmark of the RoBERTa classifier's forward pass (encoder and
// head) at sequence length 128: model (roberta-small, roberta-base) x batch
// (1, 8, 32) x variant: on the CPU fp32 eager, dynamic int8, frozen
// TorchScript and both; on a GPU (when there is one) fp32 eager, frozen TorchScript and
// fp16 (the model's weights in half precision, as the peer's model.half()).
// Items per second are sequences per second.
// tools/peer/roberta_forward.py runs the same forward in Python transformers.
//
//   bazel run //roberta/benchmarks:roberta_forward_benchmark -- --benchmark_filter='cpu-int8/model:1/batch:32'
#include <map>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <benchmark/benchmark.h>
#include <torch/cuda.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "common/benchmark_context.h"
#include "common/device.h"
#include "common/timing.h"
#include "roberta/roberta.h"
#include "roberta/roberta_script.h"

namespace dlspeed {
namespace {

constexpr int64_t kSequenceLength = 128;
const char* const kModels[] = {"roberta-small", "roberta-base"};  // model:0, model:1

enum class Variant { kEager, kInt8, kScript, kInt8Script, kFp16 };

bool Scripted(Variant variant) { return variant == Variant::kScript || variant == Variant::kInt8Script; }

// One model per (model, variant, device), random weights (seed 0), eval mode.
// A TorchScript module is made anew for each batch size, as roberta_infer and
// the Python peer run one per process: its profiling executor specialises the
// graph to the first shapes it sees, and a later batch size would run a
// fallback graph.
struct Prepared {
  RobertaClassifier eager{nullptr};
  torch::jit::Module script;
};

// The model for a variant, made once; a scripting error skips the variant
// instead of aborting the binary.
absl::StatusOr<Prepared*> Get(int model_index, Variant variant, const c10::Device& device, int64_t batch) {
  static std::map<std::tuple<int, Variant, std::string, int64_t>, Prepared> cache;
  const auto key = std::make_tuple(model_index, variant, device.str(), Scripted(variant) ? batch : 0);
  auto it = cache.find(key);
  if (it != cache.end()) return &it->second;
  torch::manual_seed(0);
  Prepared prepared;
  prepared.eager = RobertaClassifier(*NamedRobertaConfig(kModels[model_index]));
  prepared.eager->eval();
  prepared.eager->to(device);
  if (variant == Variant::kFp16) prepared.eager->to(torch::kHalf);
  if (variant == Variant::kInt8 || variant == Variant::kInt8Script) QuantizeDynamicInt8(*prepared.eager);
  if (Scripted(variant)) {
    absl::StatusOr<torch::jit::Module> script = ScriptRoberta(*prepared.eager);
    if (!script.ok()) return script.status();
    prepared.script = *script;
  }
  return &cache.emplace(key, std::move(prepared)).first->second;
}

void Forward(benchmark::State& state, Variant variant, c10::Device device) {
  const int model_index = static_cast<int>(state.range(0));
  const int64_t batch = state.range(1);
  absl::StatusOr<Prepared*> prepared = Get(model_index, variant, device, batch);
  if (!prepared.ok()) {
    state.SkipWithError(std::string(prepared.status().message()).c_str());
    return;
  }
  Prepared& model = **prepared;
  const RobertaConfig& config = model.eager->config();
  // <s> random tokens </s>, no padding: the same fixed shape every call.
  torch::Tensor ids = torch::randint(3, config.vocab_size, {batch, kSequenceLength}, torch::kLong);
  ids.select(1, 0).fill_(config.bos_token_id);
  ids.select(1, kSequenceLength - 1).fill_(config.eos_token_id);
  ids = ids.to(device);
  c10::InferenceMode inference;
  // No padding: no mask for either form (as transformers drops an all-ones
  // one), so both run the same mask-free attention kernels.
  auto run = [&] { return Scripted(variant) ? model.script.forward({ids}).toTensor() : model.eager->forward(ids); };
  for (int i = 0; i < 3; ++i) run();  // warm-up (TorchScript's profiling runs, cuDNN/cuBLAS choices)
  SynchronizeDevice(device);
  std::vector<double> seconds;
  for (auto _ : state) {
    Stopwatch one;
    benchmark::DoNotOptimize(run());
    SynchronizeDevice(device);
    seconds.push_back(one.Seconds());
  }
  state.SetItemsProcessed(state.iterations() * batch);
  // The median batch, as the Python peer (tools/peer/roberta_forward.py)
  // reports it; Google Benchmark's time is the mean.
  state.counters["median_ms"] = 1e3 * Summarize(seconds).median;
}

const int kRegistered = [] {
  const bool cuda = torch::cuda::is_available();
  const c10::Device gpu = cuda ? c10::Device(c10::kCUDA, 0) : c10::Device(c10::kCPU);
  AddRuntimeContext(gpu);
  benchmark::AddCustomContext("variant_devices", cuda ? "cpu and cuda" : "cpu");  // where the variants run
  benchmark::AddCustomContext("sequence_length", std::to_string(kSequenceLength));
  benchmark::AddCustomContext("models", "model:0 = roberta-small (6 layers), model:1 = roberta-base (12 layers)");
  std::vector<std::tuple<std::string, Variant, c10::Device>> variants = {
      {"cpu-fp32", Variant::kEager, c10::Device(c10::kCPU)},
      {"cpu-int8", Variant::kInt8, c10::Device(c10::kCPU)},
      {"cpu-torchscript", Variant::kScript, c10::Device(c10::kCPU)},
      {"cpu-int8-torchscript", Variant::kInt8Script, c10::Device(c10::kCPU)}};
  if (cuda) {
    variants.push_back({"cuda-fp32", Variant::kEager, gpu});
    variants.push_back({"cuda-torchscript", Variant::kScript, gpu});
    variants.push_back({"cuda-fp16", Variant::kFp16, gpu});
  }
  for (const auto& [name, variant, device] : variants) {
    auto* b = benchmark::RegisterBenchmark(name.c_str(), Forward, variant, device);
    b->ArgNames({"model", "batch"})->Unit(benchmark::kMillisecond)->UseRealTime();
    for (int model = 0; model < 2; ++model) {
      for (int batch : {1, 8, 32}) b->Args({model, batch});
    }
  }
  return 0;
}();

}  // namespace
}  // namespace dlspeed
