#include "resnet/data_parallel.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/amp.h"
#include "resnet/resnet.h"

namespace dlspeed {
namespace {

// Replicas on the CPU exercise the same split, broadcast, gather and gradient
// sum as on GPUs. In eval mode BatchNorm uses its running statistics, so
// splitting the batch must not change the loss or the gradients at all.
TEST(DataParallelTest, SplitBatchGivesTheSameLossAndGradientsAsOneDevice) {
  torch::manual_seed(0);
  ResNet model = *MakeResNet(18);
  model->eval();
  const torch::Tensor images = torch::randn({6, 3, 32, 32});
  const torch::Tensor labels = torch::randint(10, {6}, torch::kLong);

  torch::Tensor reference_loss = torch::nn::functional::cross_entropy(model->forward(images), labels);
  reference_loss.backward();
  std::vector<torch::Tensor> reference_grads;
  for (const torch::Tensor& p : model->parameters()) {
    reference_grads.push_back(p.grad().clone());
    p.mutable_grad() = torch::Tensor();
  }

  DataParallel parallel(model, {torch::kCPU, torch::kCPU, torch::kCPU}, Precision::kFp32);
  torch::Tensor logits = parallel.Forward(images);
  ASSERT_EQ(logits.sizes(), (std::vector<int64_t>{6, 10}));
  torch::Tensor loss = torch::nn::functional::cross_entropy(logits, labels);
  EXPECT_NEAR(loss.item<double>(), reference_loss.item<double>(), 1e-5);
  loss.backward();
  parallel.ReduceGradients();
  const std::vector<torch::Tensor> params = model->parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    ASSERT_TRUE(params[i].grad().defined()) << i;
    EXPECT_TRUE(torch::allclose(params[i].grad(), reference_grads[i], /*rtol=*/1e-4, /*atol=*/1e-5)) << i;
  }
  for (size_t r = 1; r < parallel.replicas().size(); ++r) {
    for (const torch::Tensor& p : parallel.replicas()[r]->parameters()) {
      EXPECT_FALSE(p.grad().defined()) << "replica " << r << " kept its gradient";
    }
  }
}

TEST(DataParallelTest, ReplicasFollowTheModelAndOnlyItsBatchNormStatisticsAreKept) {
  torch::manual_seed(1);
  ResNet model = *MakeResNet(18);
  DataParallel parallel(model, {torch::kCPU, torch::kCPU}, Precision::kFp32);
  {
    torch::NoGradGuard no_grad;
    for (torch::Tensor& p : model->parameters()) p.add_(0.5);
  }
  const torch::Tensor before = model->named_buffers()["bn1.running_mean"].clone();
  parallel.Forward(torch::randn({4, 3, 32, 32}) + 3.0);
  const std::vector<torch::Tensor> model_params = model->parameters();
  const std::vector<torch::Tensor> replica_params = parallel.replicas()[1]->parameters();
  for (size_t i = 0; i < model_params.size(); ++i) EXPECT_TRUE(model_params[i].equal(replica_params[i])) << i;
  // The model (replica 0) updated its running mean from its half of the batch.
  EXPECT_FALSE(model->named_buffers()["bn1.running_mean"].equal(before));
}

TEST(DataParallelTest, BatchSmallerThanTheDevicesStillWorks) {
  ResNet model = *MakeResNet(18);
  DataParallel parallel(model, {torch::kCPU, torch::kCPU, torch::kCPU, torch::kCPU}, Precision::kBf16);
  model->eval();
  torch::Tensor logits = parallel.Forward(torch::randn({2, 3, 32, 32}));
  EXPECT_EQ(logits.size(0), 2);
}

}  // namespace
}  // namespace dlspeed
