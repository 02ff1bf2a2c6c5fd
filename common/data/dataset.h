// Choosing and loading an image data set by name, as binaries do from flags
// (--dataset=cifar10|fashion-mnist|synthetic, --data_dir).
//
//   absl::StatusOr<dlspeed::DatasetKind> kind = dlspeed::ParseDatasetKind("cifar10");
//   if (!kind.ok()) return kind.status();
//   std::string dir = data_dir.empty() ? dlspeed::DefaultDataDir(*kind) : data_dir;
//   absl::StatusOr<dlspeed::ImageDataset> train = dlspeed::LoadImageDataset(
//       *kind, dir, dlspeed::Split::kTrain, /*synthetic_size=*/50000);
#ifndef DLSPEED_COMMON_DATA_DATASET_H_
#define DLSPEED_COMMON_DATA_DATASET_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/data/image_dataset.h"

namespace dlspeed {

enum class DatasetKind { kCifar10, kFashionMnist, kSynthetic };

// Parses "cifar10", "fashion-mnist" or "synthetic"; InvalidArgument otherwise.
absl::StatusOr<DatasetKind> ParseDatasetKind(absl::string_view name);

// The name ParseDatasetKind accepts for `kind`.
std::string DatasetKindName(DatasetKind kind);

// Where the data is looked for without --data_dir: "data/cifar-10-batches-bin"
// for CIFAR-10, Debian's /usr/share/datasets/fashion-mnist for Fashion-MNIST,
// "" for synthetic data.
std::string DefaultDataDir(DatasetKind kind);

// Loads a split. Synthetic data ignores `dir`: the train split has
// `synthetic_size` images, the test split synthetic_size/5 (at least 1), drawn
// with different fixed seeds. Errors name the directory or file, and say how
// to get the data.
absl::StatusOr<ImageDataset> LoadImageDataset(DatasetKind kind, const std::string& dir,
                                              Split split, int64_t synthetic_size);

// The first `n` samples of `data` (views, no copy); all of them when n <= 0
// or n >= data.size(). For flags such as --train_limit and --test_limit.
ImageDataset FirstSamples(const ImageDataset& data, int64_t n);

}  // namespace dlspeed

#endif  // DLSPEED_COMMON_DATA_DATASET_H_
