#include "common/data/cifar10.h"

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "common/testing/scratch_dir.h"

namespace dlspeed {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// A fresh directory under TEST_TMPDIR.
std::string TempDir(const std::string& name) {
  return ScratchDir("cifar10_test_" + name);
}

// Pixel c,y,x of sample `id`: distinct per sample, channel and position.
uint8_t Pixel(int id, int c, int y, int x) { return (id * 7 + c * 50 + y * 3 + x) % 256; }

// Bytes of one record: label, then the R, G, B planes.
std::vector<char> Record(int id, uint8_t label) {
  std::vector<char> out = {static_cast<char>(label)};
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 32; ++y)
      for (int x = 0; x < 32; ++x) out.push_back(static_cast<char>(Pixel(id, c, y, x)));
  return out;
}

// Writes records for samples first_id.. with labels id % 10.
void WriteBatch(const fs::path& path, int first_id, int count) {
  std::ofstream out(path, std::ios::binary);
  for (int id = first_id; id < first_id + count; ++id) {
    std::vector<char> r = Record(id, id % 10);
    out.write(r.data(), r.size());
  }
}

void WriteTrain(const fs::path& dir) {
  for (int i = 1; i <= 5; ++i) WriteBatch(dir / ("data_batch_" + std::to_string(i) + ".bin"), (i - 1) * 3, 3);
}

void ExpectSample(const ImageDataset& data, int64_t row, int id) {
  EXPECT_EQ(data.labels[row].item<int64_t>(), id % 10);
  const at::Tensor image = data.images[row];
  for (int c = 0; c < 3; ++c)
    for (int y : {0, 5, 31})
      for (int x : {0, 17, 31})
        ASSERT_EQ(image[c][y][x].item<int64_t>(), Pixel(id, c, y, x)) << c << "," << y << "," << x;
}

TEST(Cifar10Test, ReadsTrainSplitInFileOrder) {
  const std::string dir = TempDir("train");
  WriteTrain(dir);
  absl::StatusOr<ImageDataset> data = ReadCifar10(dir, Split::kTrain);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->size(), 15);
  EXPECT_EQ(data->images.sizes(), (std::vector<int64_t>{15, 3, 32, 32}));
  EXPECT_EQ(data->images.scalar_type(), at::kByte);
  EXPECT_EQ(data->labels.scalar_type(), at::kLong);
  EXPECT_TRUE(data->images.is_contiguous());
  EXPECT_EQ(data->num_classes, 10);
  for (int id = 0; id < 15; ++id) ExpectSample(*data, id, id);
}

TEST(Cifar10Test, ReadsTestSplitFromNestedDirectory) {
  const std::string dir = TempDir("nested");
  fs::create_directories(fs::path(dir) / "cifar-10-batches-bin");
  WriteBatch(fs::path(dir) / "cifar-10-batches-bin" / "test_batch.bin", 100, 4);
  absl::StatusOr<ImageDataset> data = ReadCifar10(dir, Split::kTest);
  ASSERT_TRUE(data.ok()) << data.status();
  ASSERT_EQ(data->size(), 4);
  for (int i = 0; i < 4; ++i) ExpectSample(*data, i, 100 + i);
}

TEST(Cifar10Test, MissingDirectorySaysHowToGetTheData) {
  const std::string dir = TempDir("x") + "/nope";
  absl::StatusOr<ImageDataset> data = ReadCifar10(dir, Split::kTrain);
  ASSERT_EQ(data.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(data.status().message()), HasSubstr("'" + dir + "' not found"));
  EXPECT_THAT(std::string(data.status().message()), HasSubstr("cifar-10-binary.tar.gz"));
  EXPECT_THAT(std::string(data.status().message()), HasSubstr("--dataset=synthetic"));
}

TEST(Cifar10Test, MissingFileIsNamed) {
  const std::string dir = TempDir("missing_file");
  WriteTrain(dir);
  fs::remove(fs::path(dir) / "data_batch_4.bin");
  absl::StatusOr<ImageDataset> data = ReadCifar10(dir, Split::kTrain);
  ASSERT_EQ(data.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(data.status().message()), HasSubstr("data_batch_4.bin"));
  // The test split is missing entirely.
  EXPECT_EQ(ReadCifar10(dir, Split::kTest).status().code(), absl::StatusCode::kNotFound);
}

TEST(Cifar10Test, TruncatedFileIsDataLoss) {
  const std::string dir = TempDir("truncated");
  const fs::path path = fs::path(dir) / "test_batch.bin";
  WriteBatch(path, 0, 2);
  fs::resize_file(path, 2 * kCifar10RecordBytes - 100);
  absl::StatusOr<ImageDataset> data = ReadCifar10(dir, Split::kTest);
  ASSERT_EQ(data.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(data.status().message()), HasSubstr(path.string()));
  EXPECT_THAT(std::string(data.status().message()), HasSubstr("truncated"));

  fs::resize_file(path, 0);
  EXPECT_EQ(ReadCifar10(dir, Split::kTest).status().code(), absl::StatusCode::kDataLoss);
}

TEST(Cifar10Test, LabelAboveNineIsDataLoss) {
  const std::string dir = TempDir("bad_label");
  const fs::path path = fs::path(dir) / "test_batch.bin";
  {
    std::ofstream out(path, std::ios::binary);
    std::vector<char> good = Record(0, 3), bad = Record(1, 10);
    out.write(good.data(), good.size());
    out.write(bad.data(), bad.size());
  }
  absl::StatusOr<ImageDataset> data = ReadCifar10(dir, Split::kTest);
  ASSERT_EQ(data.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(data.status().message()), HasSubstr("record 1 has label 10"));
  EXPECT_THAT(std::string(data.status().message()), HasSubstr(path.string()));
}

TEST(Cifar10Test, DirectoryInPlaceOfFileIsAnError) {
  const std::string dir = TempDir("dir_as_file");
  fs::create_directories(fs::path(dir) / "test_batch.bin");
  EXPECT_EQ(ReadCifar10(dir, Split::kTest).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace dlspeed
