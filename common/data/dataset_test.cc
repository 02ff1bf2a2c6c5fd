#include "common/data/dataset.h"

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "absl/status/status.h"
#include "common/data/synthetic.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace dlspeed {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

TEST(DatasetTest, ParsesAndNamesEveryKind) {
  for (DatasetKind kind :
       {DatasetKind::kCifar10, DatasetKind::kFashionMnist, DatasetKind::kSynthetic}) {
    absl::StatusOr<DatasetKind> parsed = ParseDatasetKind(DatasetKindName(kind));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(*parsed, kind);
  }
  EXPECT_EQ(DatasetKindName(DatasetKind::kFashionMnist), "fashion-mnist");
  absl::StatusOr<DatasetKind> bad = ParseDatasetKind("mnist");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("'mnist'"));
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("cifar10, fashion-mnist or synthetic"));
}

TEST(DatasetTest, DefaultDirectories) {
  EXPECT_EQ(DefaultDataDir(DatasetKind::kCifar10), "data/cifar-10-batches-bin");
  EXPECT_EQ(DefaultDataDir(DatasetKind::kFashionMnist), "/usr/share/datasets/fashion-mnist");
}

TEST(DatasetTest, SyntheticSplitsHaveSizesAndDifferentData) {
  absl::StatusOr<ImageDataset> train =
      LoadImageDataset(DatasetKind::kSynthetic, "ignored", Split::kTrain, 100);
  absl::StatusOr<ImageDataset> test =
      LoadImageDataset(DatasetKind::kSynthetic, "ignored", Split::kTest, 100);
  ASSERT_TRUE(train.ok() && test.ok());
  EXPECT_EQ(train->size(), 100);
  EXPECT_EQ(test->size(), 20);
  EXPECT_FALSE(at::equal(train->images.slice(0, 0, 20), test->images));
  // Deterministic: a second load gives the same data.
  absl::StatusOr<ImageDataset> again =
      LoadImageDataset(DatasetKind::kSynthetic, "", Split::kTrain, 100);
  EXPECT_TRUE(at::equal(train->images, again->images));
  EXPECT_EQ(LoadImageDataset(DatasetKind::kSynthetic, "", Split::kTrain, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(DatasetTest, MissingDirectorySaysWhatToDo) {
  const std::string dir = ::testing::TempDir() + "/dataset_test_absent";
  for (DatasetKind kind : {DatasetKind::kCifar10, DatasetKind::kFashionMnist}) {
    absl::StatusOr<ImageDataset> data = LoadImageDataset(kind, dir, Split::kTrain, 100);
    EXPECT_EQ(data.status().code(), absl::StatusCode::kNotFound);
    EXPECT_THAT(std::string(data.status().message()),
                HasSubstr("data directory '" + dir + "' not found"));
    EXPECT_THAT(std::string(data.status().message()), HasSubstr("--data_dir"));
    EXPECT_THAT(std::string(data.status().message()), HasSubstr("--dataset=synthetic"));
  }
}

TEST(DatasetTest, LoadsCifar10Files) {
  const fs::path dir = fs::path(::testing::TempDir()) / "dataset_test_cifar";
  fs::create_directories(dir);
  {
    std::ofstream out(dir / "test_batch.bin", std::ios::binary);
    for (char label : {7, 2}) {
      out.put(label);
      out << std::string(3072, static_cast<char>(label * 10));
    }
  }
  absl::StatusOr<ImageDataset> data =
      LoadImageDataset(DatasetKind::kCifar10, dir.string(), Split::kTest, 100);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_TRUE(at::equal(data->labels, at::tensor(std::vector<int64_t>{7, 2})));
  EXPECT_EQ(data->images[1].max().item<int64_t>(), 20);
}

TEST(DatasetTest, FirstSamplesTakesAPrefixOrEverything) {
  ImageDataset data = MakeSyntheticImages(/*n=*/10, /*seed=*/3);
  ImageDataset head = FirstSamples(data, 4);
  EXPECT_EQ(head.size(), 4);
  EXPECT_TRUE(at::equal(head.images, data.images.slice(0, 0, 4)));
  EXPECT_TRUE(at::equal(head.labels, data.labels.slice(0, 0, 4)));
  EXPECT_EQ(FirstSamples(data, 0).size(), 10);
  EXPECT_EQ(FirstSamples(data, 25).size(), 10);
}

}  // namespace
}  // namespace dlspeed
