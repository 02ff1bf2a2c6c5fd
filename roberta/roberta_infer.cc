// roberta_infer: the study's inference.py, dev-set accuracy and time of a
// RoBERTa/XLM-R classifier on the CPU or a GPU, eager, as frozen TorchScript
// built in C++ (--script), or with every Linear layer in dynamic int8
// (--quantize, CPU). One line per run goes to inference.log and a record to
// the results file.
//
//   bazel run //roberta:roberta_infer -- --model_path models/roberta --quantize
//   bazel run //roberta:roberta_infer -- --model_name xlm-roberta-base --script --device cuda --mixed
#include <algorithm>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <torch/csrc/jit/api/module.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/amp.h"
#include "common/atomic_file.h"
#include "common/cli.h"
#include "common/device.h"
#include "common/results.h"
#include "common/run_main.h"
#include "common/timing.h"
#include "roberta/roberta.h"
#include "roberta/roberta_checkpoint.h"
#include "roberta/roberta_script.h"
#include "roberta/text_data.h"

ABSL_FLAG(std::string, model_path, "", "a Hugging Face checkpoint folder (config.json + model.safetensors), e.g. "
          "what roberta_train saved; empty: --model_name with random weights (for timing only)");
ABSL_FLAG(std::string, model_name, "roberta-small", "named config used when --model_path is empty");
ABSL_FLAG(bool, script, false, "run a frozen TorchScript module built in C++ from the model");
ABSL_FLAG(bool, quantize, false, "dynamic int8 quantization of every Linear layer (CPU only)");
ABSL_FLAG(std::string, device, "cpu", "cpu, cuda or auto");
ABSL_FLAG(bool, mixed, false, "fp16 autocast on a GPU (bf16 on the CPU)");
ABSL_FLAG(std::string, dev_data, "", "the study's <prefix> (_ids.txt/_labels.txt) or a .tsv with --tokenizer; "
          "empty: synthetic ids");
ABSL_FLAG(std::string, tokenizer, "", "SentencePiece model for .tsv data");
ABSL_FLAG(int64_t, synthetic_size, 512, "synthetic sequences when --dev_data is empty");
ABSL_FLAG(int64_t, batch_size, 32, "sequences per batch");
ABSL_FLAG(int64_t, max_len, 128, "longest sequence in tokens");
ABSL_FLAG(bool, pad_to_max_len, false, "pad every batch to --max_len (fixed shapes) instead of its longest sequence");
ABSL_FLAG(int64_t, warmup_batches, 3, "batches run before timing");
ABSL_FLAG(bool, compare_fp32, true, "with --quantize: also run the fp32 model (untimed) and report how often "
          "their predictions agree");
ABSL_FLAG(int32_t, threads, 0, "CPU intra-op threads (0: all cores)");
ABSL_FLAG(uint64_t, seed, 0, "seed for random weights and synthetic data");
ABSL_FLAG(std::string, log, "inference.log", "file the study's line is appended to (empty: none)");
ABSL_FLAG(std::string, results, "results.jsonl", "JSON Lines file to append the record to (empty: none)");

namespace dlspeed {
namespace {

constexpr char kUsage[] =
    "times a RoBERTa/XLM-R classifier on a dev set (the study's inference.py).\n"
    "usage: roberta_infer [--model_path DIR | --model_name NAME] [--script] [--quantize] [--device cpu|cuda] "
    "[--dev_data PREFIX|FILE.tsv] ...";

int Main(int argc, char** argv) {
  const std::vector<std::string> positional = ParseCommandLineOrExit(argc, argv, kUsage);
  if (!positional.empty()) ExitWithUsageError(absl::StrCat("unexpected argument '", positional[0], "'"));
  if (absl::Status s = CheckCanAppend("results", absl::GetFlag(FLAGS_results)); !s.ok()) ExitWithUsageError(s.message());
  absl::StatusOr<c10::Device> device = ResolveDevice(absl::GetFlag(FLAGS_device));
  if (!device.ok() && device.status().code() == absl::StatusCode::kInvalidArgument) {
    ExitWithUsageError(device.status().message());
  }
  if (!device.ok()) return ReportError(device.status().message());
  const bool script = absl::GetFlag(FLAGS_script), quantize = absl::GetFlag(FLAGS_quantize);
  if (quantize && device->is_cuda()) ExitWithUsageError("--quantize is for the CPU (dynamic int8 kernels); drop --device=cuda");
  const int64_t batch_size = absl::GetFlag(FLAGS_batch_size), max_len = absl::GetFlag(FLAGS_max_len);
  if (batch_size < 1 || max_len < 3 || absl::GetFlag(FLAGS_warmup_batches) < 0 || absl::GetFlag(FLAGS_threads) < 0) {
    ExitWithUsageError(
        "--batch_size must be at least 1, --max_len at least 3, --warmup_batches and --threads at least 0");
  }
  if (absl::GetFlag(FLAGS_dev_data).empty() && absl::GetFlag(FLAGS_synthetic_size) < 1) {
    ExitWithUsageError("--synthetic_size must be at least 1 without --dev_data");
  }
  if (absl::GetFlag(FLAGS_threads) > 0) at::set_num_threads(absl::GetFlag(FLAGS_threads));
  const Precision precision =
      absl::GetFlag(FLAGS_mixed) ? (device->is_cuda() ? Precision::kFp16 : Precision::kBf16) : Precision::kFp32;

  // The model, made the same way each time it is asked for (the fp32
  // reference of --quantize --compare_fp32 is a second copy).
  std::string origin;
  const std::string model_path = absl::GetFlag(FLAGS_model_path);
  auto make_model = [&]() -> absl::StatusOr<RobertaClassifier> {
    torch::manual_seed(absl::GetFlag(FLAGS_seed));
    if (model_path.empty()) {
      absl::StatusOr<RobertaConfig> config = NamedRobertaConfig(absl::GetFlag(FLAGS_model_name));
      if (!config.ok()) ExitWithUsageError(config.status().message());
      origin = absl::StrCat(absl::GetFlag(FLAGS_model_name), " with random weights (no --model_path): times only");
      return RobertaClassifier(*config);
    }
    absl::StatusOr<LoadedRoberta> loaded = LoadRobertaFolder(model_path);
    if (!loaded.ok()) return loaded.status();
    origin = loaded->summary;
    return loaded->model;
  };
  absl::StatusOr<RobertaClassifier> made = make_model();
  if (!made.ok()) return ReportError(made.status().message());
  RobertaClassifier model = *made;
  const RobertaConfig config = model->config();
  model->eval();

  TextDataset dev;
  if (absl::GetFlag(FLAGS_dev_data).empty()) {
    dev = SyntheticText(absl::GetFlag(FLAGS_synthetic_size), max_len / 2, max_len, config.vocab_size,
                        config.num_labels, absl::GetFlag(FLAGS_seed) + 1);
  } else {
    const std::string source = absl::GetFlag(FLAGS_dev_data);
    std::optional<SentencePieceTokenizer> tokenizer;
    if (IsTsvPath(source)) {
      if (absl::GetFlag(FLAGS_tokenizer).empty()) ExitWithUsageError(absl::StrCat(source, " is raw text: give --tokenizer"));
      absl::StatusOr<SentencePieceTokenizer> loaded = SentencePieceTokenizer::Load(absl::GetFlag(FLAGS_tokenizer));
      if (!loaded.ok()) return ReportError(loaded.status().message());
      tokenizer = std::move(*loaded);
    }
    absl::StatusOr<TextDataset> loaded = LoadTextData(source, tokenizer ? &*tokenizer : nullptr, max_len);
    if (!loaded.ok()) return ReportError(loaded.status().message());
    dev = std::move(*loaded);
    if (dev.size() == 0) return ReportError(absl::StrCat("the dev set ", source, " is empty"));
    if (absl::Status s = CheckTextDataFitsModel(dev, source, config.num_labels, config.vocab_size); !s.ok()) {
      return ReportError(s.message());
    }
  }

  // Batches truncate to --max_len; the model's positions must cover what is left.
  if (const int64_t longest = std::min(max_len, LongestSequence(dev)); longest > MaxSequenceLength(config)) {
    return ReportError(absl::StrCat("sequences of ", longest, " tokens (--max_len ", max_len,
                                    ") are longer than the model's ", MaxSequenceLength(config),
                                    " positions (max_position_embeddings ", config.max_position_embeddings, ")"));
  }

  model->to(*device);
  RobertaClassifier reference{nullptr};
  if (quantize && absl::GetFlag(FLAGS_compare_fp32)) {
    reference = *make_model();
    reference->eval();
  }
  std::optional<torch::jit::Module> scripted;
  if (quantize) QuantizeDynamicInt8(*model);
  if (script) {
    absl::StatusOr<torch::jit::Module> built = ScriptRoberta(*model);
    if (!built.ok()) return ReportError(built.status().message());
    scripted = std::move(*built);
  }
  const std::string variant =
      quantize ? (script ? "int8-dynamic-torchscript" : "int8-dynamic") : (script ? "torchscript-frozen" : "eager");

  TextBatchOptions options;
  options.batch_size = batch_size;
  options.max_len = max_len;
  options.pad_id = config.pad_token_id;
  options.shuffle = false;
  options.pad_to_max_len = absl::GetFlag(FLAGS_pad_to_max_len);
  if (absl::Status s = CheckTextBatchOptions(dev, options); !s.ok()) ExitWithUsageError(s.message());
  TextBatcher batcher(dev, options);

  c10::InferenceMode inference;
  std::optional<AutocastScope> autocast;  // for the timed passes
  autocast.emplace(*device, precision);
  auto run = [&](const TextBatch& batch) {
    const torch::Tensor ids = batch.input_ids.to(*device);
    // No mask for a batch without padding, in either form: attention may then
    // use its mask-free (fastest) kernels.
    const torch::Tensor mask = ModelMask(batch, *device);
    if (!scripted) return model->forward(ids, mask);
    return (mask.defined() ? scripted->forward({ids, mask}) : scripted->forward({ids})).toTensor();
  };
  batcher.StartEpoch(0);
  for (int64_t i = 0; i < absl::GetFlag(FLAGS_warmup_batches); ++i) {
    std::optional<TextBatch> batch = batcher.Next();
    if (!batch) break;
    run(*batch);
  }
  SynchronizeDevice(*device);
  batcher.StartEpoch(0);
  std::vector<double> batch_seconds;
  torch::Tensor correct = torch::zeros({}, torch::TensorOptions().dtype(torch::kLong).device(*device));
  Stopwatch total;
  while (std::optional<TextBatch> batch = batcher.Next()) {
    Stopwatch one;
    correct += run(*batch).argmax(1).eq(batch->labels.to(*device)).sum();
    SynchronizeDevice(*device);
    batch_seconds.push_back(one.Seconds());
  }
  const double seconds = total.Seconds();
  autocast.reset();
  double agreement = -1;
  if (!reference.is_empty()) {
    int64_t same = 0;
    batcher.StartEpoch(0);
    while (std::optional<TextBatch> batch = batcher.Next()) {
      const torch::Tensor ids = batch->input_ids.to(*device), mask = batch->attention_mask.to(*device);
      torch::Tensor predicted;
      {
        AutocastScope as_timed(*device, precision);  // the reference runs in fp32
        predicted = model->forward(ids, mask).argmax(1);
      }
      same += predicted.eq(reference->forward(ids, mask).argmax(1)).sum().item<int64_t>();
    }
    agreement = static_cast<double>(same) / static_cast<double>(dev.size());
  }
  const double accuracy = static_cast<double>(correct.item<int64_t>()) / static_cast<double>(dev.size());
  const Summary summary = Summarize(batch_seconds);
  const nlohmann::json runtime = DescribeRuntime(*device);

  std::cout << absl::StrFormat(
      "roberta_infer: %s; %s on %s (%s), precision=%s, threads=%d, libtorch=%s\n", origin, variant, device->str(),
      runtime.value("device_name", "?"), PrecisionName(precision), runtime.value("threads", 0),
      runtime.value("libtorch_version", "?"));
  const std::string line = absl::StrFormat(
      "model=%s script=%d quantize=%d device=%s batch=%d: accuracy %.4f on %d sequences, time %.3f s "
      "(%.2f ms a batch, median; %.0f sequences/s)",
      model_path.empty() ? absl::GetFlag(FLAGS_model_name) : model_path, script, quantize, device->str(), batch_size,
      accuracy, dev.size(), seconds, 1000 * summary.median, dev.size() / seconds);
  std::cout << line << "\n";
  if (agreement >= 0) std::cout << absl::StrFormat("int8 predictions agree with fp32 on %.2f %% of the sequences\n", 100 * agreement);
  if (!absl::GetFlag(FLAGS_log).empty()) {
    if (absl::Status s = AppendLineAtomically(absl::GetFlag(FLAGS_log), line); !s.ok()) return ReportError(s.message());
  }
  if (!absl::GetFlag(FLAGS_results).empty()) {
    nlohmann::json record = NewRecord("roberta_infer", *device);
    record["model"] = model_path.empty() ? absl::GetFlag(FLAGS_model_name) : RobertaConfigName(config);
    record["model_path"] = model_path;
    record["dataset"] = absl::GetFlag(FLAGS_dev_data).empty() ? "synthetic" : absl::GetFlag(FLAGS_dev_data);
    record["layers"] = config.num_hidden_layers;
    record["hidden_size"] = config.hidden_size;
    record["variant"] = variant;
    record["script"] = script;
    record["quantize"] = quantize;
    record["precision"] = PrecisionName(precision);
    record["batch_size"] = batch_size;
    record["max_len"] = max_len;
    record["pad_to_max_len"] = options.pad_to_max_len;
    record["samples"] = dev.size();
    record["synthetic"] = absl::GetFlag(FLAGS_dev_data).empty();
    record["accuracy"] = accuracy;
    if (agreement >= 0) record["agreement_with_fp32"] = agreement;
    record["total_seconds"] = seconds;
    record["batch_seconds"] = ToJson(summary);
    record["throughput"] = dev.size() / seconds;
    record["throughput_unit"] = "samples/s";
    if (absl::Status s = AppendRecord(absl::GetFlag(FLAGS_results), record); !s.ok()) return ReportError(s.message());
  }
  return 0;
}

}  // namespace
}  // namespace dlspeed

int main(int argc, char** argv) { return dlspeed::RunMain(dlspeed::Main, argc, argv); }
