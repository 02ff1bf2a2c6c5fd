// The RoBERTa fine-tuning loop shared by roberta_train's single- and
// multi-process runs: fp32 or mixed precision (fp16 autocast with a
// GradScaler, bf16 autocast without), SGD with momentum (the study's) or
// AdamW with linear warmup and decay (what fine-tuning needs), per-step
// timing, and dev-set accuracy.
//
//   dlspeed::RobertaTrainOptions options;
//   options.optimizer = dlspeed::RobertaOptimizer::kAdamW;
//   options.lr = 2e-5;
//   options.total_steps = epochs * batcher.batches_per_epoch();
//   dlspeed::RobertaTrainer trainer(model, options);
//   dlspeed::EpochStats stats = trainer.TrainEpoch(batcher, epoch);
//   double accuracy = trainer.Evaluate(dev, /*batch_size=*/64, /*max_len=*/128);
#ifndef DLSPEED_ROBERTA_ROBERTA_TRAINER_H_
#define DLSPEED_ROBERTA_ROBERTA_TRAINER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include <c10/core/Device.h>

#include "absl/status/statusor.h"
#include "common/amp.h"
#include "common/optim/adamw.h"
#include "common/optim/sgd.h"
#include "common/timing.h"
#include "common/training_stats.h"
#include "roberta/roberta.h"
#include "roberta/text_data.h"

namespace dlspeed {

enum class RobertaOptimizer { kSgd, kAdamW };
absl::StatusOr<RobertaOptimizer> ParseRobertaOptimizer(const std::string& name);  // "sgd" or "adamw"

struct RobertaTrainOptions {
  Precision precision = Precision::kFp32;
  RobertaOptimizer optimizer = RobertaOptimizer::kSgd;
  double lr = 0.1;             // the study's SGD lr (AdamW: typically 2e-5)
  double momentum = 0.9;       // SGD
  OptimizerKernels optimizer_kernels = OptimizerKernels::kFused;  // fused or foreach (common/optim)
  double weight_decay = 0.0;   // SGD: 0 as the study; AdamW: 0.01 is usual
  int64_t warmup_steps = 0;    // AdamW's schedule; 0 with total_steps 0: constant lr
  int64_t total_steps = 0;
  int64_t max_steps_per_epoch = 0;  // 0: whole epochs
  bool sync_each_step = false;      // exact per-step times (see TrainOptions::sync_each_step)
  c10::Device device = c10::Device(c10::kCPU);
  // Runs after each backward, before unscaling and the step (DDP's reducer).
  std::function<void()> after_backward;
};

class RobertaTrainer {
 public:
  // Moves the model to options.device.
  RobertaTrainer(RobertaClassifier model, RobertaTrainOptions options);

  // Trains one epoch over the batcher (StartEpoch(epoch) is called here).
  // EpochStats::throughput is in samples per second. A resumed epoch passes
  // first_step: its earlier batches are drawn but not trained on, nor timed.
  EpochStats TrainEpoch(TextBatcher& batcher, int64_t epoch, const StepCallback& on_step = nullptr,
                        int64_t first_step = 0);

  // Everything needed to continue exactly where training stopped (model,
  // optimizer state, GradScaler, the step count that drives the learning-rate
  // schedule, the random generator dropout draws from, and `epoch` /
  // `steps_done`), written atomically to `path`. `settings`: what steps_done
  // counts in (batch size, data, seed, ...), as the caller writes them.
  absl::Status SaveCheckpoint(const std::string& path, int64_t epoch, int64_t steps_done,
                              const std::string& settings = "");
  // Restores SaveCheckpoint's file; returns {epoch, steps_done}. Errors name
  // the file (missing, corrupt, another model or optimizer, a negative
  // progress, settings other than `settings` when the file has some: its
  // steps would mean other batches).
  absl::StatusOr<std::pair<int64_t, int64_t>> LoadCheckpoint(const std::string& path,
                                                             const std::string& settings = "");

  // One step on a batch already on the device; returns the loss (a device
  // tensor) and sets *correct to the number of right predictions.
  torch::Tensor Step(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                     const torch::Tensor& labels, torch::Tensor* correct);

  // Fraction of `data` classified right, in eval mode under the same precision.
  double Evaluate(const TextDataset& data, int64_t batch_size, int64_t max_len);

  RobertaClassifier model() const { return model_; }
  int64_t steps_taken() const { return steps_taken_; }

 private:
  RobertaClassifier model_;
  RobertaTrainOptions options_;
  std::vector<torch::Tensor> params_;
  std::unique_ptr<Sgd> sgd_;
  std::unique_ptr<AdamW> adamw_;
  GradScaler scaler_;
  int64_t steps_taken_ = 0;
  int64_t skipped_steps_ = 0;
};

}  // namespace dlspeed

#endif  // DLSPEED_ROBERTA_ROBERTA_TRAINER_H_
