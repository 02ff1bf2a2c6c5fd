// GradientReducer and BroadcastFromRankZero across two real processes with a
// Gloo group (two_rank_test_main.h): the gradients each rank ends a backward
// with are the exact mean of the ranks' own, in shared buckets and in buckets
// of their own, with and without overlap, with a shared bucket's copies made
// as each gradient arrives or together (as on a GPU), a parameter that one
// rank leaves unused counting as zeros there; and the broadcast gives every
// rank rank 0's weights.
#include "common/distributed/gradient_reducer.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/torch.h>

#include "common/distributed/process_group.h"
#include "common/distributed/two_rank_test_main.h"

namespace dlspeed {
namespace {

// Parameters of 256 floats (1 KiB) and 16384 floats (64 KiB), in that order
// repeated: with own_bucket_min_bytes 64 KiB the large ones are buckets of
// their own and the small ones share one.
std::vector<torch::Tensor> Parameters() {
  std::vector<torch::Tensor> params;
  for (int64_t numel : {256, 16384, 256, 16384, 256}) params.push_back(torch::zeros({numel}, torch::requires_grad()));
  return params;
}

// What a rank's backward gives parameter `i` at `step`: small integers times
// (rank + 1), so that the mean over the ranks is exact in float.
torch::Tensor LocalGradient(int64_t i, int64_t step, int64_t rank, int64_t numel) {
  return (torch::arange(numel, torch::kFloat).remainder(7) + static_cast<double>(i + step)) *
         static_cast<double>(rank + 1);
}

void ExpectMeanGradients(bool overlap, bool batch_cpu_copies = false) {
  ProcessGroup* group = TestProcessGroup();
  ASSERT_NE(group, nullptr);
  const int64_t rank = group->rank();
  std::vector<torch::Tensor> params = Parameters();
  ReducerOptions options;
  options.own_bucket_min_bytes = 64 << 10;
  options.overlap = overlap;
  options.batch_cpu_copies = batch_cpu_copies;
  GradientReducer reducer(params, group->backend_ptr(), options);
  ASSERT_EQ(reducer.bucket_indices().size(), 3u) << "two buckets of their own and one shared";
  constexpr int64_t kUnusedOnRank1 = 2;  // a small parameter, in the shared bucket
  for (int64_t step = 0; step < 3; ++step) {  // later steps reuse the buckets
    for (torch::Tensor& p : params) p.mutable_grad() = torch::Tensor();
    // loss = sum_i <p_i, g_i>: its gradient for p_i is g_i.
    torch::Tensor loss = torch::zeros({});
    for (int64_t i = 0; i < static_cast<int64_t>(params.size()); ++i) {
      if (rank == 1 && i == kUnusedOnRank1) continue;
      loss = loss + (params[i] * LocalGradient(i, step, rank, params[i].numel())).sum();
    }
    loss.backward();
    reducer.FinishBackward();
    for (int64_t i = 0; i < static_cast<int64_t>(params.size()); ++i) {
      const int64_t n = params[i].numel();
      torch::Tensor sum = LocalGradient(i, step, 0, n);
      if (i != kUnusedOnRank1) sum = sum + LocalGradient(i, step, 1, n);
      const torch::Tensor expected = sum / kTestRanks;
      ASSERT_TRUE(params[i].grad().defined()) << "parameter " << i;
      EXPECT_TRUE(params[i].grad().equal(expected))
          << "step " << step << ", parameter " << i << " (" << n << " floats): largest difference "
          << (params[i].grad() - expected).abs().max().item<float>();
    }
  }
  EXPECT_EQ(reducer.stats().steps, 3);
  EXPECT_EQ(reducer.stats().allreduces, 9);
}

TEST(GradientReducerTwoRanksTest, EveryRankEndsWithTheMeanGradient) { ExpectMeanGradients(/*overlap=*/true); }

TEST(GradientReducerTwoRanksTest, WithoutOverlapTheSameMean) { ExpectMeanGradients(/*overlap=*/false); }

// The shared bucket's copies made together when it is complete, as on a GPU.
TEST(GradientReducerTwoRanksTest, WithBatchedCopiesTheSameMean) {
  ExpectMeanGradients(/*overlap=*/true, /*batch_cpu_copies=*/true);
}

TEST(GradientReducerTwoRanksTest, BroadcastGivesEveryRankRankZerosTensors) {
  ProcessGroup* group = TestProcessGroup();
  ASSERT_NE(group, nullptr);
  const int64_t rank = group->rank();
  // Each rank starts from its own values, in two dtypes (one broadcast each).
  auto made_by = [](int64_t r) {
    return std::vector<torch::Tensor>{torch::full({3, 4}, 1.5 + static_cast<double>(r)),
                                      torch::arange(5, torch::kLong) * (r + 2), torch::full({7}, -2.0 * (r + 1))};
  };
  std::vector<torch::Tensor> tensors = made_by(rank);
  BroadcastFromRankZero(tensors, group->backend());
  const std::vector<torch::Tensor> expected = made_by(0);
  for (size_t i = 0; i < tensors.size(); ++i) {
    EXPECT_TRUE(tensors[i].equal(expected[i])) << "rank " << rank << ", tensor " << i << ":\n" << tensors[i];
  }
}

}  // namespace
}  // namespace dlspeed
