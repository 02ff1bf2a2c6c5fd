// Random images and labels, for timing runs and tests without a data set.
//
//   dlspeed::ImageDataset train = dlspeed::MakeSyntheticImages(50000, /*seed=*/1);
//   // train.images: uint8 [50000,3,32,32]; train.labels: int64 in [0, 10)
#ifndef DLSPEED_COMMON_DATA_SYNTHETIC_H_
#define DLSPEED_COMMON_DATA_SYNTHETIC_H_

#include <cstdint>

#include "common/data/image_dataset.h"

namespace dlspeed {

// Returns `n` uniformly random uint8 images [n,3,32,32] and labels in
// [0, num_classes); the same (n, seed, num_classes) gives the same data.
// Requires n >= 0 and num_classes >= 1.
ImageDataset MakeSyntheticImages(int64_t n, uint64_t seed, int64_t num_classes = 10);

}  // namespace dlspeed

#endif  // DLSPEED_COMMON_DATA_SYNTHETIC_H_
