#include "resnet/train.h"

#include <cmath>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/data/dataset.h"
#include "common/data/idx.h"
#include "common/data/synthetic.h"

namespace dlspeed {
namespace {

// The model learns: a few hundred steps on real Fashion-MNIST images lift
// test accuracy far above chance (10 %).
TEST(ResNetTrainerTest, LearnsFashionMnist) {
  absl::StatusOr<ImageDataset> train = ReadFashionMnist(kFashionMnistDir, Split::kTrain);
  absl::StatusOr<ImageDataset> test = ReadFashionMnist(kFashionMnistDir, Split::kTest);
  ASSERT_TRUE(train.ok()) << train.status() << " (tools/setup.sh installs dataset-fashion-mnist)";
  ASSERT_TRUE(test.ok()) << test.status();
  torch::manual_seed(0);
  TrainOptions options;
  options.sgd.lr = 0.05;
  options.max_steps_per_epoch = 250;
  ResNetTrainer trainer(*MakeResNet(18), options);
  LoaderOptions loader_options;
  loader_options.batch_size = 64;
  BatchLoader loader(*train, loader_options);
  EpochStats stats = trainer.TrainEpoch(loader, /*epoch=*/0);
  EXPECT_EQ(stats.steps, 250);
  EXPECT_EQ(stats.samples, 250 * 64);
  EXPECT_EQ(stats.step_times.size(), 250u);
  EXPECT_GT(stats.throughput, 0);
  const double accuracy = trainer.Evaluate(FirstSamples(*test, 2000), /*batch_size=*/500);
  EXPECT_GT(accuracy, 0.70) << "test accuracy after 250 steps";
}

TEST(ResNetTrainerTest, MixedPrecisionStepsOnCpuAndKeepsWeightsFp32) {
  for (Precision precision : {Precision::kBf16, Precision::kFp16}) {
    torch::manual_seed(0);
    TrainOptions options;
    options.precision = precision;
    options.max_steps_per_epoch = 3;
    ResNetTrainer trainer(*MakeResNet(18), options);
    ImageDataset data = MakeSyntheticImages(/*n=*/96, /*seed=*/1);
    LoaderOptions loader_options;
    loader_options.batch_size = 32;
    BatchLoader loader(data, loader_options);
    EpochStats stats = trainer.TrainEpoch(loader, /*epoch=*/0);
    EXPECT_EQ(stats.steps, 3) << PrecisionName(precision);
    EXPECT_TRUE(std::isfinite(stats.mean_loss)) << PrecisionName(precision);
    EXPECT_EQ(trainer.model()->parameters()[0].scalar_type(), torch::kFloat);
    if (precision == Precision::kFp16) {
      // No growth within 3 steps; each skipped step halves the scale.
      EXPECT_EQ(trainer.scaler().scale(), 65536.0 * std::pow(0.5, stats.skipped_steps));
    }
  }
}

TEST(ResNetTrainerTest, ChannelsLastTrainsLikeContiguous) {
  ImageDataset data = MakeSyntheticImages(/*n=*/32, /*seed=*/2);
  std::vector<double> losses;
  for (bool channels_last : {false, true}) {
    torch::manual_seed(0);
    TrainOptions options;
    options.channels_last = channels_last;
    options.max_steps_per_epoch = 2;
    ResNetTrainer trainer(*MakeResNet(18), options);
    LoaderOptions loader_options;
    loader_options.batch_size = 16;
    loader_options.augment = false;
    BatchLoader loader(data, loader_options);
    losses.push_back(trainer.TrainEpoch(loader, /*epoch=*/0).mean_loss);
  }
  EXPECT_NEAR(losses[0], losses[1], 1e-3);
}

}  // namespace
}  // namespace dlspeed
