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
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "common/amp.h"
#include "common/cli.h"
#include "common/data/dataset.h"
#include "common/data/loader.h"
#include "common/device.h"
#include "common/results.h"
#include "common/run_main.h"
#include "common/step_trace.h"
#include "common/stop_signal.h"
#include "common/timing.h"
#include "common/training_stats.h"
#include "resnet/resnet.h"
#include "resnet/resnet_checkpoint.h"
#include "resnet/train.h"
#include "resnet/training_checkpoint.h"
#include "resnet/training_flags.h"
#include "resnet/training_run.h"

ABSL_FLAG(std::string, depths, "18,34,50", "ResNet depths to train, in order (18, 34, 50)");
ABSL_FLAG(std::string, modes, "fp32,mixed", "runs per depth, in order: fp32 and/or mixed");
ABSL_FLAG(int64_t, batch_size, 512, "training batch size (the study: 512)");
ABSL_FLAG(std::string, device, "auto", "auto, cpu, cuda or cuda:N");
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

std::string ModelFile(const TrainingFlags& flags, int depth, bool mixed, absl::string_view extension) {
  return absl::StrCat(flags.models_dir, "/Resnet-", depth, mixed ? "-mixed" : "", "-1gpu", extension);
}

int Main(int argc, char** argv) {
  std::vector<std::string> positional = ParseCommandLineOrExit(argc, argv, kUsage);
  if (!positional.empty()) ExitWithUsageError(absl::StrCat("unexpected argument '", positional[0], "'"));
  const std::vector<int> depths = ParseDepths(absl::GetFlag(FLAGS_depths));
  const std::vector<bool> modes = ParseModes(absl::GetFlag(FLAGS_modes));
  const absl::StatusOr<TrainingFlags> flags = ReadTrainingFlags();
  if (!flags.ok()) ExitWithUsageError(flags.status().message());
  const int64_t epochs = flags->epochs;
  const int64_t batch_size = absl::GetFlag(FLAGS_batch_size);
  if (batch_size < 1) ExitWithUsageError("--batch_size must be at least 1");
  absl::StatusOr<c10::Device> device = ResolveDevice(absl::GetFlag(FLAGS_device));
  if (!device.ok() && device.status().code() == absl::StatusCode::kInvalidArgument) {
    ExitWithUsageError(device.status().message());
  }
  if (!device.ok()) return ReportError(device.status().message());
  absl::StatusOr<Precision> parsed_precision = ParseMixedPrecision(flags->precision, *device);
  if (!parsed_precision.ok()) ExitWithUsageError(parsed_precision.status().message());
  const Precision mixed_precision = *parsed_precision;
  if (absl::GetFlag(FLAGS_checkpoint_every) < 0) ExitWithUsageError("--checkpoint_every must be 0 or more");
  absl::StatusOr<StepTrace> trace = StepTraceFromFlags(*device);  // counts the steps of the runs in order
  if (!trace.ok()) ExitWithUsageError(trace.status().message());
  // SIGINT/SIGTERM stop a run at the next step boundary, after a checkpoint.
  InstallStopSignalHandlers();
  ApplyTrainingFlags(*flags);

  absl::StatusOr<ImageDataset> train = LoadTrainingSplit(*flags, Split::kTrain);
  if (!train.ok()) return ReportError(train.status().message());
  absl::StatusOr<ImageDataset> test = LoadTrainingSplit(*flags, Split::kTest);
  if (!test.ok()) return ReportError(test.status().message());
  const ImageDataset& train_set = *train;
  const ImageDataset& test_set = *test;

  const nlohmann::json runtime = DescribeRuntime(*device);
  std::cout << absl::StrFormat(
      "resnet_single: asked: depths=%s modes=%s precision=%s epochs=%d batch_size=%d dataset=%s device=%s "
      "channels_last=%d threads=%d max_steps=%d seed=%d\n",
      absl::GetFlag(FLAGS_depths), absl::GetFlag(FLAGS_modes), flags->precision, epochs, batch_size,
      DatasetKindName(flags->dataset), absl::GetFlag(FLAGS_device), flags->channels_last, flags->threads,
      flags->max_steps, flags->seed);
  std::cout << absl::StrFormat(
      "resnet_single: in effect: device=%s (%s) mixed=%s threads=%d cudnn_benchmark=%s tf32=%s tf32_matmul=%s libtorch=%s git=%s "
      "data=%s: %d train / %d test images\n",
      runtime.value("device", "?"), runtime.value("device_name", "?"), PrecisionName(mixed_precision),
      runtime.value("threads", 0), runtime.value("cudnn_benchmark", false) ? "on" : "off",
      runtime.value("allow_tf32_cudnn", false) ? "on" : "off", runtime.value("allow_tf32_cublas", false) ? "on" : "off",
      runtime.value("libtorch_version", "?"),
      runtime.value("git_revision", "?"), flags->data_dir.empty() ? DatasetKindName(flags->dataset) : flags->data_dir,
      train_set.size(), test_set.size());

  const LoaderOptions loader_options = LoaderOptionsFromFlags(*flags, batch_size, *device);
  if (absl::Status s = CheckLoaderOptions(train_set, loader_options); !s.ok()) ExitWithUsageError(s.message());

  std::vector<RunResult> results;
  int failed = 0;  // a record not appended: said, and the other runs go on
  for (int depth : depths) {
    for (bool mixed : modes) {
      const Precision precision = mixed ? mixed_precision : Precision::kFp32;
      std::cout << (mixed ? "Mixed precision," : "Non-mixed,") << depth << std::endl;
      torch::manual_seed(flags->seed);
      ResNetTrainer trainer(*MakeResNet(depth, train_set.num_classes), TrainOptionsFromFlags(*flags, precision, *device));
      BatchLoader loader(train_set, loader_options);

      RunSettings settings;
      settings.epochs = epochs;
      settings.max_steps = flags->max_steps;
      settings.label = absl::StrCat("ResNet-", depth, " ", PrecisionName(precision));
      settings.trace = &*trace;
      const std::string checkpoint = flags->models_dir.empty() ? "" : ModelFile(*flags, depth, mixed, ".ckpt");
      const std::string run_settings =
          CheckpointSettings(*flags, {depth, precision, mixed, batch_size, train_set.size(), 0}, /*processes=*/1);
      if (absl::GetFlag(FLAGS_resume) && !checkpoint.empty() && std::filesystem::exists(checkpoint)) {
        absl::StatusOr<TrainingProgress> at = LoadTrainingCheckpoint(checkpoint, trainer, run_settings);
        if (!at.ok()) return ReportError(at.status().message());
        settings.start_epoch = at->epoch;
        settings.start_step = at->steps_done;
        std::cout << "Resuming from " << checkpoint << " at epoch " << at->epoch + 1 << ", step " << at->steps_done
                  << std::endl;
      }
      const int64_t every = absl::GetFlag(FLAGS_checkpoint_every);
      int64_t steps_this_run = 0;
      settings.after_step = [&](int64_t epoch, int64_t steps_done) -> double {
        ++steps_this_run;
        const int signal = PendingStopSignal();
        double untimed = 0;
        if (!checkpoint.empty() && (signal != 0 || (every > 0 && steps_this_run % every == 0))) {
          untimed = UntimedSeconds(*device, [&] {
            if (absl::Status s = SaveTrainingCheckpoint(checkpoint, trainer, {epoch, steps_done, run_settings});
                !s.ok()) {
              std::cerr << "resnet_single: " << s.message() << std::endl;
              std::_Exit(1);
            }
          });
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
        return untimed;
      };
      const RunTotals totals = TrainEpochs(trainer, loader, settings);
      if (!checkpoint.empty()) std::filesystem::remove(checkpoint);  // the run is complete
      const double accuracy = trainer.Evaluate(test_set, flags->eval_batch_size);
      std::cout << absl::StrFormat("Accuracy of the network on the %d test images: %d %%\n", test_set.size(),
                                   WholePercent(accuracy, test_set.size()))
                << std::flush;

      std::string saved;
      if (!flags->models_dir.empty()) {
        saved = ModelFile(*flags, depth, mixed, ".pth");
        if (absl::Status s = SaveStateDict(*trainer.model(), saved); !s.ok()) return ReportError(s.message());
        std::cout << "Saved " << saved << "\n";
      }
      if (!totals.epoch_seconds.empty()) {
        results.push_back(
            {depth, precision, totals.average_epoch_seconds, totals.total_seconds, totals.throughput, accuracy});
      }

      if (totals.epoch_seconds.empty()) {
        // Resumed from a checkpoint written after the last step: nothing was timed to record.
        std::cout << "resnet_single: " << checkpoint << " was written at the end of training: nothing left to "
                  << "train, so no record\n";
      } else if (!flags->results.empty()) {
        nlohmann::json record = NewRecord("resnet_single", *device);
        AddTrainingFields(*flags, {depth, precision, mixed, batch_size, train_set.size(), test_set.size()}, &record);
        record["devices"] = 1;
        AddRunFields(totals, &record);
        record["test_accuracy"] = accuracy;
        record["model_path"] = saved;
        if (absl::Status s = AppendRecord(flags->results, record); !s.ok()) failed = ReportError(s.message());
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
  if (!flags->results.empty() && failed == 0) std::cout << "Records appended to " << flags->results << "\n";
  if (absl::Status s = trace->Finish(); !s.ok()) std::cerr << "resnet_single: " << s.message() << std::endl;
  return failed;
}

}  // namespace
}  // namespace dlspeed

int main(int argc, char** argv) { return dlspeed::RunMain(dlspeed::Main, argc, argv); }
