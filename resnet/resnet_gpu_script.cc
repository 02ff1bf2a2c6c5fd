// resnet_gpu_script: the study's Resnet-5. Loads a trained ResNet and times the
// test set on a GPU four ways: eager, as frozen TorchScript built in C++, and
// replayed as a CUDA graph captured from the eager model and from the frozen
// one, each in fp32 and in fp16 with channels_last; prints accuracy and time
// for each and appends a record per variant (a variant that fails is one
// line, the others still run, and the exit status is 1). Without a GPU it says
// so and exits 1, unless --device=cpu asks for the same comparison on the CPU
// (no CUDA graphs there; bf16 instead of fp16, which CPUs lack kernels for).
//
//   bazel run //resnet:resnet_gpu_script -- -m 0 -r 18
//   bazel run //resnet:resnet_gpu_script -- -m 0 -r 18 --device=cpu --test_limit=1000
#include <algorithm>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <torch/cuda.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "common/cli.h"
#include "common/cuda_graph.h"
#include "common/data/augment.h"
#include "common/data/dataset.h"
#include "common/device.h"
#include "common/results.h"
#include "common/run_main.h"
#include "common/timing.h"
#include "resnet/resnet.h"
#include "resnet/resnet_checkpoint.h"
#include "resnet/resnet_script.h"

ABSL_FLAG(int32_t, r, 18, "ResNet depth: 18, 34 or 50 (the study's -r)");
ABSL_FLAG(int32_t, m, 0, "1: the model trained with mixed precision (the study's -m)");
ABSL_FLAG(std::string, model, "", "state_dict to load (default: models/Resnet-<r>[-mixed]-1gpu.pth)");
ABSL_FLAG(std::string, device, "cuda", "cuda, cuda:N, or cpu (the same comparison without CUDA graphs)");
ABSL_FLAG(std::string, variants, "eager,torchscript,cuda-graph,cuda-graph-frozen",
          "which runs, in order (cuda-graph-frozen: the frozen TorchScript module captured as a CUDA graph)");
ABSL_FLAG(int64_t, batch_size, 32, "test batch size (the study: 32)");
ABSL_FLAG(int64_t, warmup_batches, 20, "untimed batches before each variant's timed passes (the Python peer: 20)");
ABSL_FLAG(int64_t, passes, 1,
          "timed passes over the test set per variant; their batches are pooled (the study: 1; the Python peer times "
          "200 batches)");
ABSL_FLAG(int32_t, threads, 0, "CPU threads with --device=cpu (0: all cores)");
ABSL_FLAG(std::string, dataset, "fashion-mnist", "cifar10, fashion-mnist or synthetic");
ABSL_FLAG(std::string, data_dir, "", "data directory (default: the dataset's usual place)");
ABSL_FLAG(int64_t, test_limit, 0, "use only the first N test images (0: all)");
ABSL_FLAG(bool, cudnn_benchmark, true, "let cuDNN pick the fastest convolution algorithms");
ABSL_FLAG(bool, tf32, true,
          "allow TF32 tensor cores in fp32 cuDNN convolutions (PyTorch's default, torch.backends.cudnn.allow_tf32)");
ABSL_FLAG(bool, tf32_matmul, false,
          "allow TF32 tensor cores in fp32 cuBLAS matmuls (PyTorch's default: off, torch.backends.cuda.matmul.allow_tf32)");
ABSL_FLAG(std::string, results, "results.jsonl", "JSON Lines file to append the records to (empty: none)");

namespace dlspeed {
namespace {

constexpr char kUsage[] =
    "times ResNet inference on a GPU: eager, frozen TorchScript and CUDA-graph replay, fp32 and fp16 channels_last\n"
    "(the study's Resnet-5).\n"
    "usage: resnet_gpu_script -m <0|1> -r <18|34|50> [--model=PATH] [--device=cuda|cpu] ...";

// What --variants may name (the default runs them all, in this order).
constexpr absl::string_view kVariants[] = {"eager", "torchscript", "cuda-graph", "cuda-graph-frozen"};

using Forward = std::function<torch::Tensor(const torch::Tensor&)>;

struct Pass {
  double seconds = 0;
  double accuracy = 0;
  Summary batches;
  double throughput = 0;
};

// Times `passes` passes over `images` (already on the device, in the run's
// dtype and memory format) after warm-up batches; every batch ends with a
// device sync. The batch times of all passes are pooled; `seconds` is the
// mean time of a pass, `accuracy` the first pass's (every pass gives the same).
// Only the forward is timed, as the Python peer (tools/peer/resnet_infer.py)
// times it: the accuracy count is queued after the clock stops. The warm-up
// also runs the last, smaller batch twice, so that its first calls (a
// CUDA-graph capture, cuDNN's algorithm search, TorchScript's profiling run and
// then its optimisation for a new shape) are not inside the timed pass.
Pass TimePass(const Forward& forward, const torch::Tensor& images, const torch::Tensor& labels, int64_t batch_size,
              int64_t warmup, int64_t passes, const c10::Device& device) {
  const int64_t count = images.size(0);
  for (int64_t b = 0; b < warmup; ++b) forward(images.slice(0, 0, std::min(batch_size, count)));
  const int64_t tail = count % batch_size;
  if (warmup > 0 && count > batch_size && tail != 0) {
    for (int call = 0; call < 2; ++call) forward(images.slice(0, count - tail, count));
  }
  StepTimer timer(device);
  torch::Tensor correct = torch::zeros({}, torch::TensorOptions().dtype(torch::kLong).device(device));
  SynchronizeDevice(device);
  Stopwatch total;
  for (int64_t p = 0; p < passes; ++p) {
    for (int64_t start = 0; start < images.size(0); start += batch_size) {
      const int64_t end = std::min(start + batch_size, images.size(0));
      timer.Start();
      const torch::Tensor logits = forward(images.slice(0, start, end));
      timer.Stop(end - start);
      // A CUDA graph's output is its static buffer: it is read here, on the
      // same stream, before the next replay overwrites it.
      if (p == 0) correct += logits.argmax(1).eq(labels.slice(0, start, end)).sum();
    }
  }
  SynchronizeDevice(device);
  Pass pass;
  pass.seconds = total.Seconds() / static_cast<double>(passes);
  pass.accuracy = static_cast<double>(correct.item<int64_t>()) / static_cast<double>(images.size(0));
  pass.batches = timer.StepSummary();
  pass.throughput = timer.Throughput();
  return pass;
}

int Main(int argc, char** argv) {
  std::vector<std::string> positional = ParseCommandLineOrExit(argc, argv, kUsage);
  if (!positional.empty()) ExitWithUsageError(absl::StrCat("unexpected argument '", positional[0], "'"));
  const int depth = absl::GetFlag(FLAGS_r);
  if (depth != 18 && depth != 34 && depth != 50) ExitWithUsageError(absl::StrCat("-r must be 18, 34 or 50, not ", depth));
  if (absl::GetFlag(FLAGS_m) != 0 && absl::GetFlag(FLAGS_m) != 1) ExitWithUsageError("-m must be 0 or 1");
  const bool mixed = absl::GetFlag(FLAGS_m) == 1;
  const int64_t batch_size = absl::GetFlag(FLAGS_batch_size);
  if (batch_size < 1) ExitWithUsageError("--batch_size must be at least 1");
  const int64_t passes = absl::GetFlag(FLAGS_passes);
  if (passes < 1) ExitWithUsageError("--passes must be at least 1");
  if (absl::GetFlag(FLAGS_warmup_batches) < 0) ExitWithUsageError("--warmup_batches must not be negative");
  if (absl::Status s = CheckCanAppend("results", absl::GetFlag(FLAGS_results)); !s.ok()) ExitWithUsageError(s.message());
  std::vector<std::string> variants;
  for (absl::string_view v : absl::StrSplit(absl::GetFlag(FLAGS_variants), ',', absl::SkipEmpty())) {
    if (std::find(std::begin(kVariants), std::end(kVariants), v) == std::end(kVariants)) {
      ExitWithUsageError(absl::StrCat("unknown variant '", v, "' in --variants (", absl::StrJoin(kVariants, ", "), ")"));
    }
    variants.emplace_back(v);
  }
  if (variants.empty()) ExitWithUsageError(absl::StrCat("--variants names none of ", absl::StrJoin(kVariants, ", ")));
  absl::StatusOr<DatasetKind> kind = ParseDatasetKind(absl::GetFlag(FLAGS_dataset));
  if (!kind.ok()) ExitWithUsageError(kind.status().message());
  // "auto" and "cuda" mean the GPU here: on a host without one, saying so beats a CPU run.
  const std::string device_flag = absl::GetFlag(FLAGS_device);
  absl::StatusOr<c10::Device> device = ResolveDevice(device_flag == "auto" ? "cuda" : device_flag);
  if (!device.ok() && device.status().code() == absl::StatusCode::kInvalidArgument) {
    ExitWithUsageError(device.status().message());
  }
  if (!device.ok() && !torch::cuda::is_available()) {
    return ReportError("no GPU here: resnet_gpu_script times GPU inference (use --device=cpu for the CPU comparison)");
  }
  if (!device.ok()) return ReportError(device.status().message());
  if (device->is_cpu() && absl::GetFlag(FLAGS_threads) > 0) at::set_num_threads(absl::GetFlag(FLAGS_threads));
  BackendSettings backend;
  backend.cudnn_benchmark = absl::GetFlag(FLAGS_cudnn_benchmark);
  backend.tf32_convolutions = absl::GetFlag(FLAGS_tf32);
  backend.tf32_matmuls = absl::GetFlag(FLAGS_tf32_matmul);
  ApplyBackendSettings(backend);

  const std::string data_dir =
      absl::GetFlag(FLAGS_data_dir).empty() ? DefaultDataDir(*kind) : absl::GetFlag(FLAGS_data_dir);
  absl::StatusOr<ImageDataset> test = LoadImageDataset(*kind, data_dir, Split::kTest, /*synthetic_size=*/5000);
  if (!test.ok()) return ReportError(test.status().message());
  const ImageDataset test_set = FirstSamples(*test, absl::GetFlag(FLAGS_test_limit));
  if (test_set.size() == 0) return ReportError("the test set is empty");
  const std::string model_path = !absl::GetFlag(FLAGS_model).empty()
                                     ? absl::GetFlag(FLAGS_model)
                                     : absl::StrCat("models/Resnet-", depth, mixed ? "-mixed" : "", "-1gpu.pth");
  std::cout << "Model is Resnet-" << depth << "\n";
  ResNet model = *MakeResNet(depth, test_set.num_classes);
  if (absl::Status s = LoadStateDict(*model, model_path, absl::StrCat("ResNet-", depth, " with ", test_set.num_classes, " classes"));
      !s.ok()) {
    if (s.code() == absl::StatusCode::kNotFound) {
      return ReportError(absl::StrCat(s.message(), ": train it with `bazel run //resnet:resnet_single -- --depths=", depth,
                                      "`, or pass --model=PATH"));
    }
    return ReportError(s.message());
  }
  model->eval();
  model->to(*device);
  const nlohmann::json runtime = DescribeRuntime(*device);
  std::cout << absl::StrFormat("resnet_gpu_script: %s (%s), %d test images, batch %d, libtorch=%s, cudnn_benchmark=%s, tf32=%s, tf32_matmul=%s\n",
                               device->str(), runtime.value("device_name", "?"), test_set.size(), batch_size,
                               runtime.value("libtorch_version", "?"), absl::GetFlag(FLAGS_cudnn_benchmark) ? "on" : "off",
                               absl::GetFlag(FLAGS_tf32) ? "on" : "off", absl::GetFlag(FLAGS_tf32_matmul) ? "on" : "off");

  c10::InferenceMode inference;
  const torch::Tensor all_images = NormalizeImages(test_set.images).to(*device);
  const torch::Tensor labels = test_set.labels.to(*device);
  // fp16 on a GPU; the CPU has no fast fp16 convolutions, so bf16 there.
  const torch::Dtype half = device->is_cuda() ? torch::kHalf : torch::kBFloat16;
  int failed = 0;  // a variant that failed to run
  for (const bool reduced : {false, true}) {
    const std::string precision = reduced ? (device->is_cuda() ? "fp16" : "bf16") : "fp32";
    model->to(reduced ? half : torch::kFloat);
    if (reduced) ToChannelsLast(*model);
    const auto format = reduced ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
    const torch::Tensor images = all_images.to(reduced ? half : torch::kFloat).contiguous(format);
    for (const std::string& variant : variants) {
      Forward forward;
      torch::jit::Module script;
      std::map<int64_t, std::unique_ptr<CudaGraphRunner>> graphs;  // one per batch shape
      const bool graphed = absl::StartsWith(variant, "cuda-graph");
      if (graphed && !device->is_cuda()) {
        std::cout << variant << " " << precision << ": skipped (CUDA graphs need a GPU)\n";
        continue;
      }
      if (variant == "torchscript" || variant == "cuda-graph-frozen") {
        absl::StatusOr<torch::jit::Module> built = ScriptResNet(model);
        if (!built.ok()) {  // one line, and on to the other variants
          failed = ReportError(absl::StrCat(variant, " ", precision, ": ", built.status().message()));
          continue;
        }
        script = *built;
        if (variant == "torchscript") {
          std::cout << "torchscript " << precision << " graph: " << GraphOperators(script) << "\n";
        }
        forward = [&](const torch::Tensor& x) { return script.forward({x}).toTensor(); };
      } else {
        forward = [&](const torch::Tensor& x) { return model->forward(x); };
      }
      if (graphed) {
        // One graph per batch shape, captured from the eager model or the
        // frozen one (convolutions with batch norm folded in, and on cuDNN
        // fused with the residual add and ReLU).
        forward = [&, captured_from = forward](const torch::Tensor& x) -> torch::Tensor {
          std::unique_ptr<CudaGraphRunner>& graph = graphs[x.size(0)];
          if (!graph) {
            absl::StatusOr<std::unique_ptr<CudaGraphRunner>> captured = CudaGraphRunner::Capture(captured_from, x);
            if (!captured.ok()) throw std::runtime_error(std::string(captured.status().message()));
            graph = std::move(*captured);
          }
          return graph->Run(x);
        };
      }
      Pass pass;
      try {
        pass = TimePass(forward, images, labels, batch_size, absl::GetFlag(FLAGS_warmup_batches), passes, *device);
      } catch (const std::exception& e) {
        // One line, and on to the other variants; the exit status says so.
        std::string message = e.what();
        failed = ReportError(absl::StrCat(variant, " ", precision, ": ", message.substr(0, message.find('\n'))));
        continue;
      }
      std::cout << absl::StrFormat("%s %s%s: Accuracy of the network on the %d test images: %d %%\n", variant, precision,
                                   reduced ? " channels_last" : "", test_set.size(),
                                   WholePercent(pass.accuracy, test_set.size()))
                << absl::StrFormat("Time used: %.4f s (%.3f ms a batch of %d, median; p10 %.3f, p90 %.3f; %.0f images/s)\n",
                                   pass.seconds, 1e3 * pass.batches.median, batch_size, 1e3 * pass.batches.p10,
                                   1e3 * pass.batches.p90, pass.throughput)
                << std::flush;
      if (!absl::GetFlag(FLAGS_results).empty()) {
        nlohmann::json record = NewRecord("resnet_gpu_script", *device);
        record["model"] = absl::StrCat("resnet", depth);
        record["depth"] = depth;
        record["mixed"] = mixed;
        record["variant"] = variant;
        record["precision"] = precision;
        record["channels_last"] = reduced;
        record["batch_size"] = batch_size;
        record["dataset"] = DatasetKindName(*kind);
        record["test_samples"] = test_set.size();
        record["test_accuracy"] = pass.accuracy;
        record["total_seconds"] = pass.seconds;  // a pass
        record["passes"] = passes;
        record["warmup_batches"] = absl::GetFlag(FLAGS_warmup_batches);
        record["batch_seconds"] = ToJson(pass.batches);
        record["throughput"] = pass.throughput;
        record["throughput_unit"] = "images/s";
        record["model_path"] = model_path;
        if (absl::Status s = AppendRecord(absl::GetFlag(FLAGS_results), record); !s.ok()) return ReportError(s.message());
      }
    }
  }
  return failed;
}

}  // namespace
}  // namespace dlspeed

int main(int argc, char** argv) { return dlspeed::RunMain(dlspeed::Main, argc, argv); }
