// Reads a state_dict saved by Python's `torch.save(model.state_dict(), path)`
// (or by C++ `torch::pickle_save` of a c10::Dict<std::string, at::Tensor>)
// without Python. LibTorch's own torch::pickle_load cannot: it turns every
// collections.OrderedDict into None. This reader opens the zip archive with
// caffe2::serialize::PyTorchStreamReader and runs a small, strict pickle
// machine over data.pkl that understands just what such files contain
// (dicts, OrderedDicts, tuples, ints, strings, torch._utils._rebuild_tensor_v2
// and the torch.<Type>Storage persistent ids).
//
// Example:
//   absl::StatusOr<std::vector<std::pair<std::string, at::Tensor>>> entries =
//       dlspeed::ReadTorchSaveStateDict("resnet18.pth");
//   if (!entries.ok()) return entries.status();  // "resnet18.pth: ..."
//   for (const auto& [name, tensor] : *entries) { ... }
#ifndef DLSPEED_COMMON_SERIALIZE_TORCH_SAVE_READER_H_
#define DLSPEED_COMMON_SERIALIZE_TORCH_SAVE_READER_H_

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

#include "absl/status/statusor.h"

namespace dlspeed {

// Reads the torch.save file at `path`, whose pickled object must be a dict or
// OrderedDict of str -> tensor, and returns its entries in file order (a key
// given twice keeps its first position and its last value, as in Python).
// Each tensor is a contiguous CPU tensor of the saved dtype, size and values,
// whatever device it was saved from; tensors never share memory with each
// other unless the file stores one tensor object under several keys. A
// state_dict's `_metadata` is ignored. Supported element types: float64/32/16,
// bfloat16, int64/32/16/8, uint8 (also uint16/32/64), bool, complex64/128.
//
// Errors (never a crash or an exception), each one line naming `path`:
// NotFound when the file cannot be opened; InvalidArgument when it is not a
// torch.save zip archive, when data.pkl is malformed or uses something this
// reader does not understand (the byte offset and opcode are named), when the
// object is not a dict of str -> tensor, or when a tensor does not fit its
// storage record. Sizes claimed by the file are checked against the file's
// size before anything is allocated, so a hostile file cannot make the reader
// allocate much more than a few times the file's size.
// The string TextTensor (torch_save_writer.h) stored; nullopt when `tensor`
// is not a 1-D uint8 tensor.
std::optional<std::string> TextOfTensor(const at::Tensor& tensor);

absl::StatusOr<std::vector<std::pair<std::string, at::Tensor>>> ReadTorchSaveStateDict(
    const std::string& path);

}  // namespace dlspeed

#endif  // DLSPEED_COMMON_SERIALIZE_TORCH_SAVE_READER_H_
