#include "common/optim/sgd.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace dlspeed {
namespace {

class SgdTest : public ::testing::TestWithParam<OptimizerKernels> {
 protected:
  SgdOptions Options(double lr, double momentum, double weight_decay) const {
    SgdOptions options{lr, momentum, weight_decay};
    options.kernels = GetParam();
    return options;
  }
};

std::vector<torch::Tensor> Params() {
  return {torch::randn({4, 3}, torch::requires_grad()), torch::randn({5}, torch::requires_grad()),
          torch::randn({2, 2, 3, 3}, torch::requires_grad())};
}

std::vector<torch::Tensor> Copies(const std::vector<torch::Tensor>& params) {
  std::vector<torch::Tensor> copies;
  for (const auto& p : params) copies.push_back(p.detach().clone().requires_grad_(true));
  return copies;
}

// Runs `steps` updates with the same synthetic gradients through both
// optimizers and compares the parameters.
TEST_P(SgdTest, MatchesTorchOptimSgd) {
  for (double momentum : {0.9, 0.0}) {
    torch::manual_seed(0);
    std::vector<torch::Tensor> a = Params();
    std::vector<torch::Tensor> b = Copies(a);
    Sgd ours(a, Options(/*lr=*/0.1, momentum, /*weight_decay=*/5e-4));
    torch::optim::SGD reference(b, torch::optim::SGDOptions(0.1).momentum(momentum).weight_decay(5e-4));
    for (int step = 0; step < 5; ++step) {
      ours.ZeroGrad();
      reference.zero_grad();
      for (size_t i = 0; i < a.size(); ++i) {
        torch::Tensor g = torch::randn(a[i].sizes());
        a[i].mutable_grad() = g.clone();
        b[i].mutable_grad() = g.clone();
      }
      ours.Step();
      reference.step();
    }
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_TRUE(torch::allclose(a[i], b[i], /*rtol=*/1e-5, /*atol=*/1e-6))
          << "parameter " << i << ", momentum " << momentum;
    }
  }
}

TEST_P(SgdTest, SkipsParametersWithoutGradient) {
  torch::Tensor p = torch::ones({3}, torch::requires_grad());
  torch::Tensor q = torch::ones({3}, torch::requires_grad());
  Sgd sgd({p, q}, Options(/*lr=*/0.5, /*momentum=*/0.9, /*weight_decay=*/0.0));
  p.mutable_grad() = torch::full({3}, 2.0);
  sgd.Step();
  EXPECT_TRUE(torch::allclose(p, torch::zeros({3})));
  EXPECT_TRUE(torch::allclose(q, torch::ones({3})));
  EXPECT_TRUE(sgd.momentum_buffers()[0].defined());
  EXPECT_FALSE(sgd.momentum_buffers()[1].defined());
}

TEST_P(SgdTest, ZeroGradSetsGradientsToNone) {
  torch::Tensor p = torch::ones({2}, torch::requires_grad());
  Sgd sgd({p}, Options(0.1, 0.9, 0.0));
  (p * 3).sum().backward();
  ASSERT_TRUE(p.grad().defined());
  sgd.ZeroGrad();
  EXPECT_FALSE(p.grad().defined());
}

// A channels_last weight whose gradient (or checkpointed momentum) is laid out
// contiguously: the fused kernel walks flat memory, so a mismatch would mix
// elements up; both kernels must give torch.optim.SGD's result.
TEST_P(SgdTest, GradientLaidOutUnlikeTheParameter) {
  torch::manual_seed(1);
  torch::Tensor a = torch::randn({3, 4, 2, 5}).contiguous(at::MemoryFormat::ChannelsLast).requires_grad_(true);
  torch::Tensor b = a.detach().clone().requires_grad_(true);
  Sgd ours({a}, Options(0.1, 0.9, 5e-4));
  torch::optim::SGD reference({b}, torch::optim::SGDOptions(0.1).momentum(0.9).weight_decay(5e-4));
  for (int step = 0; step < 3; ++step) {
    torch::Tensor g = torch::randn(a.sizes());  // contiguous, unlike `a`
    a.mutable_grad() = g.clone();
    b.mutable_grad() = g.clone();
    if (step == 1) ours.set_momentum_buffer(0, ours.momentum_buffers()[0].contiguous());
    ours.Step();
    reference.step();
  }
  EXPECT_TRUE(torch::allclose(a, b, 1e-5, 1e-6));
}

INSTANTIATE_TEST_SUITE_P(Kernels, SgdTest, ::testing::Values(OptimizerKernels::kFused, OptimizerKernels::kForeach),
                         [](const auto& info) { return OptimizerKernelsName(info.param); });

// The GradScaler's inputs: gradients scaled by 8 with grad_scale 8 give the
// unscaled update (and leave the gradients unscaled); found_inf 1 leaves the
// parameters and momentum untouched, and the first real step afterwards is
// still a first step.
TEST(FusedSgdTest, UnscalesAndSkipsInsideTheKernel) {
  torch::manual_seed(2);
  std::vector<torch::Tensor> a = Params();
  std::vector<torch::Tensor> b = Copies(a);
  Sgd fused(a, {0.1, 0.9, 5e-4, OptimizerKernels::kFused});
  Sgd plain(b, {0.1, 0.9, 5e-4, OptimizerKernels::kForeach});
  const torch::Tensor scale = torch::full({}, 8.0f);
  const std::vector<torch::Tensor> before = Copies(a);

  for (auto& p : a) p.mutable_grad() = torch::full(p.sizes(), std::numeric_limits<float>::infinity());
  fused.Step(scale, torch::ones({}));  // skipped
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], before[i])) << "parameter " << i;

  for (int step = 0; step < 3; ++step) {
    for (size_t i = 0; i < a.size(); ++i) {
      torch::Tensor g = torch::randn(a[i].sizes());
      a[i].mutable_grad() = g * 8;
      b[i].mutable_grad() = g.clone();
    }
    fused.Step(scale, torch::zeros({}));
    plain.Step();
    for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::allclose(a[i].grad(), b[i].grad(), 1e-6, 1e-7));
  }
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(torch::allclose(a[i], b[i], 1e-5, 1e-6)) << "parameter " << i;
    EXPECT_TRUE(torch::allclose(fused.momentum_buffers()[i], plain.momentum_buffers()[i], 1e-5, 1e-6));
  }
}

// A 1x1 convolution's channels_last weight and its contiguous gradient
// differ only in the strides of size-1 dimensions, which the kernel never
// uses: the gradient is updated in place (unscaled), not copied.
TEST(FusedSgdTest, StridesOfSize1DimensionsDoNotForceACopy) {
  torch::Tensor w = torch::empty_strided({4, 3, 1, 1}, {3, 1, 3, 3});  // channels_last strides
  w.copy_(torch::randn({4, 3, 1, 1}));
  w.requires_grad_(true);
  const torch::Tensor before = w.detach().clone();
  const torch::Tensor grad = torch::full({4, 3, 1, 1}, 8.0f);
  ASSERT_NE(grad.strides(), w.strides());
  w.mutable_grad() = grad;
  Sgd sgd({w}, {/*lr=*/0.5, /*momentum=*/0.9, /*weight_decay=*/0.0, OptimizerKernels::kFused});
  sgd.Step(torch::full({}, 8.0f), torch::zeros({}));
  EXPECT_TRUE(w.grad().is_same(grad));
  EXPECT_TRUE(torch::equal(grad, torch::ones({4, 3, 1, 1})));  // unscaled where it lies
  EXPECT_TRUE(torch::allclose(w, before - 0.5));
}

TEST(FusedSgdTest, ForeachRefusesTheScalersInputs) {
  torch::Tensor p = torch::ones({2}, torch::requires_grad());
  p.mutable_grad() = torch::ones({2});
  Sgd sgd({p}, {0.1, 0.9, 0.0, OptimizerKernels::kForeach});
  EXPECT_THROW(sgd.Step(torch::ones({}), torch::zeros({})), c10::Error);
}

TEST(OptimizerKernelsTest, ParsesTheFlag) {
  EXPECT_EQ(*ParseOptimizerKernels("optimizer_kernels", "fused"), OptimizerKernels::kFused);
  EXPECT_EQ(*ParseOptimizerKernels("optimizer_kernels", "foreach"), OptimizerKernels::kForeach);
  const auto bad = ParseOptimizerKernels("optimizer_kernels", "apex");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "--optimizer_kernels: unknown optimizer kernels 'apex' (choose fused or foreach)");
}

}  // namespace
}  // namespace dlspeed
