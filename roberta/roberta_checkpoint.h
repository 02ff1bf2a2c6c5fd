// RoBERTa checkpoints as Hugging Face folders: config.json + model.safetensors,
// read from transformers' save_pretrained (sequence-classification models, or
// pretrained encoders such as xlm-roberta-base's masked-LM checkpoint, whose
// classifier head is then initialised randomly) and written so that
// transformers' from_pretrained loads them.
//
//   absl::StatusOr<dlspeed::LoadedRoberta> loaded = dlspeed::LoadRobertaFolder("checkpoints/xlmr", 4);
//   if (!loaded.ok()) return dlspeed::ReportError(loaded.status().message());
//   std::cout << loaded->summary << "\n";  // what was loaded, what was initialised
//   absl::Status s = dlspeed::SaveRobertaFolder(*loaded->model, "out/best");
#ifndef DLSPEED_ROBERTA_ROBERTA_CHECKPOINT_H_
#define DLSPEED_ROBERTA_ROBERTA_CHECKPOINT_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "roberta/roberta.h"

namespace dlspeed {

struct LoadedRoberta {
  RobertaClassifier model{nullptr};
  std::string summary;  // e.g. "loaded 201 tensors; classifier initialised randomly (not in the checkpoint)"
};

// Reads DIR/config.json and DIR/model.safetensors. Tensor names may carry the
// "roberta." prefix or not (a base model's save); lm_head.*, the pooler and
// the position_ids / token_type_ids buffers are ignored. `num_labels` > 0 overrides the config's
// (a checkpoint with another label count keeps its encoder and gets a new
// head). Errors name the file: a missing file, a tensor with the wrong shape
// (both shapes given), an encoder tensor missing from the checkpoint.
absl::StatusOr<LoadedRoberta> LoadRobertaFolder(const std::string& dir, int64_t num_labels = 0);

// Writes DIR/config.json and DIR/model.safetensors (float32, transformers'
// names), each atomically; creates DIR.
absl::Status SaveRobertaFolder(RobertaClassifierImpl& model, const std::string& dir);

}  // namespace dlspeed

#endif  // DLSPEED_ROBERTA_ROBERTA_CHECKPOINT_H_
