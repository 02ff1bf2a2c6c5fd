// Resumable training: everything a ResNet training run needs to continue
// exactly where it stopped (model parameters and buffers, SGD momentum, the
// GradScaler, and how far it got), in one torch.save file written atomically,
// so a kill during a save leaves the previous checkpoint intact.
//
//   dlspeed::SaveTrainingCheckpoint("run.ckpt", trainer, {/*epoch=*/3, /*steps_done=*/120});
//   absl::StatusOr<dlspeed::TrainingProgress> at = dlspeed::LoadTrainingCheckpoint("run.ckpt", trainer);
//   // continue with epoch at->epoch, skipping its first at->steps_done batches
//
// The data order and augmentation depend only on (seed, epoch, batch), so a
// resumed run that skips the batches already trained on sees the same batches;
// on the CPU it ends with the same parameters bit for bit.
#ifndef DLSPEED_RESNET_TRAINING_CHECKPOINT_H_
#define DLSPEED_RESNET_TRAINING_CHECKPOINT_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "resnet/train.h"

namespace dlspeed {

struct TrainingProgress {
  int64_t epoch = 0;       // the epoch in progress
  int64_t steps_done = 0;  // steps of that epoch already taken
  // The settings steps_done counts in (batch size, --max_steps, seed, ...),
  // as the caller writes them (empty: none saved).
  std::string settings;
};

absl::Status SaveTrainingCheckpoint(const std::string& path, ResNetTrainer& trainer, const TrainingProgress& progress);

// Restores the trainer's model, optimizer and GradScaler. Errors name the file:
// missing, corrupt, or from another model (a missing or misshapen entry, a
// negative step or epoch), or saved with settings other than `settings` (its
// steps would mean other batches; checkpoints that saved none are taken).
absl::StatusOr<TrainingProgress> LoadTrainingCheckpoint(const std::string& path, ResNetTrainer& trainer,
                                                        const std::string& settings = "");

}  // namespace dlspeed

#endif  // DLSPEED_RESNET_TRAINING_CHECKPOINT_H_
