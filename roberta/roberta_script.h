// TorchScript export of the RoBERTa classifier, built in C++ without Python:
// forward(input_ids, attention_mask=None) is TorchScript source generated
// from the model's config (the encoder layers unrolled), its attributes are
// copies of the model's parameters, and it is frozen for inference
// (parameters become constants). Without a mask every token is attended to,
// as in the eager model, and attention may use its mask-free kernels; pass
// one only for a padded batch. Save and load it with SaveScript/LoadScript
// (resnet_script.h).
//
//   absl::StatusOr<torch::jit::Module> script = dlspeed::ScriptRoberta(*model);
//   torch::Tensor logits = script->forward({input_ids, attention_mask}).toTensor();
//   torch::Tensor unpadded = script->forward({input_ids}).toTensor();  // no mask
#ifndef DLSPEED_ROBERTA_ROBERTA_SCRIPT_H_
#define DLSPEED_ROBERTA_ROBERTA_SCRIPT_H_

#include <torch/csrc/jit/api/module.h>

#include "absl/status/statusor.h"
#include "roberta/roberta.h"

namespace dlspeed {

// What `model` computes in eval mode, on its device and dtype; the model is
// not changed. Linear layers switched to dynamic int8 (QuantizeDynamicInt8)
// stay int8: their prepacked weights become attributes that
// quantized.linear_dynamic uses, as in the eager model. A TorchScript failure
// is Internal.
absl::StatusOr<torch::jit::Module> ScriptRoberta(RobertaClassifierImpl& model, bool freeze = true);

}  // namespace dlspeed

#endif  // DLSPEED_ROBERTA_ROBERTA_SCRIPT_H_
