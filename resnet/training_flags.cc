#include "resnet/training_flags.h"

#include <ATen/Parallel.h>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/device.h"
#include "common/results.h"

ABSL_FLAG(int64_t, epochs, 20, "training epochs per run (the study: 20)");
ABSL_FLAG(int64_t, eval_batch_size, 128, "test batch size (the study: 128; resnet_ddp tests on rank 0)");
ABSL_FLAG(std::string, precision, "auto", "mixed-precision type: fp16, bf16, or auto (fp16 on CUDA, bf16 on the CPU)");
ABSL_FLAG(std::string, dataset, "fashion-mnist", "cifar10, fashion-mnist (installed by tools/setup.sh) or synthetic");
ABSL_FLAG(std::string, data_dir, "", "data directory (default: the dataset's usual place)");
ABSL_FLAG(int64_t, train_limit, 0, "use only the first N training images (0: all)");
ABSL_FLAG(int64_t, test_limit, 0, "use only the first N test images (0: all)");
ABSL_FLAG(int64_t, synthetic_size, 50000, "training images of --dataset=synthetic (test: a fifth)");
ABSL_FLAG(int64_t, max_steps, 0, "end each epoch after this many steps (0: whole epochs)");
ABSL_FLAG(bool, channels_last, false, "channels_last memory format for the model and inputs");
ABSL_FLAG(bool, augment, true, "the study's random crop (padding 4) and horizontal flip");
ABSL_FLAG(int32_t, threads, 0,
          "CPU intra-op threads per process (0: LibTorch's default; resnet_ddp's launcher gives each of its "
          "processes cores / processes)");
ABSL_FLAG(int32_t, workers, 2, "background threads preparing batches, per process");
ABSL_FLAG(double, lr, 0.1, "SGD learning rate (the study: 0.1, momentum 0.9, weight decay 5e-4)");
ABSL_FLAG(uint64_t, seed, 0, "seed for weights, data order and augmentation");
ABSL_FLAG(bool, cudnn_benchmark, true, "let cuDNN pick the fastest convolution algorithms");
ABSL_FLAG(std::string, optimizer_kernels, "fused",
          "the optimizer's ATen kernels: fused (one pass per parameter; fp16 steps unscale and skip in the kernel, "
          "without a host sync) or foreach (multi-tensor kernels, as Python's default)");
ABSL_FLAG(bool, sync_each_step, false,
          "synchronise the device around every step: exact per-step times (step_seconds) on a GPU, a little slower");
ABSL_FLAG(bool, tf32, true,
          "allow TF32 tensor cores in fp32 cuDNN convolutions (PyTorch's default, torch.backends.cudnn.allow_tf32)");
ABSL_FLAG(bool, tf32_matmul, false,
          "allow TF32 tensor cores in fp32 cuBLAS matmuls (PyTorch's default: off, torch.backends.cuda.matmul.allow_tf32)");
ABSL_FLAG(std::string, results, "results.jsonl",
          "JSON Lines file to append records to (resnet_ddp: rank 0 appends; empty: none)");
ABSL_FLAG(std::string, models_dir, "models",
          "where trained models are saved (resnet_ddp: by rank 0; empty: not saved)");

namespace dlspeed {

absl::StatusOr<TrainingFlags> ReadTrainingFlags(bool check_results) {
  TrainingFlags flags;
  flags.epochs = absl::GetFlag(FLAGS_epochs);
  if (flags.epochs < 1) return absl::InvalidArgumentError("--epochs must be at least 1");
  flags.eval_batch_size = absl::GetFlag(FLAGS_eval_batch_size);
  if (flags.eval_batch_size < 1) return absl::InvalidArgumentError("--eval_batch_size must be at least 1");
  flags.lr = absl::GetFlag(FLAGS_lr);
  if (!(flags.lr > 0)) return absl::InvalidArgumentError("--lr must be positive");
  absl::StatusOr<OptimizerKernels> kernels =
      ParseOptimizerKernels("optimizer_kernels", absl::GetFlag(FLAGS_optimizer_kernels));
  if (!kernels.ok()) return kernels.status();
  flags.optimizer_kernels = *kernels;
  absl::StatusOr<DatasetKind> dataset = ParseDatasetKind(absl::GetFlag(FLAGS_dataset));
  if (!dataset.ok()) return dataset.status();
  flags.dataset = *dataset;
  flags.data_dir = absl::GetFlag(FLAGS_data_dir);
  if (flags.data_dir.empty()) flags.data_dir = DefaultDataDir(flags.dataset);
  flags.precision = absl::GetFlag(FLAGS_precision);
  flags.train_limit = absl::GetFlag(FLAGS_train_limit);
  flags.test_limit = absl::GetFlag(FLAGS_test_limit);
  flags.synthetic_size = absl::GetFlag(FLAGS_synthetic_size);
  flags.max_steps = absl::GetFlag(FLAGS_max_steps);
  flags.channels_last = absl::GetFlag(FLAGS_channels_last);
  flags.augment = absl::GetFlag(FLAGS_augment);
  flags.threads = absl::GetFlag(FLAGS_threads);
  flags.workers = absl::GetFlag(FLAGS_workers);
  flags.seed = absl::GetFlag(FLAGS_seed);
  flags.cudnn_benchmark = absl::GetFlag(FLAGS_cudnn_benchmark);
  flags.tf32 = absl::GetFlag(FLAGS_tf32);
  flags.tf32_matmul = absl::GetFlag(FLAGS_tf32_matmul);
  for (const auto& [name, value] : {std::make_pair("--train_limit", flags.train_limit),
                                    std::make_pair("--test_limit", flags.test_limit),
                                    std::make_pair("--max_steps", flags.max_steps),
                                    std::make_pair("--threads", int64_t{flags.threads}),
                                    std::make_pair("--workers", int64_t{flags.workers})}) {
    if (value < 0) return absl::InvalidArgumentError(absl::StrCat(name, " must be 0 or more, not ", value));
  }
  flags.sync_each_step = absl::GetFlag(FLAGS_sync_each_step);
  flags.results = absl::GetFlag(FLAGS_results);
  // Before the run spends its time: a record it could not append would be lost.
  if (check_results) {
    if (absl::Status s = CheckCanAppend("results", flags.results); !s.ok()) {
      return absl::InvalidArgumentError(s.message());
    }
  }
  flags.models_dir = absl::GetFlag(FLAGS_models_dir);
  return flags;
}

void ApplyTrainingFlags(const TrainingFlags& flags) {
  if (flags.threads > 0) at::set_num_threads(flags.threads);
  BackendSettings backend;
  backend.cudnn_benchmark = flags.cudnn_benchmark;
  backend.tf32_convolutions = flags.tf32;
  backend.tf32_matmuls = flags.tf32_matmul;
  ApplyBackendSettings(backend);
}

absl::StatusOr<ImageDataset> LoadTrainingSplit(const TrainingFlags& flags, Split split) {
  absl::StatusOr<ImageDataset> data = LoadImageDataset(flags.dataset, flags.data_dir, split, flags.synthetic_size);
  if (!data.ok()) return data.status();
  return FirstSamples(*data, split == Split::kTrain ? flags.train_limit : flags.test_limit);
}

TrainOptions TrainOptionsFromFlags(const TrainingFlags& flags, Precision precision, const c10::Device& device) {
  TrainOptions options;
  options.precision = precision;
  options.sgd.lr = flags.lr;
  options.sgd.kernels = flags.optimizer_kernels;
  options.channels_last = flags.channels_last;
  options.max_steps_per_epoch = flags.max_steps;
  options.sync_each_step = flags.sync_each_step;
  options.device = device;
  return options;
}

LoaderOptions LoaderOptionsFromFlags(const TrainingFlags& flags, int64_t batch_size, const c10::Device& device) {
  LoaderOptions options;
  options.batch_size = batch_size;
  options.augment = flags.augment;
  options.seed = flags.seed;
  options.workers = flags.workers;
  options.pin_memory = device.is_cuda();
  return options;
}

std::string CheckpointSettings(const TrainingFlags& flags, const TrainedRun& run, int processes) {
  return absl::StrCat("dataset=", DatasetKindName(flags.dataset), " train_samples=", run.train_samples,
                      " batch_size=", run.batch_size, " max_steps=", flags.max_steps, " seed=", flags.seed,
                      " precision=", PrecisionName(run.precision), " processes=", processes);
}

void AddTrainingFields(const TrainingFlags& flags, const TrainedRun& run, nlohmann::json* record) {
  nlohmann::json& r = *record;
  r["model"] = absl::StrCat("resnet", run.depth);
  r["depth"] = run.depth;
  r["precision"] = PrecisionName(run.precision);
  r["mixed"] = run.mixed;
  r["batch_size"] = run.batch_size;
  r["dataset"] = DatasetKindName(flags.dataset);
  r["train_samples"] = run.train_samples;
  r["test_samples"] = run.test_samples;
  r["epochs"] = flags.epochs;
  r["max_steps"] = flags.max_steps;
  r["channels_last"] = flags.channels_last;
  r["augment"] = flags.augment;
}

}  // namespace dlspeed
