// For fuzz targets whose reader returns tensors: the bytes a tensor reaches,
// copied with memcpy in this instrumented code. LibTorch's kernels are not
// built with AddressSanitizer, so a tensor that reaches past its storage goes
// unnoticed by `tensor.sum()`; the memcpy here is seen (ASan intercepts it),
// and the extent is checked against storage().nbytes() first in any build.
//
//   for (const auto& [name, tensor] : *read) {
//     const std::string bytes = dlspeed::TensorBytes(tensor);  // aborts on an overrun
//   }
#ifndef DLSPEED_FUZZ_TENSOR_BYTES_H_
#define DLSPEED_FUZZ_TENSOR_BYTES_H_

#include <cstdint>
#include <cstring>
#include <string>

#include <ATen/core/Tensor.h>

#include "fuzz/fuzz_check.h"

namespace dlspeed {

// The bytes of `tensor`'s storage from its first element to its last (all of
// them, in order, when it is contiguous; "" when it is empty). FUZZ_CHECKs
// that its strides are >= 0 and that its sizes, strides and storage offset
// stay inside storage().nbytes().
inline std::string TensorBytes(const at::Tensor& tensor) {
  FUZZ_CHECK(tensor.defined() && tensor.storage_offset() >= 0);
  if (tensor.numel() == 0) return {};
  // The last element's index, in elements from the start of the storage.
  uint64_t last = static_cast<uint64_t>(tensor.storage_offset());
  for (int64_t d = 0; d < tensor.dim(); ++d) {
    FUZZ_CHECK(tensor.stride(d) >= 0);
    uint64_t span = 0;
    FUZZ_CHECK(!__builtin_mul_overflow(static_cast<uint64_t>(tensor.size(d) - 1),
                                       static_cast<uint64_t>(tensor.stride(d)), &span));
    FUZZ_CHECK(!__builtin_add_overflow(last, span, &last));
  }
  const uint64_t itemsize = tensor.element_size();
  FUZZ_CHECK(last < tensor.storage().nbytes() / itemsize);
  const uint64_t begin = static_cast<uint64_t>(tensor.storage_offset()) * itemsize;
  const uint64_t end = (last + 1) * itemsize;
  std::string bytes(end - begin, '\0');
  std::memcpy(bytes.data(), static_cast<const char*>(tensor.storage().data()) + begin, end - begin);
  return bytes;
}

}  // namespace dlspeed

#endif  // DLSPEED_FUZZ_TENSOR_BYTES_H_
