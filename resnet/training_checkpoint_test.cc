#include "resnet/training_checkpoint.h"

#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/testing/scratch_dir.h"
#include "resnet/resnet.h"
#include "resnet/train.h"

namespace dlspeed {
namespace {

// A checkpoint of an fp16 run carries the GradScaler's state and the SGD
// momentum: a trainer that loads it (from other weights) and the one that
// wrote it take the next steps alike, bit for bit on the CPU.
TEST(TrainingCheckpointTest, Fp16ResumesWithTheScalerAndMomentum) {
  torch::manual_seed(3);
  std::vector<std::pair<torch::Tensor, torch::Tensor>> batches;
  for (int i = 0; i < 5; ++i) batches.emplace_back(torch::randn({8, 3, 32, 32}), torch::randint(10, {8}));
  TrainOptions options;
  options.precision = Precision::kFp16;
  torch::manual_seed(0);
  ResNetTrainer written(*MakeResNet(18), options);
  const std::map<std::string, double> fresh = written.scaler().State();
  for (int i = 0; i < 3; ++i) written.Step(batches[i].first, batches[i].second, nullptr);
  ASSERT_NE(written.scaler().State(), fresh) << "three steps left the scaler as it started";
  const std::string path = ScratchPath("fp16.ckpt");
  ASSERT_TRUE(SaveTrainingCheckpoint(path, written, {/*epoch=*/0, /*steps_done=*/3, "fp16 run"}).ok());

  torch::manual_seed(1);  // other weights, a fresh scaler, no momentum
  ResNetTrainer loaded(*MakeResNet(18), options);
  absl::StatusOr<TrainingProgress> at = LoadTrainingCheckpoint(path, loaded, "fp16 run");
  ASSERT_TRUE(at.ok()) << at.status();
  EXPECT_EQ(at->steps_done, 3);
  EXPECT_EQ(loaded.scaler().State(), written.scaler().State());
  const std::vector<torch::Tensor>& momentum = written.optimizer().momentum_buffers();
  const std::vector<torch::Tensor>& restored = loaded.optimizer().momentum_buffers();
  ASSERT_EQ(restored.size(), momentum.size());
  for (size_t i = 0; i < momentum.size(); ++i) {
    ASSERT_EQ(restored[i].defined(), momentum[i].defined()) << "momentum " << i;
    if (momentum[i].defined()) EXPECT_TRUE(restored[i].equal(momentum[i])) << "momentum " << i;
  }

  for (int i = 3; i < 5; ++i) {
    written.Step(batches[i].first, batches[i].second, nullptr);
    loaded.Step(batches[i].first, batches[i].second, nullptr);
  }
  EXPECT_EQ(loaded.scaler().State(), written.scaler().State());
  const std::vector<torch::Tensor> a = written.model()->parameters(), b = loaded.model()->parameters();
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(a[i].equal(b[i])) << "parameter " << i;
}

}  // namespace
}  // namespace dlspeed
