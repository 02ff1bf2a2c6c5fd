// Checks the C++ ResNets against torchvision: tests/fixtures/resnet_torchvision.json
// holds torchvision's logits for closed-form weights and inputs that this test
// recomputes (tools/make_resnet_fixture.py documents the formulas).
#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "resnet/resnet.h"
#include "resnet/resnet_checkpoint.h"

namespace dlspeed {
namespace {

torch::Tensor DeterministicTensor(const torch::Tensor& like, int64_t index, const std::string& name) {
  const int64_t numel = like.numel();
  torch::Tensor s = torch::sin(torch::arange(numel, torch::kDouble) * 0.37 + 1.3 * index + 0.1);
  torch::Tensor values;
  auto ends_with = [&](const std::string& suffix) {
    return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  if (ends_with("running_var")) {
    values = 1.0 + 0.5 * s.abs();
  } else if (ends_with("running_mean") || ends_with("bias")) {
    values = 0.1 * s;
  } else if (like.dim() == 1) {
    values = 1.0 + 0.1 * s;
  } else {
    values = s * (1.5 / std::sqrt(static_cast<double>(numel / like.size(0))));
  }
  return values.reshape(like.sizes()).to(torch::kFloat);
}

nlohmann::json ReadFixture() {
  std::ifstream in("tests/fixtures/resnet_torchvision.json");
  return nlohmann::json::parse(in);
}

class TorchvisionParityTest : public ::testing::TestWithParam<int> {};

TEST_P(TorchvisionParityTest, LogitsMatchTorchvision) {
  const int depth = GetParam();
  const nlohmann::json expected = ReadFixture()["models"][std::to_string(depth)];
  ResNet model = *MakeResNet(depth);
  model->eval();
  EXPECT_EQ(CountParameters(*model), expected["parameters"].get<int64_t>());

  auto entries = StateDictEntries(*model);
  EXPECT_EQ(static_cast<int64_t>(entries.size()), expected["state_dict_keys"].get<int64_t>());
  std::vector<std::pair<std::string, torch::Tensor>> sorted;
  for (auto& entry : entries) {
    if (entry.first.find("num_batches_tracked") == std::string::npos) sorted.push_back(entry);
  }
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < sorted.size(); ++i) {
      sorted[i].second.copy_(DeterministicTensor(sorted[i].second, static_cast<int64_t>(i), sorted[i].first));
    }
  }
  torch::Tensor x = torch::sin(torch::arange(2 * 3 * 32 * 32, torch::kDouble) * 0.011).reshape({2, 3, 32, 32});
  torch::Tensor logits;
  {
    torch::NoGradGuard no_grad;
    logits = model->forward(x.to(torch::kFloat)).to(torch::kDouble);
  }
  const auto& rows = expected["logits"];
  ASSERT_EQ(rows.size(), 2u);
  for (int64_t n = 0; n < 2; ++n) {
    for (int64_t c = 0; c < 10; ++c) {
      const double want = rows[n][c].get<double>();
      EXPECT_NEAR(logits[n][c].item<double>(), want, 1e-4 * std::max(1.0, std::abs(want)))
          << "ResNet-" << depth << " logit [" << n << "][" << c << "]";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Depths, TorchvisionParityTest, ::testing::Values(18, 34, 50));

}  // namespace
}  // namespace dlspeed
