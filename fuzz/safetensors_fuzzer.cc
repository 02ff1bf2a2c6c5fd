// Fuzzes ReadSafetensors: it either fails with a status or returns uniquely
// named contiguous CPU tensors, each holding exactly the file's bytes at its
// data_offsets, that together cover the data; what it read, written back with
// WriteSafetensors, reads back the same.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <set>
#include <string>

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include "common/serialize/safetensors.h"
#include "fuzz/fuzz_check.h"
#include "fuzz/fuzz_input_file.h"
#include "fuzz/tensor_bytes.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = dlspeed::WriteFuzzInput("model.safetensors", data, size);
  absl::StatusOr<dlspeed::NamedTensors> read = dlspeed::ReadSafetensors(path);
  if (!read.ok()) return 0;

  // The reader accepted the file, so its header is well formed.
  FUZZ_CHECK(size >= 8);
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | data[i];
  FUZZ_CHECK(header_size <= size - 8);
  const nlohmann::json header = nlohmann::json::parse(data + 8, data + 8 + header_size, nullptr,
                                                      /*allow_exceptions=*/false);
  FUZZ_CHECK(header.is_object());
  const uint8_t* file_data = data + 8 + header_size;
  const uint64_t data_size = size - 8 - header_size;

  std::set<std::string> names;
  uint64_t bytes = 0;
  for (const auto& [name, tensor] : *read) {
    FUZZ_CHECK(names.insert(name).second);
    FUZZ_CHECK(tensor.device().is_cpu() && tensor.is_contiguous());
    const std::string held = dlspeed::TensorBytes(tensor);  // ASan sees any overrun here
    FUZZ_CHECK(held.size() == static_cast<uint64_t>(tensor.numel()) * tensor.element_size());
    const nlohmann::json& offsets = header.at(name).at("data_offsets");
    const uint64_t begin = offsets[0].get<uint64_t>(), end = offsets[1].get<uint64_t>();
    FUZZ_CHECK(begin <= end && end <= data_size && end - begin == held.size());
    FUZZ_CHECK(std::memcmp(held.data(), file_data + begin, held.size()) == 0);
    if (tensor.scalar_type() == at::kBool) {
      for (char byte : held) FUZZ_CHECK(static_cast<uint8_t>(byte) <= 1);
    }
    bytes += held.size();
  }
  FUZZ_CHECK(bytes == data_size);  // the tensors tile the data

  // What was read, written and read again, is the same.
  const std::string copy = dlspeed::FuzzInputDir() + "/round_trip.safetensors";
  FUZZ_CHECK(dlspeed::WriteSafetensors(copy, *read).ok());
  absl::StatusOr<dlspeed::NamedTensors> again = dlspeed::ReadSafetensors(copy);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(again->size() == read->size());
  for (size_t i = 0; i < read->size(); ++i) {
    const at::Tensor& a = (*read)[i].second;
    const at::Tensor& b = (*again)[i].second;
    FUZZ_CHECK((*again)[i].first == (*read)[i].first);
    FUZZ_CHECK(a.scalar_type() == b.scalar_type() && a.sizes() == b.sizes());
    FUZZ_CHECK(dlspeed::TensorBytes(a) == dlspeed::TensorBytes(b));  // bytes, so NaNs compare too
  }
  return 0;
}
