#include "common/intra_op_threads.h"

#include <thread>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

namespace dlspeed {
namespace {

TEST(IntraOpThreadsTest, OnlyTheCallingThreadDropsToOneThread) {
  at::set_num_threads(2);
  ASSERT_EQ(at::get_num_threads(), 2);
  int before = 0, after = 0, other = 0;
  bool limited = false;
  at::Tensor sum;
  std::thread worker([&] {
    before = at::get_num_threads();
    limited = UseOneIntraOpThreadHere();
    after = at::get_num_threads();
    // A large operator, parallel elsewhere, still computes the right thing.
    sum = at::ones({1 << 20}).mul(2).sum();
    after = std::max(after, at::get_num_threads());
  });
  worker.join();
  std::thread bystander([&] { other = at::get_num_threads(); });
  bystander.join();
  ASSERT_TRUE(limited) << "LibTorch here does not run on OpenMP";
  EXPECT_EQ(before, 2);
  EXPECT_EQ(after, 1);
  EXPECT_EQ(sum.item<float>(), 2.0f * (1 << 20));
  EXPECT_EQ(at::get_num_threads(), 2);  // this thread
  EXPECT_EQ(other, 2);                  // a new thread
}

}  // namespace
}  // namespace dlspeed
