// Writes a state_dict in the file format of Python's torch.save, so that
// Python loads it with a plain `torch.load(path)` (weights_only=True, the
// default since PyTorch 2.6) and `model.load_state_dict(...)`.
// torch::pickle_save's files carry a torch.jit type tag that weights_only
// loading refuses; this writer leaves it out.
//
// Example:
//   absl::Status s = dlspeed::WriteTorchSaveStateDict(
//       "models/Resnet-18-1gpu.pth", {{"fc.weight", w}, {"fc.bias", b}});
#ifndef DLSPEED_COMMON_SERIALIZE_TORCH_SAVE_WRITER_H_
#define DLSPEED_COMMON_SERIALIZE_TORCH_SAVE_WRITER_H_

#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace dlspeed {

// The bytes of a torch.save file holding the entries as a dict, in order.
// Tensors are copied to the CPU (contiguous) first.
absl::StatusOr<std::string> SerializeStateDict(const std::vector<std::pair<std::string, at::Tensor>>& entries);

// SerializeStateDict written atomically to `path` (parent directories made).
// `text` as a 1-D uint8 tensor: a string entry of a state dict (read back
// with TextOfTensor, torch_save_reader.h).
at::Tensor TextTensor(const std::string& text);

absl::Status WriteTorchSaveStateDict(const std::string& path,
                                     const std::vector<std::pair<std::string, at::Tensor>>& entries);

}  // namespace dlspeed

#endif  // DLSPEED_COMMON_SERIALIZE_TORCH_SAVE_WRITER_H_
