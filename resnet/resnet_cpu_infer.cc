// resnet_cpu_infer: the study's Resnet-4. Loads a trained ResNet (the
// state_dict resnet_single saved, or any torchvision one with --model),
// optionally turns it into int8 (-q 1: static post-training quantization) and
// TorchScript (-ts 1: built in C++, frozen and optimized), and times the test
// set at batch 32 on the CPU; prints the study's lines and appends a record.
//
//   bazel run //resnet:resnet_cpu_infer -- -q 1 -r 50 -m 0 -ts 0
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <torch/script.h>
#include <torch/torch.h>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/cli.h"
#include "common/data/augment.h"
#include "common/data/dataset.h"
#include "common/device.h"
#include "common/results.h"
#include "common/run_main.h"
#include "common/timing.h"
#include "resnet/quantized_resnet.h"
#include "resnet/resnet.h"
#include "resnet/resnet_checkpoint.h"
#include "resnet/resnet_script.h"

ABSL_FLAG(int32_t, q, 0, "1: int8 static quantization (the study's -q)");
ABSL_FLAG(int32_t, r, 0, "ResNet depth: 18, 34 or 50 (the study's -r; default 18, or what a --script_file says)");
ABSL_FLAG(int32_t, m, 0, "1: the model trained with mixed precision (the study's -m)");
ABSL_FLAG(int32_t, ts, 0, "1: TorchScript built in C++, frozen and optimized (the study's -ts)");
ABSL_FLAG(std::string, model, "", "state_dict to load (default: models/Resnet-<r>[-mixed]-1gpu.pth)");
ABSL_FLAG(std::string, script_file, "", "a TorchScript file (e.g. exported from Python) to run instead");
ABSL_FLAG(std::string, save_script, "", "save the TorchScript module built with -ts 1 here (with its depth)");
ABSL_FLAG(int32_t, threads, 0, "CPU threads (0: all cores)");
ABSL_FLAG(int64_t, batch_size, 32, "test batch size (the study: 32)");
ABSL_FLAG(int64_t, calib_batches, 10, "training batches to calibrate int8 activation ranges on");
ABSL_FLAG(std::string, engine, "x86", "quantized engine: x86, fbgemm, onednn or qnnpack (where this LibTorch has it)");
ABSL_FLAG(int64_t, warmup_batches, 3, "untimed batches run first");
ABSL_FLAG(std::string, dataset, "fashion-mnist", "cifar10, fashion-mnist or synthetic");
ABSL_FLAG(std::string, data_dir, "", "data directory (default: the dataset's usual place)");
ABSL_FLAG(int64_t, test_limit, 0, "use only the first N test images (0: all)");
ABSL_FLAG(std::string, results, "results.jsonl", "JSON Lines file to append the record to (empty: none)");

namespace dlspeed {
namespace {

constexpr char kUsage[] =
    "times ResNet inference on the CPU: eager, int8, TorchScript (the study's Resnet-4).\n"
    "usage: resnet_cpu_infer -q <0|1> -r <18|34|50> -m <0|1> -ts <0|1> [--model=PATH] [--threads=N] ...";

using Forward = std::function<torch::Tensor(const torch::Tensor&)>;

// The file --save_script stores beside the module, saying what it holds.
constexpr char kScriptInfoFile[] = "resnet.json";

int CheckBinary(int32_t value, const char* flag) {
  if (value != 0 && value != 1) ExitWithUsageError(absl::StrCat("-", flag, " must be 0 or 1, not ", value));
  return value;
}

int Main(int argc, char** argv) {
  std::vector<std::string> positional = ParseCommandLineOrExit(argc, argv, kUsage);
  if (!positional.empty()) ExitWithUsageError(absl::StrCat("unexpected argument '", positional[0], "'"));
  const int depth_flag = absl::GetFlag(FLAGS_r);  // 0: not given
  if (depth_flag != 0 && depth_flag != 18 && depth_flag != 34 && depth_flag != 50) {
    ExitWithUsageError(absl::StrCat("-r must be 18, 34 or 50, not ", depth_flag));
  }
  const bool quantize = CheckBinary(absl::GetFlag(FLAGS_q), "q");
  const bool mixed = CheckBinary(absl::GetFlag(FLAGS_m), "m");
  const bool script = CheckBinary(absl::GetFlag(FLAGS_ts), "ts");
  const int64_t batch_size = absl::GetFlag(FLAGS_batch_size);
  if (batch_size < 1) ExitWithUsageError("--batch_size must be at least 1");
  absl::StatusOr<DatasetKind> kind = ParseDatasetKind(absl::GetFlag(FLAGS_dataset));
  if (!kind.ok()) ExitWithUsageError(kind.status().message());
  const int threads = absl::GetFlag(FLAGS_threads) > 0 ? absl::GetFlag(FLAGS_threads)
                                                       : static_cast<int>(std::thread::hardware_concurrency());
  at::set_num_threads(threads);
  const std::string script_file = absl::GetFlag(FLAGS_script_file);
  if (!script_file.empty() && quantize) ExitWithUsageError("--script_file runs a given module as is: drop -q 1");
  const std::string save_script = absl::GetFlag(FLAGS_save_script);
  if (!save_script.empty() && (!script || !script_file.empty())) {
    ExitWithUsageError("--save_script saves the module -ts 1 builds: add -ts 1 (and no --script_file)");
  }
  if (absl::GetFlag(FLAGS_threads) < 0 || absl::GetFlag(FLAGS_warmup_batches) < 0 ||
      absl::GetFlag(FLAGS_test_limit) < 0) {
    ExitWithUsageError("--threads, --warmup_batches and --test_limit must be at least 0");
  }
  if (absl::Status s = CheckCanAppend("results", absl::GetFlag(FLAGS_results)); !s.ok()) ExitWithUsageError(s.message());
  if (quantize) {
    if (absl::GetFlag(FLAGS_calib_batches) < 1) ExitWithUsageError("--calib_batches must be at least 1");
    if (absl::Status s = CheckQuantizedEngine(absl::GetFlag(FLAGS_engine)); !s.ok()) {
      ExitWithUsageError(absl::StrCat("--engine: ", s.message()));
    }
  }

  const std::string data_dir =
      absl::GetFlag(FLAGS_data_dir).empty() ? DefaultDataDir(*kind) : absl::GetFlag(FLAGS_data_dir);
  absl::StatusOr<ImageDataset> test = LoadImageDataset(*kind, data_dir, Split::kTest, /*synthetic_size=*/5000);
  if (!test.ok()) return ReportError(test.status().message());
  const ImageDataset test_set = FirstSamples(*test, absl::GetFlag(FLAGS_test_limit));
  // A file --save_script wrote says what it holds: {"depth", "num_classes", "mixed", "variant"}.
  int depth = depth_flag != 0 ? depth_flag : 18;
  bool model_mixed = mixed;
  std::string saved_variant;
  torch::jit::Module scripted;
  if (!script_file.empty()) {
    std::map<std::string, std::string> extra = {{kScriptInfoFile, ""}};
    absl::StatusOr<torch::jit::Module> loaded = LoadScript(script_file, &extra);
    if (!loaded.ok()) return ReportError(loaded.status().message());
    scripted = *loaded;
    depth = depth_flag;  // 0: unknown
    const nlohmann::json info = extra.count(kScriptInfoFile)
                                    ? nlohmann::json::parse(extra[kScriptInfoFile], nullptr, /*allow_exceptions=*/false)
                                    : nlohmann::json();
    if (info.is_object()) {
      const int saved_depth = info.contains("depth") && info["depth"].is_number_integer() ? info["depth"].get<int>() : 0;
      if (depth_flag != 0 && saved_depth != 0 && saved_depth != depth_flag) {
        return ReportError(absl::StrCat(script_file, " holds a ResNet-", saved_depth, ", not the -r ", depth_flag,
                                        " asked for"));
      }
      if (saved_depth != 0) depth = saved_depth;
      if (info.contains("mixed") && info["mixed"].is_boolean()) model_mixed = info["mixed"].get<bool>();
      if (info.contains("variant") && info["variant"].is_string()) saved_variant = info["variant"].get<std::string>();
    }
  }
  const std::string model_path =
      !absl::GetFlag(FLAGS_model).empty()
          ? absl::GetFlag(FLAGS_model)
          : absl::StrCat("models/Resnet-", depth, mixed ? "-mixed" : "", "-1gpu.pth");

  if (depth != 0) {
    std::cout << "Model is Resnet-" << depth << "\n";
  } else {
    std::cout << "Model is " << script_file << " (it does not say its depth: give -r to record it)\n";
  }
  torch::manual_seed(0);  // the calibration sample
  ResNet model{nullptr};
  std::string variant = "eager";
  Forward forward;
  std::unique_ptr<QuantizedResNet> quantized;
  if (!script_file.empty()) {
    variant = "torchscript-file";
  } else {
    model = *MakeResNet(depth, test_set.num_classes);
    absl::Status loaded = LoadStateDict(*model, model_path, absl::StrCat("ResNet-", depth, " with ", test_set.num_classes, " classes"));
    if (!loaded.ok()) {
      if (loaded.code() == absl::StatusCode::kNotFound) {
        return ReportError(absl::StrCat(loaded.message(), ": train it with `bazel run //resnet:resnet_single -- --depths=", depth,
                                 "`, or pass --model=PATH"));
      }
      return ReportError(loaded.message());
    }
    model->eval();
  }
  if (quantize) {
    std::cout << "Quantizing model..." << std::endl;
    absl::StatusOr<ImageDataset> train = LoadImageDataset(*kind, data_dir, Split::kTrain, /*synthetic_size=*/5000);
    if (!train.ok()) return ReportError(train.status().message());
    std::vector<torch::Tensor> calibration;
    torch::Tensor order = torch::randperm(train->size(), torch::TensorOptions().dtype(torch::kLong));
    for (int64_t b = 0; b < absl::GetFlag(FLAGS_calib_batches); ++b) {
      const int64_t start = b * batch_size;
      if (start >= train->size()) break;
      torch::Tensor index = order.slice(0, start, std::min(start + batch_size, train->size()));
      calibration.push_back(NormalizeImages(train->images.index_select(0, index)));
    }
    QuantizeOptions options;
    options.engine = absl::GetFlag(FLAGS_engine);
    absl::StatusOr<std::unique_ptr<QuantizedResNet>> q = QuantizeResNet(model, calibration, options);
    if (!q.ok()) return ReportError(q.status().message());
    quantized = std::move(*q);
    variant = "int8";
  }
  if (script && script_file.empty()) {
    std::cout << "Creating torchScript..." << std::endl;
    absl::StatusOr<torch::jit::Module> s = quantized ? quantized->ToTorchScript() : ScriptResNet(model);
    if (!s.ok()) return ReportError(s.status().message());
    scripted = *s;
    variant = quantized ? "int8-torchscript" : "torchscript-frozen";
    if (!save_script.empty()) {
      const nlohmann::json info = {
          {"depth", depth}, {"num_classes", test_set.num_classes}, {"mixed", mixed}, {"variant", variant}};
      if (absl::Status s = SaveScript(scripted, save_script, {{kScriptInfoFile, info.dump()}}); !s.ok()) {
        return ReportError(s.message());
      }
      std::cout << "Saved " << save_script << "\n";
    }
  }
  if (variant == "eager") {
    forward = [&](const torch::Tensor& x) { return model->forward(x); };
  } else if (variant == "int8") {
    forward = [&](const torch::Tensor& x) { return quantized->forward(x); };
  } else {
    forward = [&](const torch::Tensor& x) { return scripted.forward({x}).toTensor(); };
  }

  // The int8 TorchScript module runs on the engine its weights were packed for.
  if (quantized) at::globalContext().setQEngine(quantized->qengine());
  c10::InferenceMode inference;
  for (int64_t b = 0; b < absl::GetFlag(FLAGS_warmup_batches); ++b) {
    const int64_t end = std::min(batch_size, test_set.size());
    forward(NormalizeImages(test_set.images.slice(0, 0, end)));
  }
  // The last, smaller batch too: TorchScript profiles each new shape on its first calls.
  const int64_t tail = test_set.size() % batch_size;
  if (absl::GetFlag(FLAGS_warmup_batches) > 0 && test_set.size() > batch_size && tail != 0) {
    forward(NormalizeImages(test_set.images.slice(0, test_set.size() - tail, test_set.size())));
  }
  StepTimer timer;
  int64_t correct = 0;
  Stopwatch total;
  for (int64_t start = 0; start < test_set.size(); start += batch_size) {
    const int64_t end = std::min(start + batch_size, test_set.size());
    torch::Tensor images = NormalizeImages(test_set.images.slice(0, start, end));
    timer.Start();
    torch::Tensor logits = forward(images);
    timer.Stop(end - start);
    correct += logits.argmax(1).eq(test_set.labels.slice(0, start, end)).sum().item<int64_t>();
  }
  const double seconds = total.Seconds();
  const double accuracy = static_cast<double>(correct) / static_cast<double>(test_set.size());
  std::cout << absl::StrFormat("Accuracy of the network on the %d test images: %d %%\n", test_set.size(),
                               WholePercent(accuracy, test_set.size()))
            << "Time used: " << seconds << "\n";
  const Summary batches = timer.StepSummary();
  std::cout << absl::StrFormat("%s, %d threads: %.2f ms a batch of %d (median; p10 %.2f, p90 %.2f), %.0f images/s\n",
                               variant, threads, 1e3 * batches.median, batch_size, 1e3 * batches.p10,
                               1e3 * batches.p90, timer.Throughput());
  if (!absl::GetFlag(FLAGS_results).empty()) {
    nlohmann::json record = NewRecord("resnet_cpu_infer", c10::Device(c10::kCPU));
    record["model"] = depth != 0 ? absl::StrCat("resnet", depth) : "unknown";
    record["depth"] = depth != 0 ? nlohmann::json(depth) : nlohmann::json();
    record["mixed"] = model_mixed;
    if (!saved_variant.empty()) record["saved_variant"] = saved_variant;
    record["quantized"] = quantize;
    record["torchscript"] = script || !script_file.empty();
    record["variant"] = variant;
    record["engine"] = quantize ? absl::GetFlag(FLAGS_engine) : "";
    record["batch_size"] = batch_size;
    record["dataset"] = DatasetKindName(*kind);
    record["test_samples"] = test_set.size();
    record["test_accuracy"] = accuracy;
    record["total_seconds"] = seconds;
    record["batch_seconds"] = ToJson(batches);
    record["throughput"] = timer.Throughput();
    record["throughput_unit"] = "images/s";
    record["model_path"] = script_file.empty() ? model_path : script_file;
    if (absl::Status s = AppendRecord(absl::GetFlag(FLAGS_results), record); !s.ok()) return ReportError(s.message());
  }
  return 0;
}

}  // namespace
}  // namespace dlspeed

int main(int argc, char** argv) { return dlspeed::RunMain(dlspeed::Main, argc, argv); }
