#include "resnet/training_run.h"

#include <algorithm>
#include <cstdio>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/device.h"
#include "common/results.h"
#include "common/training_stats.h"

namespace dlspeed {

RunTotals TrainEpochs(ResNetTrainer& trainer, BatchLoader& loader, const RunSettings& settings) {
  RunTotals totals;
  totals.sync_each_step = trainer.options().sync_each_step;
  totals.optimizer_kernels = trainer.options().sgd.kernels;
  std::vector<double> later_steps;
  int64_t later_samples = 0;
  double later_seconds = 0;        // the timed epochs, as run (throughput)
  double timed_epoch_seconds = 0;  // the same, each as a whole epoch (the average epoch time)
  const c10::Device device = trainer.options().device;
  CudaAllocatorCounts allocator;  // over the timed epochs
  const int64_t steps = settings.max_steps > 0 ? std::min(settings.max_steps, loader.batches_per_epoch())
                                               : loader.batches_per_epoch();
  if (settings.start_epoch > 0 || settings.start_step > 0) {
    totals.resumed_epoch = settings.start_epoch;
    totals.resumed_step = settings.start_step;
  }
  const EpochPlan plan = PlanEpochs(settings.epochs, steps, settings.start_epoch, settings.start_step);
  Stopwatch total;
  for (int64_t epoch = plan.first_epoch; epoch < settings.epochs; ++epoch) {
    const int64_t first_step = epoch == plan.first_epoch ? plan.first_step : 0;
    const bool timed = plan.Timed(epoch);
    if (timed && totals.timed_epochs.empty() && settings.on_timing_start) settings.on_timing_start();
    const CudaAllocatorCounts allocator_before = ReadCudaAllocatorCounts(device);
    Progress progress(absl::StrCat(settings.label, " epoch ", epoch + 1, "/", settings.epochs),
                      steps, settings.verbose ? stderr : nullptr);
    double untimed = 0;  // checkpoint writes in this epoch
    EpochStats stats = trainer.TrainEpoch(
        loader, epoch,
        [&](int64_t step, int64_t epoch_steps) {
          if (settings.verbose) progress.Update(step);
          if (settings.on_step) settings.on_step(step, epoch_steps);
          if (settings.after_step) untimed += settings.after_step(epoch, step);
          if (settings.trace != nullptr) {
            if (absl::Status s = settings.trace->AfterStep(); !s.ok()) std::cerr << s.message() << std::endl;
          }
        },
        first_step);
    if (settings.verbose) progress.Finish();
    stats.seconds = std::max(0.0, stats.seconds - untimed);
    totals.checkpoint_seconds += untimed;
    totals.epoch_seconds.push_back(stats.seconds);
    totals.skipped_steps += stats.skipped_steps;
    totals.final_train_loss = stats.mean_loss;
    if (timed) {
      totals.timed_epochs.push_back(epoch + 1);
      later_seconds += stats.seconds;
      timed_epoch_seconds += plan.WholeEpochSeconds(epoch, stats.seconds);
      later_samples += stats.samples * settings.world_size;
      later_steps.insert(later_steps.end(), stats.step_times.begin(), stats.step_times.end());
      totals.measured_skipped_steps += stats.skipped_steps;
      allocator += ReadCudaAllocatorCounts(device) - allocator_before;
    }
    if (settings.verbose) {
      std::cout << absl::StrFormat("  epoch %d/%d: %.2f s, %d steps, loss %.4f, train accuracy %.1f %%, %.0f img/s\n",
                                   epoch + 1, settings.epochs, stats.seconds, stats.steps, stats.mean_loss,
                                   100 * stats.train_accuracy, stats.throughput * settings.world_size)
                << std::flush;
    }
  }
  totals.average_epoch_seconds =
      totals.timed_epochs.empty() ? 0 : timed_epoch_seconds / static_cast<double>(totals.timed_epochs.size());
  totals.total_seconds = total.Seconds();
  totals.throughput = later_seconds > 0 ? later_samples / later_seconds : 0;
  totals.step_seconds = Summarize(later_steps);
  if (device.is_cuda()) totals.cuda_allocator = ToJson(allocator);
  if (settings.verbose) {
    std::cout << "Average time: " << totals.average_epoch_seconds << "\n"
              << "Total time: " << totals.total_seconds << "\n"
              << std::flush;
  }
  return totals;
}

void AddRunFields(const RunTotals& totals, nlohmann::json* record) {
  (*record)["epoch_seconds"] = totals.epoch_seconds;
  (*record)["timed_epochs"] = totals.timed_epochs;
  (*record)["checkpoint_seconds"] = totals.checkpoint_seconds;
  (*record)["resumed_from"] =
      totals.resumed_epoch < 0
          ? nlohmann::json(nullptr)
          : nlohmann::json{{"epoch", totals.resumed_epoch + 1}, {"steps_done", totals.resumed_step}};
  (*record)["avg_epoch_seconds"] = totals.average_epoch_seconds;
  (*record)["total_seconds"] = totals.total_seconds;
  (*record)["step_seconds"] = ToJson(totals.step_seconds);
  (*record)["sync_each_step"] = totals.sync_each_step;
  (*record)["optimizer_kernels"] = OptimizerKernelsName(totals.optimizer_kernels);
  (*record)["throughput"] = totals.throughput;
  (*record)["throughput_unit"] = "images/s";
  (*record)["final_train_loss"] = totals.final_train_loss;
  (*record)["skipped_steps"] = totals.skipped_steps;
  (*record)["measured_skipped_steps"] = totals.measured_skipped_steps;
  if (!totals.cuda_allocator.is_null()) (*record)["cuda_allocator"] = totals.cuda_allocator;
}

}  // namespace dlspeed
