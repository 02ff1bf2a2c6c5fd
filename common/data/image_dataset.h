// ImageDataset: a labelled set of small RGB images held in memory, the common
// currency of the data readers (CIFAR-10, Fashion-MNIST, synthetic) and the
// batch loader.
//
//   absl::StatusOr<dlspeed::ImageDataset> train =
//       dlspeed::ReadCifar10("data/cifar-10-batches-bin", dlspeed::Split::kTrain);
//   if (!train.ok()) return train.status();
//   int64_t n = train->size();  // 50000; train->images is uint8 [n,3,32,32]
//
// Tensors are at::Tensor (the same type as torch::Tensor); this header includes
// only the light <ATen/core/Tensor.h>.
#ifndef DLSPEED_COMMON_DATA_IMAGE_DATASET_H_
#define DLSPEED_COMMON_DATA_IMAGE_DATASET_H_

#include <cstdint>

#include <ATen/core/Tensor.h>

namespace dlspeed {

// Which half of a data set to read.
enum class Split { kTrain, kTest };

// Images with their labels, on the CPU.
struct ImageDataset {
  at::Tensor images;  // uint8 [N,3,32,32], contiguous, channels R,G,B
  at::Tensor labels;  // int64 [N], each in [0, num_classes)
  int64_t num_classes = 10;

  // Number of samples (0 when images is undefined).
  int64_t size() const { return images.defined() ? images.size(0) : 0; }
};

}  // namespace dlspeed

#endif  // DLSPEED_COMMON_DATA_IMAGE_DATASET_H_
