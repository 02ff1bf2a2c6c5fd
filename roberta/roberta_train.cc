// roberta_train: the study's main.py, fine-tuning a RoBERTa/XLM-R classifier
// with DistributedDataParallel (the common gradient reducer on c10d: NCCL on
// GPUs, Gloo on CPUs), fp32 or mixed precision, SGD (the study's) or AdamW
// with warmup. Per-epoch time, loss and dev accuracy go to perf-<model>.log
// (the study's lines) and to the results records; the best model is saved as a
// Hugging Face folder.
//
//   bazel run //roberta:roberta_train -- --model_name xlm-roberta-base --batch-size 32 --mixed
//   bazel run //roberta:roberta_train -- --model_name roberta-small --nproc 2   # 2 processes
//   torchrun --no-python --nproc-per-node 4 bazel-bin/roberta/roberta_train --model_name xlm-roberta-base
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <tuple>
#include <iostream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/Work.hpp>
#include <torch/cuda.h>
#include <torch/torch.h>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/amp.h"
#include "common/atomic_file.h"
#include "common/cli.h"
#include "common/device.h"
#include "common/distributed/gradient_reducer.h"
#include "common/distributed/launcher.h"
#include "common/distributed/process_group.h"
#include "common/distributed/rank_env.h"
#include "common/optim/optimizer_kernels.h"
#include "common/results.h"
#include "common/run_main.h"
#include "common/step_trace.h"
#include "common/stop_signal.h"
#include "common/training_stats.h"
#include "roberta/roberta.h"
#include "roberta/roberta_checkpoint.h"
#include "roberta/roberta_trainer.h"
#include "roberta/text_data.h"

ABSL_FLAG(std::string, model_name, "roberta-small",
          "a named config (roberta-small, roberta-base, roberta-large, xlm-roberta-base, xlm-roberta-large: random "
          "initialisation) or a Hugging Face checkpoint folder (config.json + model.safetensors)");
ABSL_FLAG(int64_t, batch_size, 32, "sequences per process and step (the study: 16, 32, 64); also --batch-size");
ABSL_FLAG(bool, mixed, false, "mixed precision (fp16 with a GradScaler on CUDA, bf16 on the CPU; see --precision)");
ABSL_FLAG(std::string, precision, "auto", "mixed-precision type with --mixed: auto, fp16 or bf16");
ABSL_FLAG(int32_t, nproc, 1, "processes to start, one per device (also --gpus); ignored under torchrun/srun/mpirun");
ABSL_FLAG(int32_t, gpus, 0, "same as --nproc");
ABSL_FLAG(int64_t, epochs, 3, "training epochs");
ABSL_FLAG(int64_t, max_steps, 0, "end each epoch after this many steps (0: whole epochs)");
ABSL_FLAG(int64_t, max_len, 128, "longest sequence in tokens (longer ones are truncated)");
ABSL_FLAG(bool, pad_to_max_len, false, "pad every batch to --max_len (fixed shapes) instead of its longest sequence");
ABSL_FLAG(int64_t, num_labels, 4, "classes (the study's task: 4)");
ABSL_FLAG(std::string, optimizer, "sgd", "sgd (the study's: lr 0.1, momentum 0.9) or adamw (with linear warmup and decay)");
ABSL_FLAG(double, lr, 0, "learning rate (0: 0.1 for sgd, 2e-5 for adamw)");
ABSL_FLAG(double, weight_decay, -1, "weight decay (-1: 0 for sgd, 0.01 for adamw)");
ABSL_FLAG(double, warmup_ratio, 0.06, "adamw: fraction of the steps spent warming up");
ABSL_FLAG(std::string, train_data, "", "training data: the study's <prefix> (<prefix>_ids.txt, <prefix>_labels.txt) "
          "or a .tsv file (text<TAB>label, needs --tokenizer); empty: synthetic ids");
ABSL_FLAG(std::string, dev_data, "", "dev data, in the same forms as --train_data");
ABSL_FLAG(std::string, tokenizer, "", "SentencePiece model for .tsv data (e.g. a checkpoint's sentencepiece.bpe.model)");
ABSL_FLAG(int64_t, synthetic_size, 2048, "synthetic training sequences (dev: a quarter)");
ABSL_FLAG(int64_t, synthetic_min_len, 0,
          "shortest synthetic sequence (0: max_len/2); --synthetic_min_len=<max_len> makes every one full length");
ABSL_FLAG(std::string, device, "auto", "auto (one GPU per process if there are GPUs, else the CPU), cuda or cpu");
ABSL_FLAG(std::string, backend, "auto", "c10d backend: auto (nccl on GPUs, gloo on the CPU), nccl or gloo");
ABSL_FLAG(double, timeout_s, 300, "seconds allowed for the rendezvous and for each collective");
ABSL_FLAG(std::string, optimizer_kernels, "fused",
          "the optimizer's ATen kernels: fused (one pass per parameter; fp16 steps unscale and skip in the kernel, "
          "without a host sync) or foreach (multi-tensor kernels, as Python's default)");
ABSL_FLAG(bool, sync_each_step, false,
          "synchronise the device around every step: exact per-step times (step_seconds) on a GPU, a little slower");
ABSL_FLAG(int32_t, threads, 0, "CPU intra-op threads per process (0: default)");
ABSL_FLAG(uint64_t, seed, 0, "seed for weights, data order and synthetic data");
ABSL_FLAG(std::string, log, "", "the study's per-epoch log (default: perf-<model>.log; empty with --nolog_file)");
ABSL_FLAG(bool, log_file, true, "write the per-epoch log file");
ABSL_FLAG(std::string, results, "results.jsonl", "JSON Lines file rank 0 appends its record to (empty: none)");
ABSL_FLAG(std::string, save_dir, "models/roberta",
          "where rank 0 saves the model with the best dev accuracy (without a dev set: the last; empty: not saved)");
ABSL_FLAG(std::string, checkpoint, "models/roberta-train.ckpt",
          "training checkpoint rank 0 writes every --checkpoint_every steps and when stopped by SIGINT/SIGTERM; "
          "removed when the run completes (empty: none)");
ABSL_FLAG(int64_t, checkpoint_every, 0, "steps between checkpoints (0: only when stopped by a signal)");
ABSL_FLAG(bool, resume, false, "every rank continues from --checkpoint, if it exists (a shared file system)");
ABSL_FLAG(int64_t, test_kill_at_step, 0, "for resume tests: SIGKILL this process after this many steps");
ABSL_FLAG(double, test_rank0_pause_s, 0, "for tests: rank 0 sleeps this long after each epoch's evaluation");

namespace dlspeed {
namespace {

constexpr char kUsage[] =
    "fine-tunes a RoBERTa/XLM-R classifier, one process per device (the study's main.py).\n"
    "usage: roberta_train [--model_name NAME|DIR] [--batch-size 32] [--mixed] [--nproc N] [--optimizer sgd|adamw]\n"
    "                     [--train_data PREFIX|FILE.tsv --dev_data ...] [--epochs 3] ...";

// The study's flags have hyphens (--batch-size); Abseil's names cannot.
std::vector<char*> NormaliseFlagNames(int argc, char** argv, std::vector<std::string>* storage) {
  storage->assign(argv, argv + argc);
  for (std::string& arg : *storage) {
    if (arg.rfind("--", 0) != 0 || arg == "--") continue;
    const size_t end = std::min(arg.find('='), arg.size());
    std::replace(arg.begin() + 2, arg.begin() + static_cast<std::ptrdiff_t>(end), '-', '_');
  }
  std::vector<char*> args;
  for (std::string& arg : *storage) args.push_back(arg.data());
  return args;
}

// The device this host's processes train on: a GPU each when there are
// enough, else the CPU. A --device value that is not a device is a usage error.
absl::StatusOr<bool> UseGpus(int processes_here) {
  const std::string device_flag = absl::GetFlag(FLAGS_device);
  if (device_flag != "auto" && device_flag != "cuda" && device_flag != "cpu") {
    ExitWithUsageError(absl::StrCat("--device must be auto, cuda or cpu, not '", device_flag, "'"));
  }
  const int gpus = torch::cuda::is_available() ? static_cast<int>(torch::cuda::device_count()) : 0;
  if (device_flag == "cuda" && gpus == 0) {
    return absl::FailedPreconditionError("--device=cuda: this host has no GPU (use --device=cpu)");
  }
  const bool on_gpu = device_flag != "cpu" && gpus > 0;
  if (on_gpu && processes_here > gpus) {
    return absl::FailedPreconditionError(
        absl::StrCat(processes_here, " processes on this host need one GPU each, but it has ", gpus));
  }
  return on_gpu;
}

// The flags whose values alone can be wrong, checked by the launcher before
// it starts any process (one line, not one per rank) and again by each
// process (started by torchrun or SLURM). Exits with a usage line. The
// --results file is checked where the record is written (`check_results`):
// rank 0 and the launcher beside it, not ranks perhaps on other machines.
void CheckFlagsOrExit(const c10::Device& device, bool check_results) {
  if (absl::StatusOr<Precision> p = ParseMixedPrecision(absl::GetFlag(FLAGS_precision), device); !p.ok()) {
    ExitWithUsageError(p.status().message());
  }
  if (absl::StatusOr<StepTrace> trace = StepTraceFromFlags(device); !trace.ok()) {
    ExitWithUsageError(trace.status().message());
  }
  if (absl::StatusOr<RobertaOptimizer> o = ParseRobertaOptimizer(absl::GetFlag(FLAGS_optimizer)); !o.ok()) {
    ExitWithUsageError(o.status().message());
  }
  if (absl::StatusOr<OptimizerKernels> k =
          ParseOptimizerKernels("optimizer_kernels", absl::GetFlag(FLAGS_optimizer_kernels));
      !k.ok()) {
    ExitWithUsageError(k.status().message());
  }
  if (absl::Status s = CheckBackendName(absl::GetFlag(FLAGS_backend)); !s.ok()) ExitWithUsageError(s.message());
  const int64_t max_len = absl::GetFlag(FLAGS_max_len);
  if (absl::GetFlag(FLAGS_batch_size) < 1 || absl::GetFlag(FLAGS_epochs) < 1 || max_len < 3 ||
      absl::GetFlag(FLAGS_num_labels) < 1) {
    ExitWithUsageError("--batch_size, --epochs and --num_labels must be at least 1, --max_len at least 3");
  }
  const int64_t synthetic_min_len = absl::GetFlag(FLAGS_synthetic_min_len);
  if (synthetic_min_len != 0 && (synthetic_min_len < 2 || synthetic_min_len > max_len)) {
    ExitWithUsageError(absl::StrCat("--synthetic_min_len must be 0 or between 2 and --max_len (", max_len, "), not ",
                                    synthetic_min_len));
  }
  if (absl::GetFlag(FLAGS_threads) < 0 || absl::GetFlag(FLAGS_max_steps) < 0) {
    ExitWithUsageError("--threads and --max_steps must be 0 or more");
  }
  if (check_results) {
    if (absl::Status s = CheckCanAppend("results", absl::GetFlag(FLAGS_results)); !s.ok()) {
      ExitWithUsageError(s.message());
    }
  }
}

int Train(const RankEnv& env, bool distributed) {
  const std::string who = absl::StrCat("rank ", env.rank);
  absl::StatusOr<bool> use_gpus = UseGpus(/*processes_here=*/1);
  if (!use_gpus.ok()) return ReportError(use_gpus.status().message());
  const bool on_gpu = *use_gpus;
  absl::StatusOr<c10::Device> rank_device = RankDevice(env, on_gpu);
  if (!rank_device.ok()) return ReportError(absl::StrCat(who, ": ", rank_device.status().message()));
  const c10::Device device = *rank_device;
  CheckFlagsOrExit(device, /*check_results=*/env.rank == 0);
  if (on_gpu) c10::impl::getDeviceGuardImpl(c10::kCUDA)->setDevice(device);
  if (absl::GetFlag(FLAGS_threads) > 0) at::set_num_threads(absl::GetFlag(FLAGS_threads));
  // SIGINT/SIGTERM stop every rank at the same step, after a checkpoint.
  InstallStopSignalHandlers();

  const bool mixed = absl::GetFlag(FLAGS_mixed);
  const Precision precision = mixed ? *ParseMixedPrecision(absl::GetFlag(FLAGS_precision), device) : Precision::kFp32;
  absl::StatusOr<StepTrace> trace = StepTraceFromFlags(device);
  const absl::StatusOr<RobertaOptimizer> optimizer = ParseRobertaOptimizer(absl::GetFlag(FLAGS_optimizer));
  const absl::StatusOr<OptimizerKernels> optimizer_kernels =
      ParseOptimizerKernels("optimizer_kernels", absl::GetFlag(FLAGS_optimizer_kernels));
  const int64_t batch_size = absl::GetFlag(FLAGS_batch_size);
  const int64_t max_len = absl::GetFlag(FLAGS_max_len);
  const int64_t epochs = absl::GetFlag(FLAGS_epochs);
  const int64_t synthetic_min_len = absl::GetFlag(FLAGS_synthetic_min_len);

  // The model: a named config (random weights) or a checkpoint folder.
  const std::string model_name = absl::GetFlag(FLAGS_model_name);
  torch::manual_seed(absl::GetFlag(FLAGS_seed));
  RobertaClassifier model{nullptr};
  std::string model_origin;
  absl::StatusOr<RobertaConfig> named = NamedRobertaConfig(model_name);
  if (named.ok()) {
    named->num_labels = absl::GetFlag(FLAGS_num_labels);
    model = RobertaClassifier(*named);
    model_origin = absl::StrCat("random initialisation (", model_name, " has no checkpoint here)");
  } else {
    absl::StatusOr<LoadedRoberta> loaded = LoadRobertaFolder(model_name, absl::GetFlag(FLAGS_num_labels));
    if (!loaded.ok()) {
      return ReportError(loaded.status().code() == absl::StatusCode::kNotFound
                             ? absl::StrCat(named.status().message(), "; ", loaded.status().message())
                             : std::string(loaded.status().message()));
    }
    model = loaded->model;
    model_origin = loaded->summary;
  }
  const RobertaConfig config = model->config();

  // Data.
  std::optional<SentencePieceTokenizer> tokenizer;
  if (!absl::GetFlag(FLAGS_tokenizer).empty()) {
    absl::StatusOr<SentencePieceTokenizer> loaded = SentencePieceTokenizer::Load(absl::GetFlag(FLAGS_tokenizer));
    if (!loaded.ok()) return ReportError(loaded.status().message());
    tokenizer = std::move(*loaded);
  }
  TextDataset train, dev;
  std::string data_origin;
  // Every rank reads the same files: rank 0 alone says what is wrong with
  // them, the others fail quietly, so that a bad file is one line.
  auto report_data_error = [&env](const absl::Status& status) {
    return env.rank == 0 ? ReportError(status.message()) : 1;
  };
  if (absl::GetFlag(FLAGS_train_data).empty()) {
    const int64_t size = absl::GetFlag(FLAGS_synthetic_size);
    const int64_t min_len = synthetic_min_len > 0 ? synthetic_min_len : max_len / 2;
    train = SyntheticText(size, min_len, max_len, config.vocab_size, config.num_labels, absl::GetFlag(FLAGS_seed));
    dev = SyntheticText(std::max<int64_t>(1, size / 4), min_len, max_len, config.vocab_size, config.num_labels,
                        absl::GetFlag(FLAGS_seed) + 1);
    data_origin = absl::StrCat("synthetic ids (no --train_data): ", train.size(), " train / ", dev.size(),
                               " dev, ", min_len, " to ", max_len, " tokens");
  } else {
    const SentencePieceTokenizer* spm = tokenizer ? &*tokenizer : nullptr;
    const std::string train_source = absl::GetFlag(FLAGS_train_data);
    const std::string dev_source = absl::GetFlag(FLAGS_dev_data);
    absl::StatusOr<TextDataset> loaded = LoadTextData(train_source, spm, max_len);
    if (!loaded.ok()) return report_data_error(loaded.status());
    train = std::move(*loaded);
    if (train.size() == 0) {
      return report_data_error(absl::InvalidArgumentError(absl::StrCat(train_source, " has no training sequences")));
    }
    if (absl::Status s = CheckTextDataFitsModel(train, train_source, config.num_labels, config.vocab_size); !s.ok()) {
      return report_data_error(s);
    }
    if (!dev_source.empty()) {
      absl::StatusOr<TextDataset> loaded_dev = LoadTextData(dev_source, spm, max_len);
      if (!loaded_dev.ok()) return report_data_error(loaded_dev.status());
      dev = std::move(*loaded_dev);
      if (dev.size() == 0) {
        return report_data_error(absl::InvalidArgumentError(absl::StrCat(dev_source, " has no dev sequences")));
      }
      if (absl::Status s = CheckTextDataFitsModel(dev, dev_source, config.num_labels, config.vocab_size); !s.ok()) {
        return report_data_error(s);
      }
    }
    data_origin = absl::StrCat(train_source, ": ", train.size(), " train / ", dev.size(), " dev");
  }

  // Batches truncate to --max_len; the model's positions must cover what is left.
  const int64_t longest = std::min(max_len, std::max(LongestSequence(train), LongestSequence(dev)));
  if (longest > MaxSequenceLength(config)) {
    return report_data_error(absl::InvalidArgumentError(absl::StrCat(
        "sequences of ", longest, " tokens (--max_len ", max_len, ") are longer than the model's ",
        MaxSequenceLength(config), " positions (max_position_embeddings ", config.max_position_embeddings, ")")));
  }

  // Process group and gradient reducer when there are several processes.
  std::unique_ptr<ProcessGroup> group;
  std::string backend_name = "none";
  if (distributed) {
    absl::StatusOr<std::string> chosen = ChooseBackend(absl::GetFlag(FLAGS_backend), on_gpu);
    if (!chosen.ok()) return ReportError(absl::StrCat(who, ": ", chosen.status().message()));
    backend_name = *chosen;
    ProcessGroupOptions options;
    options.backend = backend_name;
    options.timeout = std::chrono::milliseconds(static_cast<int64_t>(absl::GetFlag(FLAGS_timeout_s) * 1000));
    options.device_index = device.is_cuda() ? device.index() : 0;
    absl::StatusOr<std::unique_ptr<ProcessGroup>> created = ProcessGroup::Create(env, options);
    if (!created.ok()) return ReportError(created.status().message());
    group = std::move(*created);
  }
  const bool lead = env.rank == 0;

  TextBatchOptions batch_options;
  batch_options.batch_size = batch_size;
  batch_options.max_len = max_len;
  batch_options.pad_id = config.pad_token_id;
  batch_options.pad_to_max_len = absl::GetFlag(FLAGS_pad_to_max_len);
  batch_options.seed = absl::GetFlag(FLAGS_seed);
  batch_options.rank = env.rank;
  batch_options.world_size = env.world_size;
  if (absl::Status s = CheckTextBatchOptions(train, batch_options); !s.ok()) ExitWithUsageError(s.message());
  TextBatcher batcher(train, batch_options);
  int64_t steps_per_epoch = batcher.batches_per_epoch();
  if (absl::GetFlag(FLAGS_max_steps) > 0) steps_per_epoch = std::min(steps_per_epoch, absl::GetFlag(FLAGS_max_steps));

  RobertaTrainOptions options;
  options.precision = precision;
  options.optimizer = *optimizer;
  const bool adamw = *optimizer == RobertaOptimizer::kAdamW;
  options.lr = absl::GetFlag(FLAGS_lr) > 0 ? absl::GetFlag(FLAGS_lr) : (adamw ? 2e-5 : 0.1);
  options.weight_decay = absl::GetFlag(FLAGS_weight_decay) >= 0 ? absl::GetFlag(FLAGS_weight_decay) : (adamw ? 0.01 : 0.0);
  options.total_steps = adamw ? epochs * steps_per_epoch : 0;
  options.warmup_steps = static_cast<int64_t>(absl::GetFlag(FLAGS_warmup_ratio) * static_cast<double>(options.total_steps));
  options.max_steps_per_epoch = absl::GetFlag(FLAGS_max_steps);
  options.sync_each_step = absl::GetFlag(FLAGS_sync_each_step);
  options.optimizer_kernels = *optimizer_kernels;
  options.device = device;
  std::unique_ptr<GradientReducer> reducer;
  if (group) options.after_backward = [&reducer] { reducer->FinishBackward(); };
  RobertaTrainer trainer(model, options);

  const std::string log_path = absl::GetFlag(FLAGS_log).empty() ? absl::StrCat("perf-", model_name.substr(model_name.find_last_of('/') + 1), ".log")
                                                                 : absl::GetFlag(FLAGS_log);
  if (lead) {
    const nlohmann::json runtime = DescribeRuntime(device);
    std::cout << absl::StrFormat(
        "roberta_train: in effect: model=%s (%d layers, hidden %d, %d labels; %s), %d process(es) (%s) on %s (%s), "
        "backend=%s, precision=%s, batch %d per process (global %d), max_len=%d, optimizer=%s lr=%g weight_decay=%g "
        "warmup=%d steps, epochs=%d, libtorch=%s git=%s\nroberta_train: data: %s\n",
        model_name, config.num_hidden_layers, config.hidden_size, config.num_labels, model_origin, env.world_size,
        distributed ? env.launcher : "single", on_gpu ? "GPUs" : "the CPU", runtime.value("device_name", "?"),
        backend_name, PrecisionName(precision), batch_size, batch_size * env.world_size, max_len,
        absl::GetFlag(FLAGS_optimizer), options.lr, options.weight_decay, options.warmup_steps, epochs,
        runtime.value("libtorch_version", "?"), runtime.value("git_revision", "?"), data_origin)
              << std::flush;
  }

  std::vector<double> epoch_seconds, dev_accuracies, later_steps;
  double best = -1, later_seconds = 0, last_loss = 0;
  double timed_epoch_seconds = 0;  // the timed epochs, each as a whole epoch (later_seconds: as run)
  int64_t later_samples = 0, skipped = 0, measured_skipped = 0;
  std::vector<int64_t> timed_epochs;  // 1-based: the epochs the averages cover
  double checkpoint_seconds = 0;      // checkpoint writes, left out of the epochs' times
  nlohmann::json resumed_from;        // null, or where a resumed run started
  CudaAllocatorCounts allocator;  // over the later epochs' training, evaluation left out
  std::string saved;
  try {
    if (group) {
      BroadcastFromRankZero(trainer.model()->parameters(), group->backend());
      reducer = std::make_unique<GradientReducer>(trainer.model()->parameters(), group->backend_ptr());
    }
    const std::string checkpoint = absl::GetFlag(FLAGS_checkpoint);
    // What a checkpoint's step count means: a resume under other settings would skip other batches.
    const std::string run_settings = absl::StrCat(
        "data=", data_origin, " batch_size=", batch_size, " max_len=", max_len, " max_steps=",
        absl::GetFlag(FLAGS_max_steps), " seed=", absl::GetFlag(FLAGS_seed), " epochs=", epochs,
        " precision=", PrecisionName(precision), " processes=", env.world_size);
    int64_t start_epoch = 0, start_step = 0;
    bool resumed = false, unreadable = false;
    if (absl::GetFlag(FLAGS_resume) && !checkpoint.empty() && std::filesystem::exists(checkpoint)) {
      absl::StatusOr<std::pair<int64_t, int64_t>> at = trainer.LoadCheckpoint(checkpoint, run_settings);
      if (at.ok()) {
        std::tie(start_epoch, start_step) = *at;
        resumed = true;
      } else {
        std::cerr << "roberta_train: " << who << ": " << at.status().message() << std::endl;
        if (!group) std::_Exit(1);
        unreadable = true;  // the exit waits for the check below, which the other ranks are in
      }
    }
    if (group && absl::GetFlag(FLAGS_resume)) {
      if (absl::Status s = CheckSameResumePoint(group->backend(), device, checkpoint, resumed, unreadable,
                                                start_epoch, start_step);
          !s.ok()) {
        if (lead && !unreadable) std::cerr << "roberta_train: " << s.message() << std::endl;
        std::_Exit(1);
      }
    }
    if (lead && resumed) {
      std::cout << "Resuming from " << checkpoint << " at epoch " << start_epoch + 1 << ", step " << start_step << std::endl;
    }
    const int64_t every = absl::GetFlag(FLAGS_checkpoint_every);
    int64_t steps_this_run = 0;
    StopAgreement stop(group.get(), device);
    // Returns the seconds of a checkpoint write, which the epoch's time leaves out.
    auto after_step = [&](int64_t epoch, int64_t steps_done) -> double {
      ++steps_this_run;
      if (absl::GetFlag(FLAGS_test_kill_at_step) == steps_this_run) raise(SIGKILL);
      const int signal = stop.Check();
      double untimed = 0;
      if (lead && !checkpoint.empty() && (signal != 0 || (every > 0 && steps_this_run % every == 0))) {
        untimed = UntimedSeconds(device, [&] {
          if (absl::Status s = trainer.SaveCheckpoint(checkpoint, epoch, steps_done, run_settings); !s.ok()) {
            std::cerr << "roberta_train: " << s.message() << std::endl;
            std::_Exit(1);
          }
        });
      }
      if (signal == 0) return untimed;
      if (group) group->backend().barrier()->wait();
      if (lead) {
        std::cerr << "roberta_train: stopped by signal " << signal << " at epoch " << epoch + 1 << ", step " << steps_done
                  << (checkpoint.empty() ? "" : absl::StrCat("; checkpoint saved to ", checkpoint, " (continue with --resume)"))
                  << std::endl;
      }
      std::_Exit(128 + signal);
    };
    if (start_epoch > 0 || start_step > 0) resumed_from = {{"epoch", start_epoch + 1}, {"steps_done", start_step}};
    const EpochPlan plan = PlanEpochs(epochs, steps_per_epoch, start_epoch, start_step);
    for (int64_t epoch = plan.first_epoch; epoch < epochs; ++epoch) {
      Progress progress(absl::StrCat(model_name, " epoch ", epoch + 1, "/", epochs), steps_per_epoch,
                        lead ? stderr : nullptr);
      const CudaAllocatorCounts allocator_before = ReadCudaAllocatorCounts(device);
      double untimed = 0;  // checkpoint writes in this epoch
      EpochStats stats = trainer.TrainEpoch(
          batcher, epoch,
          [&](int64_t step, int64_t) {
            if (lead) progress.Update(step);
            untimed += after_step(epoch, step);
            if (lead) {  // rank 0's steps
              if (absl::Status s = trace->AfterStep(); !s.ok()) std::cerr << s.message() << std::endl;
            }
          },
          epoch == plan.first_epoch ? plan.first_step : 0);
      progress.Finish();
      stats.seconds = std::max(0.0, stats.seconds - untimed);
      checkpoint_seconds += untimed;
      epoch_seconds.push_back(stats.seconds);
      last_loss = stats.mean_loss;
      skipped += stats.skipped_steps;
      if (plan.Timed(epoch)) {
        timed_epochs.push_back(epoch + 1);
        later_seconds += stats.seconds;
        timed_epoch_seconds += plan.WholeEpochSeconds(epoch, stats.seconds);
        later_samples += stats.samples * env.world_size;
        later_steps.insert(later_steps.end(), stats.step_times.begin(), stats.step_times.end());
        measured_skipped += stats.skipped_steps;
        allocator += ReadCudaAllocatorCounts(device) - allocator_before;
      }
      if (lead) {
        const double accuracy = dev.size() > 0 ? trainer.Evaluate(dev, 2 * batch_size, max_len) : 0.0;
        dev_accuracies.push_back(accuracy);
        const std::string line = absl::StrCat(
            absl::StrFormat("Epoch %d | time %.2f s | train loss %.4f | train accuracy %.4f | ", epoch + 1,
                            stats.seconds, stats.mean_loss, stats.train_accuracy),
            dev.size() > 0 ? absl::StrFormat("dev accuracy %.4f", accuracy) : std::string("no dev set"));
        std::cout << line << "\n" << std::flush;
        if (absl::GetFlag(FLAGS_log_file)) {
          if (absl::Status s = AppendLineAtomically(log_path, line); !s.ok()) return ReportError(s.message());
        }
        if (dev.size() == 0 || accuracy > best) {  // without a dev set: the last epoch's model
          best = accuracy;
          if (!absl::GetFlag(FLAGS_save_dir).empty()) {
            saved = absl::GetFlag(FLAGS_save_dir);
            if (absl::Status s = SaveRobertaFolder(*trainer.model(), saved); !s.ok()) return ReportError(s.message());
          }
        }
        std::this_thread::sleep_for(std::chrono::duration<double>(absl::GetFlag(FLAGS_test_rank0_pause_s)));
      }
      // Rank 0 evaluates and saves alone. The others wait for it here, for as
      // long as it takes, rather than in their next collective, whose timeout
      // that work may outlast.
      if (group) {
        if (absl::Status s = group->AwaitRankZero(absl::StrCat("epoch-", epoch + 1)); !s.ok()) {
          throw std::runtime_error(std::string(s.message()));
        }
      }
    }
    if (group) group->backend().barrier()->wait();
    if (lead && !checkpoint.empty()) std::filesystem::remove(checkpoint);  // the run is complete
  } catch (const std::exception& error) {
    const std::string peers = group ? group->DescribeFailedPeers() : "";
    std::cerr << absl::StrCat("roberta_train: ", who, ": training stopped: ", ShortCollectiveError(error.what()),
                              peers.empty() ? "" : "; ", peers, "\n")
              << std::flush;
    std::_Exit(1);
  }
  reducer.reset();
  if (!lead) return 0;

  const double average = timed_epochs.empty() ? 0 : timed_epoch_seconds / static_cast<double>(timed_epochs.size());
  std::cout << "Average epoch time: " << average << " s, " << (later_seconds > 0 ? later_samples / later_seconds : 0)
            << " samples/s\n";
  if (!saved.empty()) std::cout << "Saved the best model (dev accuracy " << best << ") to " << saved << "\n";
  if (!absl::GetFlag(FLAGS_results).empty()) {
    nlohmann::json record = NewRecord("roberta_train", device);
    record["model"] = named.ok() ? model_name : RobertaConfigName(config);
    record["model_source"] = model_name;
    record["dataset"] = absl::GetFlag(FLAGS_train_data).empty() ? "synthetic" : absl::GetFlag(FLAGS_train_data);
    record["layers"] = config.num_hidden_layers;
    record["hidden_size"] = config.hidden_size;
    record["devices"] = env.world_size;
    record["backend"] = backend_name;
    record["precision"] = PrecisionName(precision);
    record["mixed"] = mixed;
    record["batch_size"] = batch_size;
    record["global_batch_size"] = batch_size * env.world_size;
    record["max_len"] = max_len;
    record["pad_to_max_len"] = batch_options.pad_to_max_len;
    record["optimizer"] = absl::GetFlag(FLAGS_optimizer);
    record["optimizer_kernels"] = OptimizerKernelsName(options.optimizer_kernels);
    record["lr"] = options.lr;
    record["epochs"] = epochs;
    record["max_steps"] = absl::GetFlag(FLAGS_max_steps);
    record["train_samples"] = train.size();
    record["dev_samples"] = dev.size();
    record["synthetic"] = absl::GetFlag(FLAGS_train_data).empty();
    record["epoch_seconds"] = epoch_seconds;
    record["timed_epochs"] = timed_epochs;
    record["avg_epoch_seconds"] = average;
    record["checkpoint_seconds"] = checkpoint_seconds;
    record["resumed_from"] = resumed_from;
    record["step_seconds"] = ToJson(Summarize(later_steps));
    record["sync_each_step"] = options.sync_each_step;
    record["throughput"] = later_seconds > 0 ? later_samples / later_seconds : 0;
    record["throughput_unit"] = "samples/s";
    record["final_train_loss"] = last_loss;
    record["skipped_steps"] = skipped;
    record["measured_skipped_steps"] = measured_skipped;
    if (device.is_cuda()) record["cuda_allocator"] = ToJson(allocator);
    record["dev_accuracy"] = dev_accuracies;
    record["best_dev_accuracy"] = best;
    record["model_path"] = saved;
    if (absl::Status s = AppendRecord(absl::GetFlag(FLAGS_results), record); !s.ok()) return ReportError(s.message());
    std::cout << "Record appended to " << absl::GetFlag(FLAGS_results) << "\n";
  }
  if (lead) {
    if (absl::Status s = trace->Finish(); !s.ok()) std::cerr << "roberta_train: " << s.message() << std::endl;
  }
  return 0;
}

int Main(int argc, char** argv) {
  std::vector<std::string> storage;
  std::vector<char*> args = NormaliseFlagNames(argc, argv, &storage);
  const std::vector<std::string> positional = ParseCommandLineOrExit(static_cast<int>(args.size()), args.data(), kUsage);
  if (!positional.empty()) ExitWithUsageError(absl::StrCat("unexpected argument '", positional[0], "'"));
  const int nproc = absl::GetFlag(FLAGS_gpus) > 0 ? absl::GetFlag(FLAGS_gpus) : absl::GetFlag(FLAGS_nproc);
  if (nproc < 1 || nproc > 64) ExitWithUsageError("--nproc must be between 1 and 64");
  if (const double t = absl::GetFlag(FLAGS_timeout_s); !(t > 0 && t <= 1e6)) {
    ExitWithUsageError("--timeout_s must be above 0 and at most 1000000 (11.6 days)");
  }
  absl::StatusOr<std::optional<RankEnv>> env = RankEnvFromEnvironment(getenv);
  if (!env.ok()) return ReportError(env.status().message());
  if (env->has_value()) return Train(**env, /*distributed=*/(*env)->world_size > 1);
  if (nproc == 1) return Train(RankEnv(), /*distributed=*/false);
  // Checked before any process starts: a mistake is one line, not one per rank.
  absl::StatusOr<bool> use_gpus = UseGpus(nproc);
  if (!use_gpus.ok()) return ReportError(use_gpus.status().message());
  CheckFlagsOrExit(*use_gpus ? c10::Device(c10::kCUDA, 0) : c10::Device(c10::kCPU), /*check_results=*/true);
  if (absl::StatusOr<std::string> b = ChooseBackend(absl::GetFlag(FLAGS_backend), *use_gpus); !b.ok()) {
    return ReportError(b.status().message());
  }
  LaunchOptions launch;
  launch.nproc = nproc;
  launch.name = "roberta_train";
  launch.shutdown_timeout = std::chrono::milliseconds(static_cast<int64_t>(absl::GetFlag(FLAGS_timeout_s) * 1000));
  return LaunchLocalWorkers(static_cast<int>(args.size()), args.data(), launch);
}

}  // namespace
}  // namespace dlspeed

int main(int argc, char** argv) { return dlspeed::RunMain(dlspeed::Main, argc, argv); }
