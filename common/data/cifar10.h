// Reader for the binary version of CIFAR-10 (cifar-10-binary.tar.gz from
// https://www.cs.toronto.edu/~kriz/cifar.html), unpacked into a directory.
//
//   absl::StatusOr<dlspeed::ImageDataset> test =
//       dlspeed::ReadCifar10("data", dlspeed::Split::kTest);  // 10000 images
//
// Each record of data_batch_1..5.bin (train) and test_batch.bin (test) is one
// label byte followed by 3072 image bytes: the R, G and B planes of 32x32.
#ifndef DLSPEED_COMMON_DATA_CIFAR10_H_
#define DLSPEED_COMMON_DATA_CIFAR10_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "common/data/image_dataset.h"

namespace dlspeed {

// Bytes in one CIFAR-10 record: 1 label + 3*32*32 pixels.
inline constexpr int64_t kCifar10RecordBytes = 1 + 3 * 32 * 32;

// Reads a CIFAR-10 split from `dir`, or from `dir`/cifar-10-batches-bin when
// the files are there. Returns NotFound for a missing directory or file and
// DataLoss for a truncated file or a label above 9, naming the file.
absl::StatusOr<ImageDataset> ReadCifar10(const std::string& dir, Split split);

}  // namespace dlspeed

#endif  // DLSPEED_COMMON_DATA_CIFAR10_H_
