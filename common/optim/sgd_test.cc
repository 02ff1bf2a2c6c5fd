#include "common/optim/sgd.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace dlspeed {
namespace {

// Runs `steps` updates with the same synthetic gradients through both
// optimizers and compares the parameters.
TEST(ForeachSgdTest, MatchesTorchOptimSgd) {
  torch::manual_seed(0);
  std::vector<torch::Tensor> a = {torch::randn({4, 3}, torch::requires_grad()),
                                  torch::randn({5}, torch::requires_grad()),
                                  torch::randn({2, 2, 3, 3}, torch::requires_grad())};
  std::vector<torch::Tensor> b;
  for (auto& p : a) b.push_back(p.detach().clone().requires_grad_(true));
  ForeachSgd ours(a, {/*lr=*/0.1, /*momentum=*/0.9, /*weight_decay=*/5e-4});
  torch::optim::SGD reference(b, torch::optim::SGDOptions(0.1).momentum(0.9).weight_decay(5e-4));
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
    EXPECT_TRUE(torch::allclose(a[i], b[i], /*rtol=*/1e-5, /*atol=*/1e-6)) << "parameter " << i;
  }
}

TEST(ForeachSgdTest, SkipsParametersWithoutGradient) {
  torch::Tensor p = torch::ones({3}, torch::requires_grad());
  torch::Tensor q = torch::ones({3}, torch::requires_grad());
  ForeachSgd sgd({p, q}, {/*lr=*/0.5, /*momentum=*/0.0, /*weight_decay=*/0.0});
  p.mutable_grad() = torch::full({3}, 2.0);
  sgd.Step();
  EXPECT_TRUE(torch::allclose(p, torch::zeros({3})));
  EXPECT_TRUE(torch::allclose(q, torch::ones({3})));
  EXPECT_FALSE(sgd.momentum_buffers()[1].defined());
}

TEST(ForeachSgdTest, ZeroGradSetsGradientsToNone) {
  torch::Tensor p = torch::ones({2}, torch::requires_grad());
  ForeachSgd sgd({p}, {});
  (p * 3).sum().backward();
  ASSERT_TRUE(p.grad().defined());
  sgd.ZeroGrad();
  EXPECT_FALSE(p.grad().defined());
}

}  // namespace
}  // namespace dlspeed
