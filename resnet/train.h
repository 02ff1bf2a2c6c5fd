// The ResNet training loop shared by resnet_single and the multi-device
// binaries: one loop for fp32 and mixed precision (fp16 autocast with a
// GradScaler, bf16 autocast without), SGD with momentum on foreach kernels,
// per-step timing, and test-set accuracy.
//
//   dlspeed::TrainOptions options;
//   options.precision = dlspeed::Precision::kFp16;
//   options.device = torch::Device(torch::kCUDA);
//   dlspeed::ResNetTrainer trainer(*dlspeed::MakeResNet(18), options);
//   for (int64_t epoch = 0; epoch < epochs; ++epoch) {
//     dlspeed::EpochStats stats = trainer.TrainEpoch(loader, epoch);
//   }
//   double accuracy = trainer.Evaluate(test_set, /*batch_size=*/128);
#ifndef DLSPEED_RESNET_TRAIN_H_
#define DLSPEED_RESNET_TRAIN_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include <c10/core/Device.h>

#include "common/amp.h"
#include "common/data/image_dataset.h"
#include "common/data/loader.h"
#include "common/optim/sgd.h"
#include "common/timing.h"
#include "common/training_stats.h"
#include "resnet/resnet.h"

namespace dlspeed {

struct TrainOptions {
  Precision precision = Precision::kFp32;
  SgdOptions sgd;                    // the study's lr 0.1, momentum 0.9, wd 5e-4
  bool channels_last = false;
  int64_t max_steps_per_epoch = 0;   // 0: the whole epoch
  // Synchronise the device around every step so that per-step times are
  // exact. Off by default: on a GPU it stops the host from queueing the next
  // step while the current one runs, which slows training. Without it, step
  // times are host-side and match the GPU's pace once its queue is full;
  // epoch times are always taken after a device synchronisation.
  bool sync_each_step = false;
  c10::Device device = c10::Device(c10::kCPU);
  // Runs after each backward, before the GradScaler and the optimizer step:
  // where DDP averages gradients across ranks (GradientReducer::FinishBackward).
  std::function<void()> after_backward;
  // Replaces model->forward(images) in training steps, e.g. with
  // DataParallel::Forward over several devices.
  std::function<torch::Tensor(const torch::Tensor&)> forward;
};

class ResNetTrainer {
 public:
  // Moves the model to options.device (and channels_last when asked).
  ResNetTrainer(ResNet model, TrainOptions options);

  // Trains one epoch over the loader (StartEpoch(epoch) is called here). A
  // resumed epoch passes first_step: its earlier batches are drawn (the order
  // stays that of a whole epoch) but not trained on, nor timed.
  EpochStats TrainEpoch(BatchLoader& loader, int64_t epoch, const StepCallback& on_step = nullptr,
                        int64_t first_step = 0);

  // One training step on a batch already on the device; returns the loss
  // (a device tensor) and sets *correct to the number of right predictions.
  torch::Tensor Step(const torch::Tensor& images, const torch::Tensor& labels, torch::Tensor* correct);

  // Fraction of `data` classified right, in eval mode under the same precision.
  double Evaluate(const ImageDataset& data, int64_t batch_size);

  ResNet model() const { return model_; }
  const TrainOptions& options() const { return options_; }
  GradScaler& scaler() { return scaler_; }
  Sgd& optimizer() { return optimizer_; }

 private:
  ResNet model_;
  TrainOptions options_;
  std::vector<torch::Tensor> params_;
  Sgd optimizer_;
  GradScaler scaler_;
  int64_t skipped_steps_ = 0;
};

}  // namespace dlspeed

#endif  // DLSPEED_RESNET_TRAIN_H_
