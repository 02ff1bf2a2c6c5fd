#include "common/optim/adamw.h"

#include <limits>

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace dlspeed {
namespace {

class AdamWTest : public ::testing::TestWithParam<OptimizerKernels> {};

// The same steps with LibTorch's own (per-parameter) torch::optim::AdamW,
// which implements torch.optim.AdamW's update, end at the same parameters.
TEST_P(AdamWTest, MatchesTorchOptimAdamW) {
  torch::manual_seed(0);
  std::vector<torch::Tensor> ours = {torch::randn({4, 3}), torch::randn({5}), torch::randn({2, 2, 2})};
  std::vector<torch::Tensor> theirs;
  for (auto& p : ours) {
    p.requires_grad_();
    theirs.push_back(p.detach().clone().requires_grad_());
  }
  AdamW adamw(ours, {/*lr=*/0.01, /*beta1=*/0.9, /*beta2=*/0.99, /*eps=*/1e-6, /*weight_decay=*/0.1, GetParam()});
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
  for (size_t i = 0; i < ours.size(); ++i) {
    EXPECT_TRUE(torch::allclose(ours[i], theirs[i], 1e-5, 1e-6)) << i;
    EXPECT_EQ(adamw.state(i).step, 5);
  }
}

TEST_P(AdamWTest, SkipsParametersWithoutGradients) {
  torch::Tensor a = torch::ones({2}, torch::requires_grad());
  torch::Tensor b = torch::ones({2}, torch::requires_grad());
  AdamWOptions options{/*lr=*/0.1};
  options.kernels = GetParam();
  AdamW adamw({a, b}, options);
  (a * 2).sum().backward();
  adamw.Step();
  EXPECT_TRUE(b.equal(torch::ones({2})));
  EXPECT_FALSE(a.equal(torch::ones({2})));
  EXPECT_EQ(adamw.state(0).step, 1);
  EXPECT_EQ(adamw.state(1).step, 0);
}

// State saved from one run and set into a fresh optimizer continues exactly
// as the first optimizer does (what a checkpoint relies on).
TEST_P(AdamWTest, StateCarriesOver) {
  torch::manual_seed(3);
  torch::Tensor a = torch::randn({6}, torch::requires_grad());
  torch::Tensor b = a.detach().clone().requires_grad_(true);
  AdamWOptions options{/*lr=*/0.05};
  options.kernels = GetParam();
  AdamW first({a}, options);
  for (int step = 0; step < 3; ++step) {
    a.mutable_grad() = torch::randn({6});
    first.Step();
  }
  b.detach().copy_(a.detach());
  AdamW second({b}, options);
  const AdamW::ParamState state = first.state(0);
  second.set_state(0, {state.exp_avg.clone(), state.exp_avg_sq.clone(), state.step});
  const torch::Tensor g = torch::randn({6});
  a.mutable_grad() = g.clone();
  b.mutable_grad() = g.clone();
  first.Step();
  second.Step();
  EXPECT_TRUE(torch::allclose(a, b, 1e-6, 1e-7));
  EXPECT_EQ(second.state(0).step, 4);
}

INSTANTIATE_TEST_SUITE_P(Kernels, AdamWTest, ::testing::Values(OptimizerKernels::kFused, OptimizerKernels::kForeach),
                         [](const auto& info) { return OptimizerKernelsName(info.param); });

// The GradScaler's inputs: a skipped step (found_inf 1) changes neither the
// parameter, its moments nor its step count; scaled gradients with their
// grad_scale give the unscaled update.
TEST(FusedAdamWTest, UnscalesAndSkipsInsideTheKernel) {
  torch::manual_seed(4);
  torch::Tensor a = torch::randn({3, 4}, torch::requires_grad());
  torch::Tensor b = a.detach().clone().requires_grad_(true);
  AdamW fused({a}, {0.01, 0.9, 0.999, 1e-8, 0.01, OptimizerKernels::kFused});
  AdamW plain({b}, {0.01, 0.9, 0.999, 1e-8, 0.01, OptimizerKernels::kForeach});
  const torch::Tensor scale = torch::full({}, 1024.0f);
  for (int step = 0; step < 4; ++step) {
    const torch::Tensor g = torch::randn({3, 4});
    if (step == 1) {
      const torch::Tensor before = a.detach().clone();
      a.mutable_grad() = torch::full({3, 4}, std::numeric_limits<float>::quiet_NaN());
      fused.Step(scale, torch::ones({}));
      EXPECT_TRUE(torch::equal(a, before));
      EXPECT_EQ(fused.state(0).step, 1);
      EXPECT_TRUE(torch::equal(fused.state(0).exp_avg, plain.state(0).exp_avg));
    }
    a.mutable_grad() = g * 1024;
    b.mutable_grad() = g.clone();
    fused.Step(scale, torch::zeros({}));
    plain.Step();
  }
  EXPECT_TRUE(torch::allclose(a, b, 1e-5, 1e-6));
  EXPECT_EQ(fused.state(0).step, 4);
}

TEST(FusedAdamWTest, ForeachRefusesTheScalersInputs) {
  torch::Tensor p = torch::ones({2}, torch::requires_grad());
  p.mutable_grad() = torch::ones({2});
  AdamW adamw({p}, {0.1, 0.9, 0.999, 1e-8, 0.0, OptimizerKernels::kForeach});
  EXPECT_THROW(adamw.Step(torch::ones({}), torch::zeros({})), c10::Error);
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
