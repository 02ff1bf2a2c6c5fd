// Fuzzes ReadIdxFile, plain or gzipped: it either fails with a status or
// returns a contiguous uint8 tensor with the header's dimensions, so its
// element count is their product.
#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "common/data/idx.h"
#include "fuzz/fuzz_check.h"
#include "fuzz/fuzz_input_file.h"
#include "fuzz/tensor_bytes.h"

namespace {

// The dimensions in the header of the IDX file at `path`, read through zlib
// as the reader does (a plain file reads as itself).
std::vector<uint64_t> HeaderDims(const std::string& path) {
  gzFile file = gzopen(path.c_str(), "rb");
  FUZZ_CHECK(file != nullptr);
  uint8_t magic[4];
  FUZZ_CHECK(gzread(file, magic, 4) == 4);
  std::vector<uint8_t> header(4 * magic[3]);
  FUZZ_CHECK(gzread(file, header.data(), header.size()) == static_cast<int>(header.size()));
  gzclose(file);
  std::vector<uint64_t> dims;
  for (size_t i = 0; i < header.size(); i += 4) {
    dims.push_back((uint64_t{header[i]} << 24) | (uint64_t{header[i + 1]} << 16) |
                   (uint64_t{header[i + 2]} << 8) | uint64_t{header[i + 3]});
  }
  return dims;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = dlspeed::WriteFuzzInput("images-idx3-ubyte", data, size);
  absl::StatusOr<at::Tensor> read = dlspeed::ReadIdxFile(path);
  if (!read.ok()) return 0;
  FUZZ_CHECK(read->scalar_type() == at::kByte);
  FUZZ_CHECK(read->is_contiguous());
  const std::vector<uint64_t> dims = HeaderDims(path);
  FUZZ_CHECK(static_cast<size_t>(read->dim()) == dims.size());
  uint64_t product = 1;
  for (size_t d = 0; d < dims.size(); ++d) {
    FUZZ_CHECK(static_cast<uint64_t>(read->size(static_cast<int64_t>(d))) == dims[d]);
    FUZZ_CHECK(!__builtin_mul_overflow(product, dims[d], &product));
  }
  FUZZ_CHECK(static_cast<uint64_t>(read->numel()) == product);
  FUZZ_CHECK(dlspeed::TensorBytes(*read).size() == product);  // ASan sees any overrun here
  return 0;
}
