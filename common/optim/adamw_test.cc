#include "common/optim/adamw.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace dlspeed {
namespace {

// The same steps with LibTorch's own (per-parameter) torch::optim::AdamW,
// which implements torch.optim.AdamW's update, end at the same parameters.
TEST(ForeachAdamWTest, MatchesTorchOptimAdamW) {
  torch::manual_seed(0);
  std::vector<torch::Tensor> ours = {torch::randn({4, 3}), torch::randn({5}), torch::randn({2, 2, 2})};
  std::vector<torch::Tensor> theirs;
  for (auto& p : ours) {
    p.requires_grad_();
    theirs.push_back(p.detach().clone().requires_grad_());
  }
  ForeachAdamW adamw(ours, {/*lr=*/0.01, /*beta1=*/0.9, /*beta2=*/0.99, /*eps=*/1e-6, /*weight_decay=*/0.1});
  torch::optim::AdamW reference(theirs, torch::optim::AdamWOptions(0.01).betas({0.9, 0.99}).eps(1e-6).weight_decay(0.1));
  for (int step = 0; step < 5; ++step) {
    const torch::Tensor target = torch::randn({1});
    adamw.ZeroGrad();
    reference.zero_grad();
    auto loss = [&](const std::vector<torch::Tensor>& ps) {
      torch::Tensor total = torch::zeros({});
      for (const auto& p : ps) total = total + (p * p).sum() * target + p.sum();
      return total;
    };
    loss(ours).backward();
    loss(theirs).backward();
    adamw.Step();
    reference.step();
  }
  for (size_t i = 0; i < ours.size(); ++i) EXPECT_TRUE(torch::allclose(ours[i], theirs[i], 1e-5, 1e-6)) << i;
}

TEST(ForeachAdamWTest, SkipsParametersWithoutGradients) {
  torch::Tensor a = torch::ones({2}, torch::requires_grad());
  torch::Tensor b = torch::ones({2}, torch::requires_grad());
  ForeachAdamW adamw({a, b}, {/*lr=*/0.1});
  (a * 2).sum().backward();
  adamw.Step();
  EXPECT_TRUE(b.equal(torch::ones({2})));
  EXPECT_FALSE(a.equal(torch::ones({2})));
}

TEST(LinearWarmupDecayTest, RisesThenFalls) {
  EXPECT_DOUBLE_EQ(LinearWarmupDecay(0, 10, 110), 0.0);
  EXPECT_DOUBLE_EQ(LinearWarmupDecay(5, 10, 110), 0.5);
  EXPECT_DOUBLE_EQ(LinearWarmupDecay(10, 10, 110), 1.0);
  EXPECT_DOUBLE_EQ(LinearWarmupDecay(60, 10, 110), 0.5);
  EXPECT_DOUBLE_EQ(LinearWarmupDecay(110, 10, 110), 0.0);
  EXPECT_DOUBLE_EQ(LinearWarmupDecay(3, 0, 10), 0.7);
}

}  // namespace
}  // namespace dlspeed
