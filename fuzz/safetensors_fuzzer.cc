// Fuzzes ReadSafetensors: it either fails with a status or returns uniquely
// named CPU tensors whose bytes all lie inside the file.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>

#include <ATen/core/Tensor.h>

#include "common/serialize/safetensors.h"
#include "fuzz/fuzz_check.h"
#include "fuzz/fuzz_input_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = dlspeed::WriteFuzzInput("model.safetensors", data, size);
  absl::StatusOr<dlspeed::NamedTensors> read = dlspeed::ReadSafetensors(path);
  if (!read.ok()) return 0;
  std::set<std::string> names;
  size_t bytes = 0;
  for (const auto& [name, tensor] : *read) {
    FUZZ_CHECK(names.insert(name).second);
    FUZZ_CHECK(tensor.device().is_cpu());
    bytes += tensor.numel() * tensor.element_size();
    if (tensor.numel() > 0) tensor.sum();  // touches every element: ASan sees any overrun
  }
  FUZZ_CHECK(bytes <= size);
  return 0;
}
