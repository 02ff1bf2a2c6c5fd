#include "common/data/synthetic.h"

#include <vector>

#include <ATen/ATen.h>

#include "gtest/gtest.h"

namespace dlspeed {
namespace {

TEST(SyntheticTest, HasCifarShapesAndRanges) {
  ImageDataset data = MakeSyntheticImages(500, /*seed=*/3);
  EXPECT_EQ(data.size(), 500);
  EXPECT_EQ(data.images.sizes(), (std::vector<int64_t>{500, 3, 32, 32}));
  EXPECT_EQ(data.images.scalar_type(), at::kByte);
  EXPECT_EQ(data.labels.sizes(), (std::vector<int64_t>{500}));
  EXPECT_EQ(data.labels.scalar_type(), at::kLong);
  EXPECT_EQ(data.num_classes, 10);
  // 1.5M uniform bytes reach both ends; 500 labels cover all 10 classes.
  EXPECT_EQ(data.images.min().item<int64_t>(), 0);
  EXPECT_EQ(data.images.max().item<int64_t>(), 255);
  EXPECT_EQ(at::bincount(data.labels).size(0), 10);
  EXPECT_TRUE(at::bincount(data.labels).gt(20).all().item<bool>());
}

TEST(SyntheticTest, IsDeterministicBySeed) {
  ImageDataset a = MakeSyntheticImages(64, 7), b = MakeSyntheticImages(64, 7);
  ImageDataset c = MakeSyntheticImages(64, 8);
  EXPECT_TRUE(at::equal(a.images, b.images));
  EXPECT_TRUE(at::equal(a.labels, b.labels));
  EXPECT_FALSE(at::equal(a.images, c.images));
  EXPECT_FALSE(at::equal(a.labels, c.labels));
}

TEST(SyntheticTest, HonoursNumClassesAndEmptySize) {
  ImageDataset data = MakeSyntheticImages(300, 1, /*num_classes=*/3);
  EXPECT_EQ(data.num_classes, 3);
  EXPECT_EQ(data.labels.max().item<int64_t>(), 2);
  EXPECT_EQ(data.labels.min().item<int64_t>(), 0);
  EXPECT_EQ(MakeSyntheticImages(0, 1).size(), 0);
}

}  // namespace
}  // namespace dlspeed
