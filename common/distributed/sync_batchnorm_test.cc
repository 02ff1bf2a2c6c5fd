// SyncBatchNorm2d in two real processes with a Gloo group
// (two_rank_test_main.h): each rank normalises its part of a batch, and the
// outputs, input gradients, summed weight and bias gradients and running
// statistics must equal one BatchNorm2d's on the whole batch.
#include "common/distributed/sync_batchnorm.h"

#include <memory>
#include <vector>

#include <gtest/gtest.h>
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/torch.h>

#include "common/distributed/process_group.h"
#include "common/distributed/two_rank_test_main.h"

namespace dlspeed {
namespace {

// Local batches of different sizes: the global statistics weigh each rank by
// its count (an average of the ranks' means would be wrong).
constexpr int64_t kRankBatch[kTestRanks] = {2, 4};
constexpr int64_t kWholeBatch = kRankBatch[0] + kRankBatch[1];
int64_t RankStart(int64_t rank) { return rank == 0 ? 0 : kRankBatch[0]; }

at::Tensor SumOverRanks(const at::Tensor& t) {
  std::vector<at::Tensor> tensors = {t.clone()};
  TestProcessGroup()->backend().allreduce(tensors)->wait();
  return tensors[0];
}

// Copies weights and running statistics so both modules start alike.
void CopyState(torch::nn::BatchNorm2d& from, torch::nn::BatchNorm2d& to) {
  torch::NoGradGuard no_grad;
  to->weight.copy_(from->weight);
  to->bias.copy_(from->bias);
  to->running_mean.copy_(from->running_mean);
  to->running_var.copy_(from->running_var);
}

// `steps` training steps of a synchronised and a reference BatchNorm2d with
// `options`, on inputs of `dtype` (a mean far from zero next to the spread, as
// after a first convolution); every result is compared within `tolerance`.
void CompareWithWholeBatch(const torch::nn::BatchNorm2dOptions& options, int steps, at::ScalarType dtype,
                           double tolerance) {
  ASSERT_NE(TestProcessGroup(), nullptr);
  torch::manual_seed(7);  // the same on every rank
  torch::nn::BatchNorm2d synced(options), reference(options);
  {
    torch::NoGradGuard no_grad;
    synced->weight.uniform_(0.5, 1.5);
    synced->bias.uniform_(-1, 1);
  }
  CopyState(synced, reference);
  const int64_t channels = options.num_features();
  const int64_t rank = TestProcessGroup()->rank();
  for (int step = 0; step < steps; ++step) {
    const at::Tensor whole = (torch::randn({kWholeBatch, channels, 5, 4}) * (step + 1) + 20).to(dtype);
    const at::Tensor upstream = torch::randn(whole.sizes()).to(dtype);
    at::Tensor mine = whole.narrow(0, RankStart(rank), kRankBatch[rank]).clone().requires_grad_(true);
    const at::Tensor y = SyncBatchNorm2d(*synced, mine, TestProcessGroup()->backend_ptr());
    (y.to(at::kFloat) * upstream.narrow(0, RankStart(rank), kRankBatch[rank]).to(at::kFloat)).sum().backward();

    at::Tensor all = whole.to(at::kFloat).requires_grad_(true);
    const at::Tensor y_all = reference->forward(all);
    (y_all * upstream.to(at::kFloat)).sum().backward();

    EXPECT_EQ(y.scalar_type(), dtype);
    const at::Tensor y_mine = y_all.narrow(0, RankStart(rank), kRankBatch[rank]);
    EXPECT_TRUE(torch::allclose(y.to(at::kFloat), y_mine, tolerance, tolerance))
        << "step " << step << ": output differs by " << (y.to(at::kFloat) - y_mine).abs().max().item<float>();
    const at::Tensor dx_mine = all.grad().narrow(0, RankStart(rank), kRankBatch[rank]);
    EXPECT_TRUE(torch::allclose(mine.grad().to(at::kFloat), dx_mine, tolerance, tolerance))
        << "step " << step << ": input gradient differs by "
        << (mine.grad().to(at::kFloat) - dx_mine).abs().max().item<float>();
    // Weight and bias gradients stay local; the gradient reducer sums them.
    EXPECT_TRUE(torch::allclose(SumOverRanks(synced->weight.grad()), reference->weight.grad(), tolerance, tolerance))
        << "step " << step;
    EXPECT_TRUE(torch::allclose(SumOverRanks(synced->bias.grad()), reference->bias.grad(), tolerance, tolerance))
        << "step " << step;
    EXPECT_TRUE(torch::allclose(synced->running_mean, reference->running_mean, tolerance, tolerance))
        << "step " << step << ": running mean " << synced->running_mean << " against " << reference->running_mean;
    EXPECT_TRUE(torch::allclose(synced->running_var, reference->running_var, tolerance, tolerance))
        << "step " << step << ": running variance " << synced->running_var << " against " << reference->running_var;
    EXPECT_EQ(synced->num_batches_tracked.item<int64_t>(), step + 1);
    synced->weight.mutable_grad() = at::Tensor();
    synced->bias.mutable_grad() = at::Tensor();
    reference->weight.mutable_grad() = at::Tensor();
    reference->bias.mutable_grad() = at::Tensor();
  }
}

TEST(SyncBatchNorm2dTest, MatchesOneBatchNormOnTheWholeBatch) {
  CompareWithWholeBatch(torch::nn::BatchNorm2dOptions(4), 3, at::kFloat, 1e-4);
}

TEST(SyncBatchNorm2dTest, WithoutMomentumKeepsTheCumulativeAverage) {
  CompareWithWholeBatch(torch::nn::BatchNorm2dOptions(4).momentum(c10::nullopt), 3, at::kFloat, 1e-4);
}

TEST(SyncBatchNorm2dTest, KeepsABfloat16InputsType) {
  CompareWithWholeBatch(torch::nn::BatchNorm2dOptions(4), 2, at::kBFloat16, 0.1);
}

TEST(SyncBatchNorm2dTest, InEvalModeIsTheModulesOwnForward) {
  ASSERT_NE(TestProcessGroup(), nullptr);
  torch::nn::BatchNorm2d bn(torch::nn::BatchNorm2dOptions(2));
  bn->eval();
  const at::Tensor x = torch::randn({2, 2, 3, 3});
  EXPECT_TRUE(torch::equal(SyncBatchNorm2d(*bn, x, TestProcessGroup()->backend_ptr()), bn->forward(x)));
  EXPECT_EQ(bn->num_batches_tracked.item<int64_t>(), 0);
}

TEST(SyncBatchNorm2dTest, RefusesAModuleWithoutRunningStatistics) {
  ASSERT_NE(TestProcessGroup(), nullptr);
  torch::nn::BatchNorm2d bn(torch::nn::BatchNorm2dOptions(2).track_running_stats(false));
  EXPECT_THROW(SyncBatchNorm2d(*bn, torch::randn({2, 2, 3, 3}), TestProcessGroup()->backend_ptr()), c10::Error);
}

}  // namespace
}  // namespace dlspeed
