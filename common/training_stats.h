// What a training epoch reports, shared by the ResNet and RoBERTa loops and
// the binaries that print and record it.
//
//   dlspeed::EpochStats stats = trainer.TrainEpoch(loader, epoch, [&](int64_t step, int64_t steps) {
//     progress.Update(step);
//   });
#ifndef DLSPEED_COMMON_TRAINING_STATS_H_
#define DLSPEED_COMMON_TRAINING_STATS_H_

#include <cstdint>
#include <functional>
#include <vector>

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

}  // namespace dlspeed

#endif  // DLSPEED_COMMON_TRAINING_STATS_H_
