#include "common/data/loader.h"

#include <optional>
#include <vector>

#include <ATen/ATen.h>

#include "common/data/synthetic.h"
#include "gtest/gtest.h"

namespace dlspeed {
namespace {

// n samples; sample i has label i and every pixel equal to i % 256, so batches
// show which samples they hold.
ImageDataset Numbered(int64_t n) {
  ImageDataset data;
  data.labels = at::arange(n, at::kLong);
  data.images = (data.labels % 256).to(at::kByte).view({n, 1, 1, 1}).expand({n, 3, 32, 32}).contiguous();
  return data;
}

LoaderOptions Options(int64_t batch_size, int workers) {
  LoaderOptions options;
  options.batch_size = batch_size;
  options.workers = workers;
  options.seed = 11;
  return options;
}

// All batches of one epoch.
std::vector<Batch> Epoch(BatchLoader& loader, int64_t epoch) {
  loader.StartEpoch(epoch);
  std::vector<Batch> batches;
  while (std::optional<Batch> batch = loader.Next()) batches.push_back(std::move(*batch));
  return batches;
}

// The epoch's sample ids (labels), in order.
at::Tensor Order(const std::vector<Batch>& batches) {
  std::vector<at::Tensor> labels;
  for (const Batch& b : batches) labels.push_back(b.labels);
  return labels.empty() ? at::empty({0}, at::kLong) : at::cat(labels);
}

TEST(LoaderTest, EverySampleOnceWithPartialLastBatch) {
  for (int workers : {0, 1, 3}) {
    const ImageDataset data = Numbered(103);
    BatchLoader loader(data, Options(10, workers));
    EXPECT_EQ(loader.batches_per_epoch(), 11);
    EXPECT_EQ(loader.samples_per_epoch(), 103);
    std::vector<Batch> batches = Epoch(loader, 0);
    ASSERT_EQ(batches.size(), 11u) << workers;
    for (size_t i = 0; i < batches.size(); ++i) {
      const Batch& b = batches[i];
      EXPECT_EQ(b.index, static_cast<int64_t>(i));
      const int64_t size = i + 1 < batches.size() ? 10 : 3;
      EXPECT_EQ(b.images.sizes(), (std::vector<int64_t>{size, 3, 32, 32}));
      EXPECT_EQ(b.images.scalar_type(), at::kFloat);
      // Images belong to their labels and are normalized.
      at::Tensor expected = ((b.labels % 256).to(at::kFloat) / 255 - 0.5) / 0.5;
      EXPECT_TRUE(at::allclose(b.images.amin({1, 2, 3}), expected));
      EXPECT_TRUE(at::allclose(b.images.amax({1, 2, 3}), expected));
    }
    at::Tensor order = Order(batches);
    EXPECT_TRUE(at::equal(std::get<0>(order.sort()), at::arange(103, at::kLong)));
    EXPECT_FALSE(at::equal(order, at::arange(103, at::kLong)));  // shuffled
    EXPECT_FALSE(loader.Next().has_value());  // stays finished
  }
}

TEST(LoaderTest, OrderIsSeededByEpoch) {
  const ImageDataset data = Numbered(200);
  BatchLoader a(data, Options(16, 2)), b(data, Options(16, 2));
  const at::Tensor a0 = Order(Epoch(a, 0)), a1 = Order(Epoch(a, 1));
  EXPECT_FALSE(at::equal(a0, a1));
  EXPECT_TRUE(at::equal(a1, Order(Epoch(b, 1))));
  EXPECT_TRUE(at::equal(a0, Order(Epoch(b, 0))));
  LoaderOptions other = Options(16, 2);
  other.seed = 12;
  BatchLoader c(data, other);
  EXPECT_FALSE(at::equal(a0, Order(Epoch(c, 0))));
  LoaderOptions sequential = Options(16, 2);
  sequential.shuffle = false;
  BatchLoader d(data, sequential);
  EXPECT_TRUE(at::equal(Order(Epoch(d, 3)), at::arange(200, at::kLong)));
}

TEST(LoaderTest, DropLastDropsThePartialBatch) {
  LoaderOptions options = Options(10, 2);
  options.drop_last = true;
  BatchLoader loader(Numbered(103), options);
  EXPECT_EQ(loader.batches_per_epoch(), 10);
  std::vector<Batch> batches = Epoch(loader, 0);
  ASSERT_EQ(batches.size(), 10u);
  EXPECT_EQ(batches.back().labels.size(0), 10);
}

TEST(LoaderTest, RankShardsCoverEverySampleLikeDistributedSampler) {
  const ImageDataset data = Numbered(103);
  for (int64_t world : {2, 3, 4}) {
    std::vector<at::Tensor> shards;
    for (int64_t rank = 0; rank < world; ++rank) {
      LoaderOptions options = Options(8, 2);
      options.rank = rank;
      options.world_size = world;
      BatchLoader loader(data, options);
      EXPECT_EQ(loader.samples_per_epoch(), (103 + world - 1) / world);
      shards.push_back(Order(Epoch(loader, 5)));
      EXPECT_EQ(shards.back().size(0), loader.samples_per_epoch());
    }
    // Interleaving the shards gives the rank-independent permutation, padded
    // with its own head up to a multiple of world.
    at::Tensor all = at::stack(shards, 1).flatten();
    const int64_t padding = all.size(0) - 103;
    EXPECT_EQ(padding, (world - 103 % world) % world);  // 1, 2, 1
    EXPECT_TRUE(at::equal(all.slice(0, 103), all.slice(0, 0, padding)));
    EXPECT_TRUE(at::equal(std::get<0>(all.slice(0, 0, 103).sort()), at::arange(103, at::kLong)));
    // The same permutation as one rank alone.
    BatchLoader single(data, Options(8, 2));
    EXPECT_TRUE(at::equal(all.slice(0, 0, 103), Order(Epoch(single, 5))));
  }
}

TEST(LoaderTest, UnshuffledShardsAreStrided) {
  const ImageDataset data = Numbered(5);
  for (int64_t rank : {0, 1}) {
    LoaderOptions options = Options(2, 1);
    options.shuffle = false;
    options.rank = rank;
    options.world_size = 2;
    BatchLoader loader(data, options);
    const std::vector<int64_t> expected =
        rank == 0 ? std::vector<int64_t>{0, 2, 4} : std::vector<int64_t>{1, 3, 0};
    EXPECT_TRUE(at::equal(Order(Epoch(loader, 0)), at::tensor(expected)));
  }
}

TEST(LoaderTest, AugmentationIsDeterministicWhateverTheWorkers) {
  const ImageDataset data = MakeSyntheticImages(70, /*seed=*/4);
  std::vector<std::vector<Batch>> runs;
  for (int workers : {0, 1, 4}) {
    LoaderOptions options = Options(16, workers);
    options.augment = true;
    options.prefetch = 2;
    BatchLoader loader(data, options);
    runs.push_back(Epoch(loader, 2));
  }
  for (size_t r = 1; r < runs.size(); ++r) {
    ASSERT_EQ(runs[r].size(), runs[0].size());
    for (size_t i = 0; i < runs[0].size(); ++i) {
      EXPECT_TRUE(at::equal(runs[r][i].images, runs[0][i].images)) << r << " " << i;
      EXPECT_TRUE(at::equal(runs[r][i].labels, runs[0][i].labels));
    }
  }
  // Augmentation really happened: the unaugmented batch differs.
  LoaderOptions plain = Options(16, 0);
  BatchLoader loader(data, plain);
  std::vector<Batch> unaugmented = Epoch(loader, 2);
  EXPECT_TRUE(at::equal(unaugmented[0].labels, runs[0][0].labels));
  EXPECT_FALSE(at::equal(unaugmented[0].images, runs[0][0].images));
}

TEST(LoaderTest, RestartingMidEpochStartsCleanly) {
  // Batches large enough that workers are busy when the epoch is restarted.
  const ImageDataset data = Numbered(3000);
  LoaderOptions options = Options(256, 3);
  options.augment = true;
  BatchLoader fresh(data, options);
  const std::vector<Batch> expected = Epoch(fresh, 1);
  BatchLoader loader(data, options);
  for (int attempt = 0; attempt < 10; ++attempt) {
    loader.StartEpoch(0);
    if (attempt % 2 == 1) {
      ASSERT_TRUE(loader.Next().has_value());
    }
    std::vector<Batch> restarted = Epoch(loader, 1);
    ASSERT_EQ(restarted.size(), expected.size());
    for (size_t i = 0; i < expected.size(); ++i) {
      EXPECT_EQ(restarted[i].index, static_cast<int64_t>(i));
      ASSERT_TRUE(at::equal(restarted[i].images, expected[i].images)) << attempt << " " << i;
    }
  }
}

TEST(LoaderTest, DestroyingMidEpochDoesNotHang) {
  const ImageDataset data = Numbered(1000);
  for (int workers : {0, 1, 4}) {
    { BatchLoader never_started(data, Options(10, workers)); }
    {
      BatchLoader started(data, Options(10, workers));
      started.StartEpoch(0);
    }
    {
      BatchLoader partway(data, Options(10, workers));
      partway.StartEpoch(0);
      ASSERT_TRUE(partway.Next().has_value());
    }
  }
}

TEST(LoaderTest, NextBeforeStartEpochIsEmpty) {
  BatchLoader loader(Numbered(10), Options(4, 2));
  EXPECT_FALSE(loader.Next().has_value());
}

TEST(LoaderTest, EmptyDataSetHasNoBatches) {
  BatchLoader loader(Numbered(0), Options(4, 2));
  EXPECT_EQ(loader.batches_per_epoch(), 0);
  EXPECT_TRUE(Epoch(loader, 0).empty());
}

TEST(LoaderTest, PinMemoryIsHarmlessWithoutCuda) {
  LoaderOptions options = Options(4, 1);
  options.pin_memory = true;
  BatchLoader loader(Numbered(10), options);
  std::vector<Batch> batches = Epoch(loader, 0);
  ASSERT_EQ(batches.size(), 3u);
  EXPECT_EQ(batches[0].images.is_pinned(), at::hasCUDA());
}

TEST(LoaderTest, RejectsBadOptions) {
  const ImageDataset data = Numbered(10);
  EXPECT_TRUE(CheckLoaderOptions(data, Options(4, 2)).ok());
  LoaderOptions bad = Options(0, 2);
  EXPECT_FALSE(CheckLoaderOptions(data, bad).ok());
  EXPECT_THROW(BatchLoader(data, bad), c10::Error);
  bad = Options(4, 2);
  bad.rank = 2;
  bad.world_size = 2;
  EXPECT_FALSE(CheckLoaderOptions(data, bad).ok());
  bad = Options(4, -1);
  EXPECT_FALSE(CheckLoaderOptions(data, bad).ok());
  ImageDataset floats = data;
  floats.images = floats.images.to(at::kFloat);
  EXPECT_FALSE(CheckLoaderOptions(floats, Options(4, 2)).ok());
}

}  // namespace
}  // namespace dlspeed
