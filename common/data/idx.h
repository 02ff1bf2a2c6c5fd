// Readers for the IDX format of MNIST and Fashion-MNIST, gzipped or plain, and
// the Fashion-MNIST data set built on it.
//
//   absl::StatusOr<at::Tensor> labels =
//       dlspeed::ReadIdxFile("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz");
//   absl::StatusOr<dlspeed::ImageDataset> test =
//       dlspeed::ReadFashionMnist(dlspeed::kFashionMnistDir, dlspeed::Split::kTest);
//
// An IDX file is a big-endian header (two zero bytes, a type byte, a byte with
// the number of dimensions, then each dimension as a uint32) and the data.
#ifndef DLSPEED_COMMON_DATA_IDX_H_
#define DLSPEED_COMMON_DATA_IDX_H_

#include <string>

#include <ATen/core/Tensor.h>

#include "absl/status/statusor.h"
#include "common/data/image_dataset.h"

namespace dlspeed {

// Where Debian's dataset-fashion-mnist package installs the data.
inline constexpr char kFashionMnistDir[] = "/usr/share/datasets/fashion-mnist";

// Reads an IDX file of unsigned bytes (type 0x08), gzipped or not, into a
// uint8 tensor of the file's shape. Fails, naming the file, on a bad magic
// number, another element type, a truncated file, trailing bytes, or bytes
// after the gzip stream that are not gzip data (zero padding is allowed).
absl::StatusOr<at::Tensor> ReadIdxFile(const std::string& path);

// Reads Fashion-MNIST from `dir` (train-images-idx3-ubyte.gz and
// train-labels-idx1-ubyte.gz, or the t10k-* files; ".gz" may be absent). The
// 28x28 grey images become uint8 [N,3,32,32]: zero-padded by 2 pixels on each
// side, the grey channel copied to R, G and B, so CIFAR-10 models apply.
absl::StatusOr<ImageDataset> ReadFashionMnist(const std::string& dir, Split split);

}  // namespace dlspeed

#endif  // DLSPEED_COMMON_DATA_IDX_H_
