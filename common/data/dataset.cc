#include "common/data/dataset.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/data/cifar10.h"
#include "common/data/idx.h"
#include "common/data/synthetic.h"

namespace dlspeed {

absl::StatusOr<DatasetKind> ParseDatasetKind(absl::string_view name) {
  for (DatasetKind kind :
       {DatasetKind::kCifar10, DatasetKind::kFashionMnist, DatasetKind::kSynthetic}) {
    if (name == DatasetKindName(kind)) return kind;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown data set '", name, "': use cifar10, fashion-mnist or synthetic"));
}

std::string DatasetKindName(DatasetKind kind) {
  switch (kind) {
    case DatasetKind::kCifar10:
      return "cifar10";
    case DatasetKind::kFashionMnist:
      return "fashion-mnist";
    case DatasetKind::kSynthetic:
      return "synthetic";
  }
  return "unknown";
}

std::string DefaultDataDir(DatasetKind kind) {
  switch (kind) {
    case DatasetKind::kCifar10:
      return "data/cifar-10-batches-bin";
    case DatasetKind::kFashionMnist:
      return kFashionMnistDir;
    case DatasetKind::kSynthetic:
      return "";
  }
  return "";
}

absl::StatusOr<ImageDataset> LoadImageDataset(DatasetKind kind, const std::string& dir,
                                              Split split, int64_t synthetic_size) {
  switch (kind) {
    case DatasetKind::kCifar10:
      return ReadCifar10(dir, split);
    case DatasetKind::kFashionMnist:
      return ReadFashionMnist(dir, split);
    case DatasetKind::kSynthetic:
      if (synthetic_size <= 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "synthetic data set size must be positive, got ", synthetic_size));
      }
      return split == Split::kTrain
                 ? MakeSyntheticImages(synthetic_size, /*seed=*/1)
                 : MakeSyntheticImages(std::max<int64_t>(synthetic_size / 5, 1), /*seed=*/2);
  }
  return absl::InvalidArgumentError("unknown data set kind");
}

ImageDataset FirstSamples(const ImageDataset& data, int64_t n) {
  ImageDataset out = data;
  if (n > 0 && n < data.size()) {
    out.images = data.images.slice(0, 0, n);
    out.labels = data.labels.slice(0, 0, n);
  }
  return out;
}

}  // namespace dlspeed
