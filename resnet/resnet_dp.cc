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
#include "common/optim/optimizer_kernels.h"
#include "common/results.h"
#include "common/step_trace.h"
#include "resnet/data_parallel.h"
#include "resnet/resnet.h"
#include "resnet/resnet_checkpoint.h"
#include "resnet/train.h"
#include "resnet/training_run.h"

ABSL_FLAG(int64_t, epochs, 20, "training epochs (the study: 20)");
ABSL_FLAG(int64_t, batch_size, 1024, "global batch, split across the devices (the study: 1024)");
ABSL_FLAG(int64_t, eval_batch_size, 128, "test batch size");
ABSL_FLAG(std::string, precision, "auto", "mixed-precision type: fp16, bf16, or auto (fp16 on CUDA, bf16 on the CPU)");
ABSL_FLAG(std::string, dataset, "fashion-mnist", "cifar10, fashion-mnist (installed by tools/setup.sh) or synthetic");
ABSL_FLAG(std::string, data_dir, "", "data directory (default: the dataset's usual place)");
ABSL_FLAG(int64_t, train_limit, 0, "use only the first N training images (0: all)");
ABSL_FLAG(int64_t, test_limit, 0, "use only the first N test images (0: all)");
ABSL_FLAG(int64_t, synthetic_size, 50000, "training images of --dataset=synthetic (test: a fifth)");
ABSL_FLAG(int64_t, max_steps, 0, "end each epoch after this many steps (0: whole epochs)");
ABSL_FLAG(bool, channels_last, false, "channels_last memory format for the model and inputs");
ABSL_FLAG(bool, augment, true, "the study's random crop (padding 4) and horizontal flip");
ABSL_FLAG(std::string, device, "auto", "auto (GPUs if there are any, else the CPU), cuda or cpu");
ABSL_FLAG(double, lr, 0.1, "SGD learning rate (the study: 0.1, momentum 0.9, weight decay 5e-4)");
ABSL_FLAG(int32_t, threads, 0, "CPU intra-op threads (0: LibTorch's default)");
ABSL_FLAG(int32_t, workers, 2, "background threads preparing batches");
ABSL_FLAG(uint64_t, seed, 0, "seed for weights, data order and augmentation");
ABSL_FLAG(bool, cudnn_benchmark, true, "let cuDNN pick the fastest convolution algorithms");
ABSL_FLAG(std::string, optimizer_kernels, "fused",
          "the optimizer's ATen kernels: fused (one pass per parameter; fp16 steps unscale and skip in the kernel, "
          "without a host sync) or foreach (multi-tensor kernels, as Python's default)");
ABSL_FLAG(bool, sync_each_step, false,
          "synchronise the device around every step: exact per-step times (step_seconds) on a GPU, a little slower");
ABSL_FLAG(bool, tf32, true, "allow TF32 in cuDNN convolutions and cuBLAS matmuls");
ABSL_FLAG(std::string, results, "results.jsonl", "JSON Lines file to append the record to (empty: none)");
ABSL_FLAG(std::string, models_dir, "models", "where the model is saved (empty: not saved)");

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
  const int64_t epochs = absl::GetFlag(FLAGS_epochs);
  const int64_t batch_size = absl::GetFlag(FLAGS_batch_size);
  if (epochs < 1) ExitWithUsageError("--epochs must be at least 1");
  if (!(absl::GetFlag(FLAGS_lr) > 0)) ExitWithUsageError("--lr must be positive");
  const absl::StatusOr<OptimizerKernels> optimizer_kernels =
      ParseOptimizerKernels("optimizer_kernels", absl::GetFlag(FLAGS_optimizer_kernels));
  if (!optimizer_kernels.ok()) ExitWithUsageError(optimizer_kernels.status().message());
  if (batch_size < 1 || absl::GetFlag(FLAGS_eval_batch_size) < 1) ExitWithUsageError("batch sizes must be at least 1");
  absl::StatusOr<DatasetKind> kind = ParseDatasetKind(absl::GetFlag(FLAGS_dataset));
  if (!kind.ok()) ExitWithUsageError(kind.status().message());

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
  absl::StatusOr<Precision> mixed_precision = ParseMixedPrecision(absl::GetFlag(FLAGS_precision), devices[0]);
  if (!mixed_precision.ok()) ExitWithUsageError(mixed_precision.status().message());
  const Precision precision = mixed ? *mixed_precision : Precision::kFp32;
  absl::StatusOr<StepTrace> trace = StepTraceFromFlags(devices[0]);
  if (!trace.ok()) ExitWithUsageError(trace.status().message());
  if (absl::GetFlag(FLAGS_threads) > 0) at::set_num_threads(absl::GetFlag(FLAGS_threads));
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

  const nlohmann::json runtime = DescribeRuntime(devices[0]);
  std::cout << absl::StrFormat(
      "resnet_dp: in effect: depth=%d replicas=%d on %s (%s) precision=%s batch_size=%d (%d per replica) epochs=%d "
      "max_steps=%d threads=%d libtorch=%s git=%s data=%s: %d train / %d test images\n",
      *depth, *count, on_gpus ? "GPUs" : "the CPU", runtime.value("device_name", "?"), PrecisionName(precision),
      batch_size, (batch_size + *count - 1) / *count, epochs, absl::GetFlag(FLAGS_max_steps), runtime.value("threads", 0),
      runtime.value("libtorch_version", "?"), runtime.value("git_revision", "?"),
      data_dir.empty() ? DatasetKindName(*kind) : data_dir, train_set.size(), test_set.size());

  LoaderOptions loader_options;
  loader_options.batch_size = batch_size;
  loader_options.augment = absl::GetFlag(FLAGS_augment);
  loader_options.seed = absl::GetFlag(FLAGS_seed);
  loader_options.workers = absl::GetFlag(FLAGS_workers);
  loader_options.pin_memory = on_gpus;
  if (absl::Status s = CheckLoaderOptions(train_set, loader_options); !s.ok()) ExitWithUsageError(s.message());

  std::cout << (mixed ? "Mixed precision," : "Non-mixed,") << *depth << std::endl;
  torch::manual_seed(absl::GetFlag(FLAGS_seed));
  TrainOptions options;
  options.precision = precision;
  options.sgd.lr = absl::GetFlag(FLAGS_lr);
  options.channels_last = absl::GetFlag(FLAGS_channels_last);
  options.max_steps_per_epoch = absl::GetFlag(FLAGS_max_steps);
  options.sync_each_step = absl::GetFlag(FLAGS_sync_each_step);
  options.sgd.kernels = *optimizer_kernels;
  options.device = devices[0];
  std::unique_ptr<DataParallel> parallel;
  options.forward = [&parallel](const torch::Tensor& images) { return parallel->Forward(images); };
  options.after_backward = [&parallel] { parallel->ReduceGradients(); };
  ResNetTrainer trainer(*MakeResNet(*depth, train_set.num_classes), options);
  parallel = std::make_unique<DataParallel>(trainer.model(), devices, precision, options.channels_last);
  BatchLoader loader(train_set, loader_options);

  RunSettings settings;
  settings.epochs = epochs;
  settings.max_steps = absl::GetFlag(FLAGS_max_steps);
  settings.label = absl::StrCat("ResNet-", *depth, " ", PrecisionName(precision), " x", *count);
  settings.trace = &*trace;
  const RunTotals totals = TrainEpochs(trainer, loader, settings);
  const double accuracy = trainer.Evaluate(test_set, absl::GetFlag(FLAGS_eval_batch_size));
  std::cout << absl::StrFormat("Accuracy of the network on the %d test images: %d %%\n", test_set.size(),
                               static_cast<int>(100 * accuracy))
            << std::flush;

  std::string saved;
  if (!absl::GetFlag(FLAGS_models_dir).empty()) {
    saved = absl::StrCat(absl::GetFlag(FLAGS_models_dir), "/Resnet-", *depth, mixed ? "-mixed" : "", "-", *count,
                         "gpus-dp.pth");
    if (absl::Status s = SaveStateDict(*trainer.model(), saved); !s.ok()) return ReportError(s.message());
    std::cout << "Saved " << saved << "\n";
  }
  if (!absl::GetFlag(FLAGS_results).empty()) {
    nlohmann::json record = NewRecord("resnet_dp", devices[0]);
    record["model"] = absl::StrCat("resnet", *depth);
    record["depth"] = *depth;
    record["devices"] = *count;
    record["replicas_on"] = on_gpus ? "cuda" : "cpu";
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
    std::cout << "Record appended to " << absl::GetFlag(FLAGS_results) << "\n";
  }
  return 0;
}

}  // namespace
}  // namespace dlspeed

int main(int argc, char** argv) { return dlspeed::Main(argc, argv); }
