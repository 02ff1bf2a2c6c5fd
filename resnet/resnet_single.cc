// resnet_single: the study's Resnet-1 on one device. For each depth it trains
// in fp32, then in mixed precision, and prints the study's lines (average
// epoch time over the epochs after the first, total time, test accuracy),
// saves models/Resnet-<d>[-mixed]-1gpu.pth (a torchvision state_dict) and
// appends one JSON record per run to the results file.
//
//   bazel run //resnet:resnet_single -- --depths=18 --epochs=2 --max_steps=40
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/amp.h"
#include "common/cli.h"
#include "common/data/dataset.h"
#include "common/data/loader.h"
#include "common/device.h"
#include "common/optim/optimizer_kernels.h"
#include "common/results.h"
#include "common/step_trace.h"
#include "common/stop_signal.h"
#include "common/timing.h"
#include "resnet/resnet.h"
#include "resnet/resnet_checkpoint.h"
#include "resnet/train.h"
#include "resnet/training_checkpoint.h"
#include "resnet/training_run.h"

ABSL_FLAG(std::string, depths, "18,34,50", "ResNet depths to train, in order (18, 34, 50)");
ABSL_FLAG(std::string, modes, "fp32,mixed", "runs per depth, in order: fp32 and/or mixed");
ABSL_FLAG(std::string, precision, "auto", "mixed-precision type: fp16, bf16, or auto (fp16 on CUDA, bf16 on the CPU)");
ABSL_FLAG(int64_t, epochs, 20, "training epochs per run (the study: 20)");
ABSL_FLAG(int64_t, batch_size, 512, "training batch size (the study: 512)");
ABSL_FLAG(int64_t, eval_batch_size, 128, "test batch size (the study: 128)");
ABSL_FLAG(std::string, dataset, "fashion-mnist", "cifar10, fashion-mnist (installed by tools/setup.sh) or synthetic");
ABSL_FLAG(std::string, data_dir, "", "data directory (default: the dataset's usual place)");
ABSL_FLAG(int64_t, train_limit, 0, "use only the first N training images (0: all)");
ABSL_FLAG(int64_t, test_limit, 0, "use only the first N test images (0: all)");
ABSL_FLAG(int64_t, synthetic_size, 50000, "training images of --dataset=synthetic (test: a fifth)");
ABSL_FLAG(int64_t, max_steps, 0, "end each epoch after this many steps (0: whole epochs)");
ABSL_FLAG(bool, channels_last, false, "channels_last memory format for the model and inputs");
ABSL_FLAG(bool, augment, true, "the study's random crop (padding 4) and horizontal flip");
ABSL_FLAG(std::string, device, "auto", "auto, cpu, cuda or cuda:N");
ABSL_FLAG(int32_t, threads, 0, "CPU intra-op threads (0: LibTorch's default)");
ABSL_FLAG(int32_t, workers, 2, "background threads preparing batches");
ABSL_FLAG(double, lr, 0.1, "SGD learning rate (the study: 0.1, momentum 0.9, weight decay 5e-4)");
ABSL_FLAG(uint64_t, seed, 0, "seed for weights, data order and augmentation");
ABSL_FLAG(bool, cudnn_benchmark, true, "let cuDNN pick the fastest convolution algorithms");
ABSL_FLAG(std::string, optimizer_kernels, "fused",
          "the optimizer's ATen kernels: fused (one pass per parameter; fp16 steps unscale and skip in the kernel, "
          "without a host sync) or foreach (multi-tensor kernels, as Python's default)");
ABSL_FLAG(bool, sync_each_step, false,
          "synchronise the device around every step: exact per-step times (step_seconds) on a GPU, a little slower");
ABSL_FLAG(bool, tf32, true, "allow TF32 in cuDNN convolutions and cuBLAS matmuls");
ABSL_FLAG(std::string, results, "results.jsonl", "JSON Lines file to append records to (empty: none)");
ABSL_FLAG(std::string, models_dir, "models", "where trained models are saved (empty: not saved)");
ABSL_FLAG(int64_t, checkpoint_every, 0, "save a training checkpoint every N steps to <models_dir>/Resnet-<d>[-mixed]-1gpu.ckpt "
          "(0: only when stopped by SIGINT/SIGTERM); removed when the run completes");
ABSL_FLAG(bool, resume, false, "continue each run from its checkpoint, if there is one");
ABSL_FLAG(int64_t, test_kill_at_step, 0, "for resume tests: SIGKILL this process after this many steps of a run");

namespace dlspeed {
namespace {

constexpr char kUsage[] =
    "trains ResNet-18/34/50 on one device in fp32, then mixed precision (the study's Resnet-1).\n"
    "usage: resnet_single [--depths=18,34,50] [--modes=fp32,mixed] [--epochs=20] [--batch_size=512]\n"
    "                     [--dataset=fashion-mnist|cifar10|synthetic] [--data_dir=DIR] [--precision=auto|fp16|bf16] ...";

struct RunResult {
  int depth;
  Precision precision;
  double average_epoch_seconds;
  double total_seconds;
  double throughput;
  double test_accuracy;
};

std::vector<int> ParseDepths(const std::string& text) {
  std::vector<int> depths;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    absl::StatusOr<int> depth = ParseIntChoice(part, {18, 34, 50}, "depth");
    if (!depth.ok()) ExitWithUsageError(depth.status().message());
    depths.push_back(*depth);
  }
  if (depths.empty()) ExitWithUsageError("--depths is empty (choose from 18, 34, 50)");
  return depths;
}

std::vector<bool> ParseModes(const std::string& text) {
  std::vector<bool> mixed;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    if (part == "fp32") {
      mixed.push_back(false);
    } else if (part == "mixed") {
      mixed.push_back(true);
    } else {
      ExitWithUsageError(absl::StrCat("unknown mode '", part, "' in --modes (choose fp32, mixed)"));
    }
  }
  if (mixed.empty()) ExitWithUsageError("--modes is empty (choose fp32, mixed)");
  return mixed;
}

std::string CheckpointPath(int depth, bool mixed) {
  return absl::StrCat(absl::GetFlag(FLAGS_models_dir), "/Resnet-", depth, mixed ? "-mixed" : "", "-1gpu.ckpt");
}

std::string ModelPath(int depth, bool mixed) {
  return absl::StrCat(absl::GetFlag(FLAGS_models_dir), "/Resnet-", depth, mixed ? "-mixed" : "", "-1gpu.pth");
}

int Main(int argc, char** argv) {
  std::vector<std::string> positional = ParseCommandLineOrExit(argc, argv, kUsage);
  if (!positional.empty()) ExitWithUsageError(absl::StrCat("unexpected argument '", positional[0], "'"));
  const std::vector<int> depths = ParseDepths(absl::GetFlag(FLAGS_depths));
  const std::vector<bool> modes = ParseModes(absl::GetFlag(FLAGS_modes));
  absl::StatusOr<DatasetKind> kind = ParseDatasetKind(absl::GetFlag(FLAGS_dataset));
  if (!kind.ok()) ExitWithUsageError(kind.status().message());
  const int64_t epochs = absl::GetFlag(FLAGS_epochs);
  const int64_t batch_size = absl::GetFlag(FLAGS_batch_size);
  if (epochs < 1) ExitWithUsageError("--epochs must be at least 1");
  if (!(absl::GetFlag(FLAGS_lr) > 0)) ExitWithUsageError("--lr must be positive");
  const absl::StatusOr<OptimizerKernels> optimizer_kernels =
      ParseOptimizerKernels("optimizer_kernels", absl::GetFlag(FLAGS_optimizer_kernels));
  if (!optimizer_kernels.ok()) ExitWithUsageError(optimizer_kernels.status().message());
  if (batch_size < 1 || absl::GetFlag(FLAGS_eval_batch_size) < 1) ExitWithUsageError("batch sizes must be at least 1");
  absl::StatusOr<c10::Device> device = ResolveDevice(absl::GetFlag(FLAGS_device));
  if (!device.ok()) return ReportError(device.status().message());
  absl::StatusOr<Precision> parsed_precision = ParseMixedPrecision(absl::GetFlag(FLAGS_precision), *device);
  if (!parsed_precision.ok()) ExitWithUsageError(parsed_precision.status().message());
  const Precision mixed_precision = *parsed_precision;
  if (absl::GetFlag(FLAGS_threads) > 0) at::set_num_threads(absl::GetFlag(FLAGS_threads));
  if (absl::GetFlag(FLAGS_checkpoint_every) < 0) ExitWithUsageError("--checkpoint_every must be 0 or more");
  absl::StatusOr<StepTrace> trace = StepTraceFromFlags(*device);  // counts the steps of the runs in order
  if (!trace.ok()) ExitWithUsageError(trace.status().message());
  // SIGINT/SIGTERM stop a run at the next step boundary, after a checkpoint.
  InstallStopSignalHandlers();
  BackendSettings backend;
  backend.cudnn_benchmark = absl::GetFlag(FLAGS_cudnn_benchmark);
  backend.allow_tf32 = absl::GetFlag(FLAGS_tf32);
  ApplyBackendSettings(backend);

  const std::string data_dir =
      absl::GetFlag(FLAGS_data_dir).empty() ? DefaultDataDir(*kind) : absl::GetFlag(FLAGS_data_dir);
  absl::StatusOr<ImageDataset> train = LoadImageDataset(*kind, data_dir, Split::kTrain, absl::GetFlag(FLAGS_synthetic_size));
  if (!train.ok()) return ReportError(train.status().message());
  absl::StatusOr<ImageDataset> test = LoadImageDataset(*kind, data_dir, Split::kTest, absl::GetFlag(FLAGS_synthetic_size));
  if (!test.ok()) return ReportError(test.status().message());
  const ImageDataset train_set = FirstSamples(*train, absl::GetFlag(FLAGS_train_limit));
  const ImageDataset test_set = FirstSamples(*test, absl::GetFlag(FLAGS_test_limit));

  const nlohmann::json runtime = DescribeRuntime(*device);
  std::cout << absl::StrFormat(
      "resnet_single: asked: depths=%s modes=%s precision=%s epochs=%d batch_size=%d dataset=%s device=%s "
      "channels_last=%d threads=%d max_steps=%d seed=%d\n",
      absl::GetFlag(FLAGS_depths), absl::GetFlag(FLAGS_modes), absl::GetFlag(FLAGS_precision), epochs, batch_size,
      DatasetKindName(*kind), absl::GetFlag(FLAGS_device), absl::GetFlag(FLAGS_channels_last),
      absl::GetFlag(FLAGS_threads), absl::GetFlag(FLAGS_max_steps), absl::GetFlag(FLAGS_seed));
  std::cout << absl::StrFormat(
      "resnet_single: in effect: device=%s (%s) mixed=%s threads=%d cudnn_benchmark=%s tf32=%s libtorch=%s git=%s "
      "data=%s: %d train / %d test images\n",
      runtime.value("device", "?"), runtime.value("device_name", "?"), PrecisionName(mixed_precision),
      runtime.value("threads", 0), runtime.value("cudnn_benchmark", false) ? "on" : "off",
      runtime.value("allow_tf32_cudnn", false) && runtime.value("allow_tf32_cublas", false) ? "on" : "off",
      runtime.value("libtorch_version", "?"),
      runtime.value("git_revision", "?"), data_dir.empty() ? DatasetKindName(*kind) : data_dir, train_set.size(),
      test_set.size());

  LoaderOptions loader_options;
  loader_options.batch_size = batch_size;
  loader_options.augment = absl::GetFlag(FLAGS_augment);
  loader_options.seed = absl::GetFlag(FLAGS_seed);
  loader_options.workers = absl::GetFlag(FLAGS_workers);
  loader_options.pin_memory = device->is_cuda();
  if (absl::Status s = CheckLoaderOptions(train_set, loader_options); !s.ok()) ExitWithUsageError(s.message());

  std::vector<RunResult> results;
  for (int depth : depths) {
    for (bool mixed : modes) {
      const Precision precision = mixed ? mixed_precision : Precision::kFp32;
      std::cout << (mixed ? "Mixed precision," : "Non-mixed,") << depth << std::endl;
      torch::manual_seed(static_cast<uint64_t>(absl::GetFlag(FLAGS_seed)));
      TrainOptions options;
      options.precision = precision;
      options.sgd.lr = absl::GetFlag(FLAGS_lr);
      options.channels_last = absl::GetFlag(FLAGS_channels_last);
      options.max_steps_per_epoch = absl::GetFlag(FLAGS_max_steps);
      options.sync_each_step = absl::GetFlag(FLAGS_sync_each_step);
      options.sgd.kernels = *optimizer_kernels;
      options.device = *device;
      ResNetTrainer trainer(*MakeResNet(depth, train_set.num_classes), options);
      BatchLoader loader(train_set, loader_options);

      RunSettings settings;
      settings.epochs = epochs;
      settings.max_steps = absl::GetFlag(FLAGS_max_steps);
      settings.label = absl::StrCat("ResNet-", depth, " ", PrecisionName(precision));
      settings.trace = &*trace;
      const std::string checkpoint = absl::GetFlag(FLAGS_models_dir).empty() ? "" : CheckpointPath(depth, mixed);
      if (absl::GetFlag(FLAGS_resume) && !checkpoint.empty() && std::filesystem::exists(checkpoint)) {
        absl::StatusOr<TrainingProgress> at = LoadTrainingCheckpoint(checkpoint, trainer);
        if (!at.ok()) return ReportError(at.status().message());
        settings.start_epoch = at->epoch;
        settings.start_step = at->steps_done;
        std::cout << "Resuming from " << checkpoint << " at epoch " << at->epoch + 1 << ", step " << at->steps_done
                  << std::endl;
      }
      const int64_t every = absl::GetFlag(FLAGS_checkpoint_every);
      int64_t steps_this_run = 0;
      settings.after_step = [&](int64_t epoch, int64_t steps_done) {
        ++steps_this_run;
        const int signal = PendingStopSignal();
        if (!checkpoint.empty() && (signal != 0 || (every > 0 && steps_this_run % every == 0))) {
          if (absl::Status s = SaveTrainingCheckpoint(checkpoint, trainer, {epoch, steps_done}); !s.ok()) {
            std::cerr << "resnet_single: " << s.message() << std::endl;
            std::_Exit(1);
          }
        }
        if (signal != 0) {
          std::cerr << "resnet_single: stopped by signal " << signal << " at epoch " << epoch + 1 << ", step "
                    << steps_done
                    << (checkpoint.empty() ? "; no checkpoint (--models_dir is empty)"
                                           : absl::StrCat("; checkpoint saved to ", checkpoint, " (continue with --resume)"))
                    << std::endl;
          std::_Exit(128 + signal);
        }
        if (absl::GetFlag(FLAGS_test_kill_at_step) == steps_this_run) raise(SIGKILL);
      };
      const RunTotals totals = TrainEpochs(trainer, loader, settings);
      if (!checkpoint.empty()) std::filesystem::remove(checkpoint);  // the run is complete
      const double accuracy = trainer.Evaluate(test_set, absl::GetFlag(FLAGS_eval_batch_size));
      std::cout << absl::StrFormat("Accuracy of the network on the %d test images: %d %%\n", test_set.size(),
                                   static_cast<int>(100 * accuracy))
                << std::flush;

      std::string saved;
      if (!absl::GetFlag(FLAGS_models_dir).empty()) {
        saved = ModelPath(depth, mixed);
        if (absl::Status s = SaveStateDict(*trainer.model(), saved); !s.ok()) return ReportError(s.message());
        std::cout << "Saved " << saved << "\n";
      }
      results.push_back(
          {depth, precision, totals.average_epoch_seconds, totals.total_seconds, totals.throughput, accuracy});

      if (!absl::GetFlag(FLAGS_results).empty()) {
        nlohmann::json record = NewRecord("resnet_single", *device);
        record["model"] = absl::StrCat("resnet", depth);
        record["depth"] = depth;
        record["devices"] = 1;
        record["precision"] = PrecisionName(precision);
        record["mixed"] = mixed;
        record["batch_size"] = batch_size;
        record["dataset"] = DatasetKindName(*kind);
        record["train_samples"] = train_set.size();
        record["test_samples"] = test_set.size();
        record["epochs"] = epochs;
        record["max_steps"] = absl::GetFlag(FLAGS_max_steps);
        record["channels_last"] = absl::GetFlag(FLAGS_channels_last);
        record["augment"] = absl::GetFlag(FLAGS_augment);
        AddRunFields(totals, &record);
        record["test_accuracy"] = accuracy;
        record["model_path"] = saved;
        if (absl::Status s = AppendRecord(absl::GetFlag(FLAGS_results), record); !s.ok()) return ReportError(s.message());
      }
    }
  }

  std::cout << "\n| model | precision | avg epoch (s) | total (s) | images/s | test accuracy | speed-up vs fp32 |\n"
            << "| --- | --- | --- | --- | --- | --- | --- |\n";
  for (const RunResult& r : results) {
    std::string speedup = "-";
    for (const RunResult& base : results) {
      if (base.depth == r.depth && base.precision == Precision::kFp32 && r.average_epoch_seconds > 0) {
        speedup = absl::StrFormat("%.2fx", base.average_epoch_seconds / r.average_epoch_seconds);
      }
    }
    std::cout << absl::StrFormat("| ResNet-%d | %s | %.2f | %.2f | %.0f | %.2f %% | %s |\n", r.depth,
                                 PrecisionName(r.precision), r.average_epoch_seconds, r.total_seconds, r.throughput,
                                 100 * r.test_accuracy, speedup);
  }
  if (!absl::GetFlag(FLAGS_results).empty()) std::cout << "Records appended to " << absl::GetFlag(FLAGS_results) << "\n";
  return 0;
}

}  // namespace
}  // namespace dlspeed

int main(int argc, char** argv) { return dlspeed::Main(argc, argv); }
