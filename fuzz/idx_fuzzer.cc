// Fuzzes ReadIdxFile, plain or gzipped: it either fails with a status or
// returns a uint8 tensor whose element count the header's dimensions give.
#include <cstddef>
#include <cstdint>

#include <ATen/core/Tensor.h>

#include "common/data/idx.h"
#include "fuzz/fuzz_check.h"
#include "fuzz/fuzz_input_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = dlspeed::WriteFuzzInput("images-idx3-ubyte", data, size);
  absl::StatusOr<at::Tensor> read = dlspeed::ReadIdxFile(path);
  if (!read.ok()) return 0;
  FUZZ_CHECK(read->scalar_type() == at::kByte);
  FUZZ_CHECK(read->is_contiguous());
  return 0;
}
