// What a training epoch reports, and the recorder that measures it, shared by
// the ResNet and RoBERTa loops and the binaries that print and record it.
//
//   dlspeed::EpochStats stats = trainer.TrainEpoch(loader, epoch, [&](int64_t step, int64_t steps) {
//     progress.Update(step);
//   });
#ifndef DLSPEED_COMMON_TRAINING_STATS_H_
#define DLSPEED_COMMON_TRAINING_STATS_H_

#include <cstdint>
#include <functional>
#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include "common/timing.h"

namespace dlspeed {

struct EpochStats {
  int64_t epoch = 0;
  double seconds = 0;          // wall time of the epoch, device synchronised
  int64_t steps = 0;
  int64_t samples = 0;
  int64_t skipped_steps = 0;   // fp16 steps the GradScaler skipped (inf/NaN)
  double mean_loss = 0;
  double train_accuracy = 0;   // fraction of training samples classified right
  Summary step_seconds;        // per-step times
  std::vector<double> step_times;  // the raw per-step seconds
  double throughput = 0;       // items (images, sequences) per second at the median step time
};

// Called after each step with (step, steps in this epoch), e.g. for progress.
using StepCallback = std::function<void(int64_t step, int64_t steps)>;

// The bookkeeping of one training epoch, shared by the training loops: wall
// time from a device-synchronised start, per-step times, and the loss and
// right predictions summed on the device (read once, at the end).
//
//   dlspeed::EpochRecorder recorder(epoch, device, /*sync_each_step=*/false);
//   for (...) { recorder.StartStep(); loss = Step(..., &correct); recorder.EndStep(loss, correct, n); }
//   dlspeed::EpochStats stats = recorder.Finish(skipped_steps);
class EpochRecorder {
 public:
  // Synchronises the device and starts the epoch's clock. sync_each_step
  // makes each step's time exact (see TrainOptions::sync_each_step).
  EpochRecorder(int64_t epoch, c10::Device device, bool sync_each_step);
  void StartStep();
  // `loss`: the step's mean loss; `correct`: its right predictions (device
  // tensors); `items`: the batch size.
  void EndStep(const at::Tensor& loss, const at::Tensor& correct, int64_t items);
  // Synchronises the device and returns the epoch's figures.
  EpochStats Finish(int64_t skipped_steps);

 private:
  int64_t epoch_;
  c10::Device device_;
  StepTimer timer_;
  Stopwatch wall_;
  at::Tensor loss_sum_, correct_sum_;
  int64_t samples_ = 0;
};

// The epochs a run trains and which of them its averages cover, shared by
// the ResNet and RoBERTa loops. A resumed run starts at its checkpoint's
// epoch and steps done; a checkpoint written after an epoch's last step
// starts the next epoch. The first epoch a process runs is left out of the
// averages, as the study leaves out the first: it pays for warm-up, or it is
// the rest of a resumed one. With a single epoch to run, that one is timed;
// when it is the rest of a resumed epoch, WholeEpochSeconds scales its time
// to the whole epoch for the average epoch time (throughput needs no scaling).
struct EpochPlan {
  int64_t epochs = 1;           // the run's epochs, all of them
  int64_t first_epoch = 0;      // 0-based: where this process starts
  int64_t first_step = 0;       // steps of first_epoch already done
  int64_t steps_per_epoch = 1;  // after --max_steps
  bool Timed(int64_t epoch) const { return epoch > first_epoch || first_epoch == epochs - 1; }
  // `seconds` of `epoch`'s training as a whole epoch's time.
  double WholeEpochSeconds(int64_t epoch, double seconds) const;
};
EpochPlan PlanEpochs(int64_t epochs, int64_t steps_per_epoch, int64_t start_epoch = 0, int64_t start_step = 0);

// Runs `work` (a checkpoint write) between training steps and returns its
// seconds, which the training loops leave out of the epoch's time. The device
// is synchronised first, so that training work still queued on it is not
// counted as `work`'s.
double UntimedSeconds(const c10::Device& device, const std::function<void()>& work);

}  // namespace dlspeed

#endif  // DLSPEED_COMMON_TRAINING_STATS_H_
