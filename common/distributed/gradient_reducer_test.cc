#include "common/distributed/gradient_reducer.h"

#include <memory>

#include <gtest/gtest.h>
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/cuda.h>
#include <torch/torch.h>

#include "common/distributed/launcher.h"
#include "common/distributed/process_group.h"

namespace dlspeed {
namespace {

// A real one-rank Gloo group: the reducer's bucketing, hooks and write-back
// run as in a job; the averaging across ranks is tested end to end in
// tests/resnet_ddp_test.cc.
std::unique_ptr<ProcessGroup> OneRankGroup() {
  RankEnv env;
  env.master_port = *FindFreePort();
  env.launcher = "test";
  absl::StatusOr<std::unique_ptr<ProcessGroup>> group = ProcessGroup::Create(env, {});
  EXPECT_TRUE(group.ok()) << group.status();
  return group.ok() ? std::move(*group) : nullptr;
}

TEST(GradientReducerTest, BucketsFromTheLastParameterWithASmallFirstBucket) {
  std::unique_ptr<ProcessGroup> group = OneRankGroup();
  ASSERT_NE(group, nullptr);
  // 4 float tensors of 256 KiB each, then one of 1 MiB.
  std::vector<torch::Tensor> params;
  for (int i = 0; i < 4; ++i) params.push_back(torch::zeros({65536}, torch::requires_grad()));
  params.push_back(torch::zeros({262144}, torch::requires_grad()));
  ReducerOptions options;
  options.first_bucket_cap_bytes = 512 << 10;
  options.bucket_cap_bytes = 1 << 20;
  options.own_bucket_min_bytes = 2 << 20;  // every gradient shares a bucket
  GradientReducer reducer(params, group->backend_ptr(), options);
  // The last parameter alone fills the first bucket; the other four the next 1 MiB.
  const std::vector<std::vector<int64_t>> expected = {{4}, {3, 2, 1, 0}};
  EXPECT_EQ(reducer.bucket_indices(), expected);

  // Without the large one, the first bucket closes at 512 KiB (two
  // parameters), not at the 1 MiB of the others: a first-bucket cap that was
  // ignored would give one bucket of four.
  params.pop_back();
  GradientReducer small_first(params, group->backend_ptr(), options);
  const std::vector<std::vector<int64_t>> two_pairs = {{3, 2}, {1, 0}};
  EXPECT_EQ(small_first.bucket_indices(), two_pairs);
}

// Large CPU gradients are buckets of their own, placed where they complete in
// the backward order: ahead of a shared bucket that fills after them.
TEST(GradientReducerTest, LargeCpuGradientsAreOwnBucketsInBackwardOrder) {
  std::unique_ptr<ProcessGroup> group = OneRankGroup();
  ASSERT_NE(group, nullptr);
  // Small, large, small, large, small (floats: 1 KiB and 64 KiB).
  std::vector<torch::Tensor> params;
  for (int64_t numel : {256, 16384, 256, 16384, 256}) params.push_back(torch::zeros({numel}, torch::requires_grad()));
  ReducerOptions options;
  options.own_bucket_min_bytes = 64 << 10;
  GradientReducer reducer(params, group->backend_ptr(), options);
  const std::vector<std::vector<int64_t>> expected = {{3}, {1}, {4, 2, 0}};
  EXPECT_EQ(reducer.bucket_indices(), expected);
}

// A large gradient is allreduced where autograd left it: after FinishBackward
// the parameter holds the same tensor, not a copy; unused, it gets zeros.
TEST(GradientReducerTest, LargeGradientsStayWhereAutogradLeftThem) {
  std::unique_ptr<ProcessGroup> group = OneRankGroup();
  ASSERT_NE(group, nullptr);
  torch::manual_seed(0);
  torch::nn::Linear used(64, 32), unused(64, 32);  // 8 KiB weights, 128 B biases
  std::vector<torch::Tensor> params = used->parameters();
  for (const torch::Tensor& p : unused->parameters()) params.push_back(p);
  ReducerOptions options;
  options.own_bucket_min_bytes = 8 << 10;
  GradientReducer reducer(params, group->backend_ptr(), options);
  ASSERT_EQ(reducer.bucket_indices().size(), 3u);  // two weights alone, the biases shared
  const torch::Tensor x = torch::randn({5, 64});
  for (int step = 0; step < 2; ++step) {
    for (torch::Tensor& p : params) p.mutable_grad() = torch::Tensor();
    used->forward(x).square().sum().backward();
    const torch::Tensor autograds = used->weight.grad();
    const torch::Tensor expected = autograds.clone();
    reducer.FinishBackward();
    EXPECT_TRUE(used->weight.grad().is_same(autograds)) << step;
    EXPECT_TRUE(used->weight.grad().equal(expected)) << step;
    ASSERT_TRUE(unused->weight.grad().defined());
    EXPECT_EQ(unused->weight.grad().sizes(), unused->weight.sizes());
    EXPECT_EQ(unused->weight.grad().abs().sum().item<float>(), 0.0f);
  }
  EXPECT_EQ(reducer.stats().allreduces, 6);
}

// Two steps of a used and an unused Linear on `device`: the averaged
// gradients are the backward's own, left as views into the one bucket, and
// the unused parameters get zeros. On the CPU each gradient is copied in as it
// arrives, unless `batch_cpu_copies`; on a GPU a bucket's copies go in one
// _foreach_copy_.
void CheckViewsAndZeros(const torch::Device& device, bool batch_cpu_copies = false) {
  std::unique_ptr<ProcessGroup> group = OneRankGroup();
  ASSERT_NE(group, nullptr);
  torch::manual_seed(0);
  torch::nn::Linear used(4, 3), unused(4, 3);
  used->to(device);
  unused->to(device);
  std::vector<torch::Tensor> params = used->parameters();
  for (const torch::Tensor& p : unused->parameters()) params.push_back(p);
  ReducerOptions options;
  options.batch_cpu_copies = batch_cpu_copies;
  GradientReducer reducer(params, group->backend_ptr(), options);

  const torch::Tensor x = torch::randn({5, 4}, device);
  torch::Tensor view;
  for (int step = 0; step < 2; ++step) {  // the second step reuses the buckets
    for (torch::Tensor& p : params) p.mutable_grad() = torch::Tensor();
    used->forward(x).square().sum().backward();
    const torch::Tensor expected_weight_grad = used->weight.grad().clone();
    const torch::Tensor expected_bias_grad = used->bias.grad().clone();
    reducer.FinishBackward();
    EXPECT_TRUE(used->weight.grad().equal(expected_weight_grad)) << step;
    EXPECT_TRUE(used->bias.grad().equal(expected_bias_grad)) << step;
    EXPECT_TRUE(unused->weight.grad().defined());
    EXPECT_EQ(unused->weight.grad().abs().sum().item<float>(), 0.0f);
    if (step == 1) {
      EXPECT_TRUE(used->weight.grad().is_same(view));  // the same bucket view each step
    }
    view = used->weight.grad();
  }
  EXPECT_EQ(reducer.stats().steps, 2);
  EXPECT_EQ(reducer.stats().allreduces, 2);  // one bucket per step
}

TEST(GradientReducerTest, GradientsArriveAsBucketViewsAndUnusedParametersGetZeros) {
  CheckViewsAndZeros(torch::kCPU);
}

TEST(GradientReducerTest, BatchedCopiesOnTheCpuGiveTheSameGradients) {
  CheckViewsAndZeros(torch::kCPU, /*batch_cpu_copies=*/true);
}

// Run by tools/gpu_check.sh's gpu-tests stage on a GPU host (Gloo takes CUDA
// tensors too).
TEST(GradientReducerTest, OnCudaBatchedCopiesGiveTheSameGradients) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no GPU";
  CheckViewsAndZeros(torch::kCUDA);
}

class GradientReducerCopyTest : public ::testing::TestWithParam<bool> {};

TEST_P(GradientReducerCopyTest, GradientsAccumulatedWithoutResetStayInTheirBuckets) {
  std::unique_ptr<ProcessGroup> group = OneRankGroup();
  ASSERT_NE(group, nullptr);
  torch::manual_seed(0);
  torch::nn::Linear linear(4, 3);
  std::vector<torch::Tensor> params = linear->parameters();
  ReducerOptions options;
  options.batch_cpu_copies = GetParam();
  GradientReducer reducer(params, group->backend_ptr(), options);
  const torch::Tensor x = torch::randn({5, 4});
  linear->forward(x).square().sum().backward();
  const torch::Tensor once = linear->weight.grad().clone();
  reducer.FinishBackward();
  const torch::Tensor view = linear->weight.grad();
  // No zero_grad: autograd adds the second backward into the bucket's view.
  linear->forward(x).square().sum().backward();
  EXPECT_TRUE(linear->weight.grad().is_same(view));
  reducer.FinishBackward();
  EXPECT_TRUE(linear->weight.grad().is_same(view));
  EXPECT_TRUE(linear->weight.grad().allclose(2 * once));
  EXPECT_EQ(reducer.stats().allreduces, 2);
}

INSTANTIATE_TEST_SUITE_P(CopyEachOrBatched, GradientReducerCopyTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "BatchedCopies" : "CopyEachOnArrival";
                         });

TEST(GradientReducerTest, KeepsChannelsLastStrides) {
  std::unique_ptr<ProcessGroup> group = OneRankGroup();
  ASSERT_NE(group, nullptr);
  torch::Tensor weight = torch::randn({8, 3, 3, 3}).contiguous(at::MemoryFormat::ChannelsLast).requires_grad_();
  GradientReducer reducer({weight}, group->backend_ptr());
  torch::conv2d(torch::randn({2, 3, 8, 8}).contiguous(at::MemoryFormat::ChannelsLast), weight).sum().backward();
  const torch::Tensor expected = weight.grad().clone();
  reducer.FinishBackward();
  EXPECT_EQ(weight.grad().strides(), weight.strides());
  EXPECT_TRUE(weight.grad().allclose(expected));
}

}  // namespace
}  // namespace dlspeed
