#include "common/training_stats.h"

#include <ATen/ATen.h>

namespace dlspeed {

EpochRecorder::EpochRecorder(int64_t epoch, c10::Device device, bool sync_each_step)
    : epoch_(epoch),
      device_(device),
      timer_(sync_each_step ? device : c10::Device(c10::kCPU)),
      loss_sum_(at::zeros({}, at::TensorOptions().dtype(at::kDouble).device(device))),
      correct_sum_(at::zeros({}, at::TensorOptions().dtype(at::kLong).device(device))) {
  SynchronizeDevice(device_);
  wall_.Restart();
}

void EpochRecorder::StartStep() { timer_.Start(); }

void EpochRecorder::EndStep(const at::Tensor& loss, const at::Tensor& correct, int64_t items) {
  loss_sum_ += loss.to(at::kDouble) * items;
  correct_sum_ += correct;
  samples_ += items;
  timer_.Stop(items);
}

EpochStats EpochRecorder::Finish(int64_t skipped_steps) {
  SynchronizeDevice(device_);
  EpochStats stats;
  stats.epoch = epoch_;
  stats.seconds = wall_.Seconds();
  stats.steps = timer_.steps();
  stats.samples = samples_;
  stats.skipped_steps = skipped_steps;
  if (samples_ > 0) {
    stats.mean_loss = loss_sum_.item<double>() / static_cast<double>(samples_);
    stats.train_accuracy = static_cast<double>(correct_sum_.item<int64_t>()) / static_cast<double>(samples_);
  }
  stats.step_seconds = timer_.StepSummary();
  stats.step_times = timer_.step_seconds();
  stats.throughput = timer_.Throughput();
  return stats;
}

EpochPlan PlanEpochs(int64_t epochs, int64_t steps_per_epoch, int64_t start_epoch, int64_t start_step) {
  EpochPlan plan{epochs, start_epoch, start_step, steps_per_epoch};
  if (plan.first_step >= steps_per_epoch) {  // a checkpoint written after an epoch's last step
    ++plan.first_epoch;
    plan.first_step = 0;
  }
  return plan;
}

double EpochPlan::WholeEpochSeconds(int64_t epoch, double seconds) const {
  if (epoch != first_epoch || first_step == 0 || steps_per_epoch <= first_step) return seconds;
  return seconds * static_cast<double>(steps_per_epoch) / static_cast<double>(steps_per_epoch - first_step);
}

double UntimedSeconds(const c10::Device& device, const std::function<void()>& work) {
  SynchronizeDevice(device);
  Stopwatch watch;
  work();
  return watch.Seconds();
}

}  // namespace dlspeed
