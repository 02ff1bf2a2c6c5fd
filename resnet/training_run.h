// The epoch loop the ResNet training binaries share (resnet_single, resnet_dp,
// resnet_ddp): train for N epochs with a terminal progress bar, print one
// line per epoch and the study's "Average time" / "Total time" lines, and
// gather what goes into the results record.
//
//   dlspeed::RunTotals totals = dlspeed::TrainEpochs(trainer, loader, settings);
//   nlohmann::json record = dlspeed::NewRecord("resnet_ddp", device);
//   dlspeed::AddRunFields(totals, &record);
#ifndef DLSPEED_RESNET_TRAINING_RUN_H_
#define DLSPEED_RESNET_TRAINING_RUN_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/data/loader.h"
#include "common/optim/optimizer_kernels.h"
#include "common/step_trace.h"
#include "common/timing.h"
#include "resnet/train.h"

namespace dlspeed {

struct RunSettings {
  int64_t epochs = 1;
  int64_t max_steps = 0;    // per epoch; 0: whole epochs
  std::string label;        // progress-bar title, e.g. "ResNet-18 fp32"
  bool verbose = true;      // print the progress bar and the lines (rank 0 only)
  int64_t world_size = 1;   // samples per step = batch x world_size
  StepCallback on_step;     // called after each step, (step within epoch, steps)
  std::function<void()> on_timing_start;  // called before the first of RunTotals::timed_epochs
  // Where to start (a resumed run): the epoch, and the steps of it already
  // done (a whole epoch done starts the next one).
  int64_t start_epoch = 0;
  int64_t start_step = 0;
  // Called after each step with the epoch and the steps of it done so far
  // (e.g. to save a checkpoint); returns the seconds of that work to leave out
  // of the epoch's time (UntimedSeconds in common/training_stats.h), 0 when it
  // did none.
  std::function<double(int64_t epoch, int64_t steps_done)> after_step;
  // Traces a few steps (--trace); null: none. One trace however many runs share it.
  StepTrace* trace = nullptr;
};

struct RunTotals {
  std::vector<double> epoch_seconds;  // each epoch this process ran, checkpoint writes left out
  // The epochs the figures below cover (1-based): those after the first this
  // process ran, which pays for warm-up (or, resumed, ran only part of an
  // epoch); all of them when it ran one.
  std::vector<int64_t> timed_epochs;
  double average_epoch_seconds = 0;  // over timed_epochs
  double total_seconds = 0;
  double throughput = 0;             // images per second over timed_epochs, all ranks
  Summary step_seconds;              // steps of timed_epochs
  double checkpoint_seconds = 0;     // writing checkpoints, left out of the epochs' times
  int64_t resumed_epoch = -1;        // a resumed run: where it started (0-based epoch, steps done); else -1
  int64_t resumed_step = 0;
  double final_train_loss = 0;
  int64_t skipped_steps = 0;
  int64_t measured_skipped_steps = 0;  // of those, in the later epochs (step_seconds' steps)
  bool sync_each_step = false;       // whether step_seconds are device-synchronised (TrainOptions)
  OptimizerKernels optimizer_kernels = OptimizerKernels::kFused;  // the SGD's kernels (TrainOptions::sgd)
  nlohmann::json cuda_allocator;     // on CUDA, what the allocator did in the later epochs (common/device.h); else null
};

// Trains settings.epochs epochs and prints, when verbose, the study's lines.
RunTotals TrainEpochs(ResNetTrainer& trainer, BatchLoader& loader, const RunSettings& settings);

// Adds epoch_seconds, timed_epochs, avg_epoch_seconds, total_seconds,
// step_seconds, sync_each_step, optimizer_kernels, throughput(_unit),
// final_train_loss, skipped_steps, measured_skipped_steps, checkpoint_seconds,
// resumed_from (null, or {"epoch": 1-based, "steps_done"}) and, on CUDA,
// cuda_allocator to `record`.
void AddRunFields(const RunTotals& totals, nlohmann::json* record);

}  // namespace dlspeed

#endif  // DLSPEED_RESNET_TRAINING_RUN_H_
