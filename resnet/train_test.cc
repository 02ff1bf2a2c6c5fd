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

// Three steps of `precision` from seed 0 on the same batches; returns the
// trainer's first convolution's weight after them.
torch::Tensor TrainThreeSteps(Precision precision, EpochStats* stats, double* scale) {
  torch::manual_seed(0);
  TrainOptions options;
  options.precision = precision;
  options.max_steps_per_epoch = 3;
  ResNetTrainer trainer(*MakeResNet(18), options);
  ImageDataset data = MakeSyntheticImages(/*n=*/96, /*seed=*/1);
  LoaderOptions loader_options;
  loader_options.batch_size = 32;
  BatchLoader loader(data, loader_options);
  *stats = trainer.TrainEpoch(loader, /*epoch=*/0);
  *scale = trainer.scaler().scale();
  EXPECT_EQ(trainer.model()->parameters()[0].scalar_type(), torch::kFloat) << PrecisionName(precision);
  return trainer.model()->parameters()[0].detach().clone();
}

TEST(ResNetTrainerTest, MixedPrecisionStepsOnCpuAndKeepsWeightsFp32) {
  torch::manual_seed(0);
  const torch::Tensor initial = (*MakeResNet(18))->parameters()[0].detach().clone();
  EpochStats stats;
  double scale = 0;
  const torch::Tensor fp32 = TrainThreeSteps(Precision::kFp32, &stats, &scale);
  for (Precision precision : {Precision::kBf16, Precision::kFp16}) {
    const torch::Tensor mixed = TrainThreeSteps(precision, &stats, &scale);
    EXPECT_EQ(stats.steps, 3) << PrecisionName(precision);
    EXPECT_TRUE(std::isfinite(stats.mean_loss)) << PrecisionName(precision);
    // The steps trained, in reduced precision: the weights moved, and not as
    // the fp32 run moved them.
    EXPECT_LT(stats.skipped_steps, 3) << PrecisionName(precision) << ": every step was skipped";
    EXPECT_FALSE(mixed.equal(initial)) << PrecisionName(precision) << ": the weights never changed";
    EXPECT_FALSE(mixed.equal(fp32)) << PrecisionName(precision) << ": autocast did not run";
    if (precision == Precision::kFp16) {
      // No growth within 3 steps; each skipped step halves the scale.
      EXPECT_EQ(scale, 65536.0 * std::pow(0.5, stats.skipped_steps));
    }
  }
}

TEST(ResNetTrainerTest, ChannelsLastTrainsLikeContiguous) {
  ImageDataset data = MakeSyntheticImages(/*n=*/32, /*seed=*/2);
  std::vector<torch::Tensor> weights;
  torch::Tensor initial;
  for (bool channels_last : {false, true}) {
    torch::manual_seed(0);
    TrainOptions options;
    options.channels_last = channels_last;
    options.max_steps_per_epoch = 2;
    ResNetTrainer trainer(*MakeResNet(18), options);
    const torch::Tensor conv1 = trainer.model()->parameters()[0];
    EXPECT_EQ(conv1.is_contiguous(at::MemoryFormat::ChannelsLast), channels_last);
    initial = conv1.detach().contiguous().clone();
    LoaderOptions loader_options;
    loader_options.batch_size = 16;
    loader_options.augment = false;
    BatchLoader loader(data, loader_options);
    trainer.TrainEpoch(loader, /*epoch=*/0);
    weights.push_back(trainer.model()->parameters()[0].detach().contiguous());
  }
  // After two steps the same weights, up to the order of the sums: the two
  // runs differ by far less than the steps moved them.
  const double moved = (weights[0] - initial).abs().max().item<double>();
  const double differ = (weights[0] - weights[1]).abs().max().item<double>();
  EXPECT_GT(moved, 1e-3);
  EXPECT_LT(differ, 0.05 * moved) << "the steps moved the weights by up to " << moved;
}

}  // namespace
}  // namespace dlspeed
