// Fuzzes ReadCifar10 with the input as test_batch.bin: it either fails with a
// status or returns one image and one label below 10 per 3073-byte record.
#include <cstddef>
#include <cstdint>

#include "common/data/cifar10.h"
#include "fuzz/fuzz_check.h"
#include "fuzz/fuzz_input_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  dlspeed::WriteFuzzInput("test_batch.bin", data, size);
  absl::StatusOr<dlspeed::ImageDataset> read = dlspeed::ReadCifar10(dlspeed::FuzzInputDir(), dlspeed::Split::kTest);
  if (!read.ok()) return 0;
  FUZZ_CHECK(size % dlspeed::kCifar10RecordBytes == 0);
  const int64_t records = static_cast<int64_t>(size) / dlspeed::kCifar10RecordBytes;
  FUZZ_CHECK(read->size() == records);
  FUZZ_CHECK(read->labels.size(0) == records);
  if (records > 0) FUZZ_CHECK(read->labels.max().item<int64_t>() < 10 && read->labels.min().item<int64_t>() >= 0);
  return 0;
}
