// Reading and writing safetensors files (Hugging Face's format: an 8-byte
// little-endian header length, a JSON header naming each tensor's dtype,
// shape and byte range, then the raw little-endian data), so that models move
// between these binaries and Python's transformers without pickle.
//
//   absl::StatusOr<dlspeed::NamedTensors> tensors = dlspeed::ReadSafetensors("model.safetensors");
//   if (!tensors.ok()) return tensors.status();  // names the file and what is wrong
//   absl::Status s = dlspeed::WriteSafetensors("out/model.safetensors", *tensors, {{"format", "pt"}});
#ifndef DLSPEED_COMMON_SERIALIZE_SAFETENSORS_H_
#define DLSPEED_COMMON_SERIALIZE_SAFETENSORS_H_

#include <map>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace dlspeed {

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

// Every tensor of the file, in the order of their data, on the CPU. Errors
// (NotFound, DataLoss for a truncated or malformed file, InvalidArgument for
// an unsupported dtype) name the file and the problem; nothing is trusted:
// sizes, offsets and shapes are checked against each other and the file, the
// tensors' byte ranges must cover the data exactly (no overlaps, gaps or
// trailing bytes, as the format requires) and BOOL bytes must be 0 or 1.
absl::StatusOr<NamedTensors> ReadSafetensors(const std::string& path);

// Writes `tensors` (any device, any strides; F64/F32/F16/BF16/I64/I32/I16/I8/
// U8/BOOL) and string `metadata` atomically: a failed write leaves an existing
// file as it was. Names must be unique and not "__metadata__".
absl::Status WriteSafetensors(const std::string& path, const NamedTensors& tensors,
                              const std::map<std::string, std::string>& metadata = {});

}  // namespace dlspeed

#endif  // DLSPEED_COMMON_SERIALIZE_SAFETENSORS_H_
