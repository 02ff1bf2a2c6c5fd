// resnet_dp: the study's Resnet-2, one process training a ResNet replicated
// over the first N GPUs (nn.DataParallel), global batch 1024, fp32 or mixed
// precision; the same printed lines, record and saved model as resnet_single.
// On a host without GPUs the N replicas run on the CPU, after a notice.
//
//   bazel run //resnet:resnet_dp -- 50 4 1     # ResNet-50 on 4 GPUs, mixed precision
#include <iostream>
#include <string>
#include <vector>

#include <torch/cuda.h>
#include <torch/torch.h>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/amp.h"
#include "common/cli.h"
#include "common/data/dataset.h"
#include "common/data/loader.h"
#include "common/device.h"
#include "common/results.h"
#include "common/run_main.h"
#include "common/step_trace.h"
#include "resnet/data_parallel.h"
#include "resnet/resnet.h"
#include "resnet/resnet_checkpoint.h"
#include "resnet/train.h"
#include "resnet/training_flags.h"
#include "resnet/training_run.h"

ABSL_FLAG(int64_t, batch_size, 1024, "global batch, split across the devices (the study: 1024)");
ABSL_FLAG(std::string, device, "auto", "auto (GPUs if there are any, else the CPU), cuda or cpu");

namespace dlspeed {
namespace {

constexpr char kUsage[] =
    "trains a ResNet replicated over N GPUs in one process (nn.DataParallel; the study's Resnet-2).\n"
    "usage: resnet_dp [flags] <18|34|50> <gpus> <mixed: 0|1>";

int Main(int argc, char** argv) {
  const std::vector<std::string> positional = ParseCommandLineOrExit(argc, argv, kUsage);
  if (positional.size() != 3) {
    ExitWithUsageError(absl::StrCat("expected 3 arguments <depth> <gpus> <mixed>, got ", positional.size()));
  }
  absl::StatusOr<int> depth = ParseIntChoice(positional[0], {18, 34, 50}, "depth");
  if (!depth.ok()) ExitWithUsageError(depth.status().message());
  absl::StatusOr<int> count = ParseIntChoice(positional[1], {1, 2, 3, 4, 5, 6, 7, 8}, "gpus");
  if (!count.ok()) ExitWithUsageError(count.status().message());
  absl::StatusOr<int> mixed_arg = ParseIntChoice(positional[2], {0, 1}, "mixed");
  if (!mixed_arg.ok()) ExitWithUsageError(mixed_arg.status().message());
  const bool mixed = *mixed_arg == 1;
  const absl::StatusOr<TrainingFlags> flags = ReadTrainingFlags();
  if (!flags.ok()) ExitWithUsageError(flags.status().message());
  const int64_t epochs = flags->epochs;
  const int64_t batch_size = absl::GetFlag(FLAGS_batch_size);
  if (batch_size < 1) ExitWithUsageError("--batch_size must be at least 1");

  const std::string device_flag = absl::GetFlag(FLAGS_device);
  if (device_flag != "auto" && device_flag != "cuda" && device_flag != "cpu") {
    ExitWithUsageError(absl::StrCat("--device must be auto, cuda or cpu, not '", device_flag, "'"));
  }
  const int gpus = torch::cuda::is_available() ? static_cast<int>(torch::cuda::device_count()) : 0;
  const bool on_gpus = device_flag != "cpu" && gpus > 0;
  if (device_flag == "cuda" && gpus == 0) return ReportError("--device=cuda: this host has no GPU (use --device=cpu)");
  if (on_gpus && *count > gpus) {
    return ReportError(absl::StrCat("asked for ", *count, " GPUs but this host has ", gpus));
  }
  if (!on_gpus && device_flag == "auto") {
    std::cout << "resnet_dp: no GPU here: the " << *count << (*count == 1 ? " replica runs" : " replicas run")
              << " on the CPU\n";
  }
  std::vector<c10::Device> devices;
  for (int i = 0; i < *count; ++i) {
    devices.push_back(on_gpus ? c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(i)) : c10::Device(c10::kCPU));
  }
  absl::StatusOr<Precision> mixed_precision = ParseMixedPrecision(flags->precision, devices[0]);
  if (!mixed_precision.ok()) ExitWithUsageError(mixed_precision.status().message());
  const Precision precision = mixed ? *mixed_precision : Precision::kFp32;
  absl::StatusOr<StepTrace> trace = StepTraceFromFlags(devices[0]);
  if (!trace.ok()) ExitWithUsageError(trace.status().message());
  ApplyTrainingFlags(*flags);

  absl::StatusOr<ImageDataset> train = LoadTrainingSplit(*flags, Split::kTrain);
  if (!train.ok()) return ReportError(train.status().message());
  absl::StatusOr<ImageDataset> test = LoadTrainingSplit(*flags, Split::kTest);
  if (!test.ok()) return ReportError(test.status().message());
  const ImageDataset& train_set = *train;
  const ImageDataset& test_set = *test;

  const nlohmann::json runtime = DescribeRuntime(devices[0]);
  std::cout << absl::StrFormat(
      "resnet_dp: in effect: depth=%d replicas=%d on %s (%s) precision=%s batch_size=%d (%d per replica) epochs=%d "
      "max_steps=%d threads=%d libtorch=%s git=%s data=%s: %d train / %d test images\n",
      *depth, *count, on_gpus ? "GPUs" : "the CPU", runtime.value("device_name", "?"), PrecisionName(precision),
      batch_size, (batch_size + *count - 1) / *count, epochs, flags->max_steps, runtime.value("threads", 0),
      runtime.value("libtorch_version", "?"), runtime.value("git_revision", "?"),
      flags->data_dir.empty() ? DatasetKindName(flags->dataset) : flags->data_dir, train_set.size(), test_set.size());

  const LoaderOptions loader_options = LoaderOptionsFromFlags(*flags, batch_size, devices[0]);
  if (absl::Status s = CheckLoaderOptions(train_set, loader_options); !s.ok()) ExitWithUsageError(s.message());

  std::cout << (mixed ? "Mixed precision," : "Non-mixed,") << *depth << std::endl;
  torch::manual_seed(flags->seed);
  TrainOptions options = TrainOptionsFromFlags(*flags, precision, devices[0]);
  std::unique_ptr<DataParallel> parallel;
  options.forward = [&parallel](const torch::Tensor& images) { return parallel->Forward(images); };
  options.after_backward = [&parallel] { parallel->ReduceGradients(); };
  ResNetTrainer trainer(*MakeResNet(*depth, train_set.num_classes), options);
  parallel = std::make_unique<DataParallel>(trainer.model(), devices, precision, options.channels_last);
  BatchLoader loader(train_set, loader_options);

  RunSettings settings;
  settings.epochs = epochs;
  settings.max_steps = flags->max_steps;
  settings.label = absl::StrCat("ResNet-", *depth, " ", PrecisionName(precision), " x", *count);
  settings.trace = &*trace;
  const RunTotals totals = TrainEpochs(trainer, loader, settings);
  const double accuracy = trainer.Evaluate(test_set, flags->eval_batch_size);
  std::cout << absl::StrFormat("Accuracy of the network on the %d test images: %d %%\n", test_set.size(),
                               WholePercent(accuracy, test_set.size()))
            << std::flush;

  std::string saved;
  if (!flags->models_dir.empty()) {
    saved = absl::StrCat(flags->models_dir, "/Resnet-", *depth, mixed ? "-mixed" : "", "-", *count,
                         "gpus-dp.pth");
    if (absl::Status s = SaveStateDict(*trainer.model(), saved); !s.ok()) return ReportError(s.message());
    std::cout << "Saved " << saved << "\n";
  }
  if (!flags->results.empty()) {
    nlohmann::json record = NewRecord("resnet_dp", devices[0]);
    AddTrainingFields(*flags, {*depth, precision, mixed, batch_size, train_set.size(), test_set.size()}, &record);
    record["devices"] = *count;
    record["replicas_on"] = on_gpus ? "cuda" : "cpu";
    AddRunFields(totals, &record);
    record["test_accuracy"] = accuracy;
    record["model_path"] = saved;
    if (absl::Status s = AppendRecord(flags->results, record); !s.ok()) return ReportError(s.message());
    std::cout << "Record appended to " << flags->results << "\n";
  }
  if (absl::Status s = trace->Finish(); !s.ok()) std::cerr << "resnet_dp: " << s.message() << std::endl;
  return 0;
}

}  // namespace
}  // namespace dlspeed

int main(int argc, char** argv) { return dlspeed::RunMain(dlspeed::Main, argc, argv); }
