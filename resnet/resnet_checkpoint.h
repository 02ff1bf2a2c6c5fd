// Saving and loading model weights as PyTorch state_dicts: the files are what
// Python's torch.save(model.state_dict(), path) writes, so torchvision models
// and this project's models exchange weights both ways.
//
//   absl::Status s = dlspeed::SaveStateDict(*model, "models/Resnet-18-1gpu.pth");
//   s = dlspeed::LoadStateDict(*model, "models/Resnet-18-1gpu.pth");
//
// Writes are atomic (a temporary file renamed into place); a file that does
// not fit the model is an error naming the file, the key and both shapes.
#ifndef DLSPEED_RESNET_RESNET_CHECKPOINT_H_
#define DLSPEED_RESNET_RESNET_CHECKPOINT_H_

#include <string>
#include <utility>
#include <vector>

#include <torch/nn/module.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace dlspeed {

// The module's parameters and buffers under their state_dict names, in
// PyTorch's state_dict order (each module's own entries, then its children).
std::vector<std::pair<std::string, torch::Tensor>> StateDictEntries(const torch::nn::Module& module);

// Writes the module's state_dict (on the CPU, contiguous) to `path`.
absl::Status SaveStateDict(const torch::nn::Module& module, const std::string& path);

// Copies a state_dict file (torch.save's format, read with
// common/serialize/torch_save_reader.h) into the module. Every key must match
// a parameter or buffer of the same shape and kind of number (floating point
// of any width for a floating-point one, an integer for an integer one), and
// none may be missing; `what` names the model in errors (e.g. "ResNet-50 with
// 10 classes").
absl::Status LoadStateDict(torch::nn::Module& module, const std::string& path, const std::string& what);

}  // namespace dlspeed

#endif  // DLSPEED_RESNET_RESNET_CHECKPOINT_H_
