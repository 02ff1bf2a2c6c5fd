// The command-line flags the ResNet training binaries share (resnet_single,
// resnet_dp, resnet_ddp: --epochs, --dataset, --lr, --results, ...), checked
// once, and what each binary builds from them: the data sets, the trainer's
// and the loader's options, and the fields every training record carries.
// Each binary keeps the flags whose meaning differs: --batch_size (per step
// or per process), --device, checkpointing, and its positional arguments.
//
//   absl::StatusOr<dlspeed::TrainingFlags> flags = dlspeed::ReadTrainingFlags();
//   if (!flags.ok()) dlspeed::ExitWithUsageError(flags.status().message());
//   dlspeed::ApplyTrainingFlags(*flags);
//   absl::StatusOr<dlspeed::ImageDataset> train = dlspeed::LoadTrainingSplit(*flags, dlspeed::Split::kTrain);
//   dlspeed::ResNetTrainer trainer(model, dlspeed::TrainOptionsFromFlags(*flags, precision, device));
#ifndef DLSPEED_RESNET_TRAINING_FLAGS_H_
#define DLSPEED_RESNET_TRAINING_FLAGS_H_

#include <cstdint>
#include <string>

#include <c10/core/Device.h>
#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "common/amp.h"
#include "common/data/dataset.h"
#include "common/data/loader.h"
#include "common/optim/optimizer_kernels.h"
#include "resnet/train.h"

namespace dlspeed {

// The shared flags' values, checked; ReadTrainingFlags fills every field (the
// defaults are the flags', in training_flags.cc).
struct TrainingFlags {
  int64_t epochs = 0;
  int64_t eval_batch_size = 0;
  std::string precision;  // --precision as given: auto, fp16 or bf16 (for ParseMixedPrecision)
  DatasetKind dataset = DatasetKind::kSynthetic;
  std::string data_dir;  // --data_dir, or the dataset's usual place
  int64_t train_limit = 0;
  int64_t test_limit = 0;
  int64_t synthetic_size = 0;
  int64_t max_steps = 0;
  bool channels_last = false;
  bool augment = false;
  int32_t threads = 0;
  int32_t workers = 0;
  double lr = 0;
  uint64_t seed = 0;
  bool cudnn_benchmark = false;
  bool tf32 = false;         // cuDNN convolutions
  bool tf32_matmul = false;  // cuBLAS matmuls
  OptimizerKernels optimizer_kernels = OptimizerKernels::kFused;
  bool sync_each_step = false;
  std::string results;     // empty: no record
  std::string models_dir;  // empty: the model is not saved
};

// Reads the shared flags. A bad value (--epochs=0, --lr=-1, an unknown
// --dataset or --optimizer_kernels, a batch size below 1) is InvalidArgument
// with the line to print (ExitWithUsageError). With `check_results`, so is a
// --results file that cannot be appended to; a process that writes no record
// (a rank other than 0, perhaps on another machine) passes false.
absl::StatusOr<TrainingFlags> ReadTrainingFlags(bool check_results = true);

// Sets the intra-op threads (when --threads is above 0), cuDNN's algorithm
// search and TF32 as the flags say.
void ApplyTrainingFlags(const TrainingFlags& flags);

// The flags' dataset, read from their directory, cut to --train_limit or
// --test_limit samples. Errors name the file or directory.
absl::StatusOr<ImageDataset> LoadTrainingSplit(const TrainingFlags& flags, Split split);

// What the flags set of the trainer: lr, the optimizer's kernels,
// channels_last, --max_steps per epoch and --sync_each_step, with the run's
// precision and device.
TrainOptions TrainOptionsFromFlags(const TrainingFlags& flags, Precision precision, const c10::Device& device);

// What the flags set of the loader: --augment, --seed and --workers, with the
// batch size; batches are page-locked when `device` is a GPU.
LoaderOptions LoaderOptionsFromFlags(const TrainingFlags& flags, int64_t batch_size, const c10::Device& device);

// What a run trained: depth, precision and the batch per step (per process
// for resnet_ddp), and the data sets' sizes.
struct TrainedRun {
  int depth = 0;
  Precision precision = Precision::kFp32;
  bool mixed = false;
  int64_t batch_size = 0;
  int64_t train_samples = 0;
  int64_t test_samples = 0;
};

// Adds the fields every ResNet training record has: model, depth, precision,
// mixed, batch_size, dataset, train_samples, test_samples, epochs,
// max_steps, channels_last and augment.
void AddTrainingFields(const TrainingFlags& flags, const TrainedRun& run, nlohmann::json* record);

// The settings a training checkpoint's step count depends on (data set and
// its size, batch, --max_steps, seed, precision, processes), as one line to
// store in it (TrainingProgress::settings) and compare on --resume.
std::string CheckpointSettings(const TrainingFlags& flags, const TrainedRun& run, int processes);

}  // namespace dlspeed

#endif  // DLSPEED_RESNET_TRAINING_FLAGS_H_
