#include "common/amp.h"

#include <limits>

#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include "common/optim/sgd.h"

namespace dlspeed {
namespace {

TEST(AmpTest, ParsesPrecisionNames) {
  for (Precision p : {Precision::kFp32, Precision::kFp16, Precision::kBf16}) {
    absl::StatusOr<Precision> parsed = ParsePrecision(PrecisionName(p));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(*parsed, p);
  }
  absl::StatusOr<Precision> bad = ParsePrecision("fp8");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("fp8"), std::string::npos);
  EXPECT_NE(bad.status().message().find("fp32, fp16 or bf16"), std::string::npos);
}

TEST(AmpTest, AutocastScopeMakesCpuMatmulBf16AndRestores) {
  const torch::Tensor a = torch::randn({4, 4});
  const torch::Tensor b = torch::randn({4, 4});
  {
    AutocastScope autocast(torch::kCPU, Precision::kBf16);
    EXPECT_TRUE(at::autocast::is_autocast_enabled(at::kCPU));
    EXPECT_EQ(torch::matmul(a, b).scalar_type(), torch::kBFloat16);
    {
      AutocastScope inner(torch::kCPU, Precision::kFp32);  // no-op
      EXPECT_EQ(torch::matmul(a, b).scalar_type(), torch::kBFloat16);
    }
    {
      AutocastScope inner(torch::kCPU, Precision::kFp16);
      EXPECT_EQ(torch::matmul(a, b).scalar_type(), torch::kHalf);
    }
    EXPECT_EQ(torch::matmul(a, b).scalar_type(), torch::kBFloat16);  // outer dtype restored
  }
  EXPECT_FALSE(at::autocast::is_autocast_enabled(at::kCPU));
  EXPECT_EQ(torch::matmul(a, b).scalar_type(), torch::kFloat);
}

// A one-parameter model whose scaled loss gives gradient `scale * x`.
struct Model {
  torch::Tensor w = torch::zeros({3}, torch::requires_grad());
  void Backward(GradScaler& scaler, const torch::Tensor& x) {
    w.mutable_grad() = torch::Tensor();  // set to none
    scaler.Scale((w * x).sum()).backward();
  }
};

TEST(AmpTest, ScaleGrowsAfterGrowthIntervalCleanSteps) {
  GradScaler scaler({/*init_scale=*/4.0, /*growth_factor=*/2.0, /*backoff_factor=*/0.5,
                     /*growth_interval=*/3});
  Model model;
  int steps = 0;
  for (int i = 0; i < 3; ++i) {
    EXPECT_DOUBLE_EQ(scaler.scale(), 4.0) << i;
    model.Backward(scaler, torch::ones({3}));
    EXPECT_TRUE(scaler.Step({model.w}, [&] { ++steps; }));
    EXPECT_TRUE(torch::equal(model.w.grad(), torch::ones({3})));  // unscaled
    scaler.Update();
  }
  EXPECT_EQ(steps, 3);
  EXPECT_DOUBLE_EQ(scaler.scale(), 8.0);
  EXPECT_DOUBLE_EQ(scaler.State().at("growth_tracker"), 0.0);
}

TEST(AmpTest, InfOrNanGradientSkipsStepAndBacksOff) {
  GradScaler scaler({/*init_scale=*/1024.0, 2.0, 0.5, /*growth_interval=*/3});
  Model model;
  // One clean step so that the growth tracker is non-zero.
  model.Backward(scaler, torch::ones({3}));
  EXPECT_TRUE(scaler.Step({model.w}, [] {}));
  scaler.Update();
  EXPECT_DOUBLE_EQ(scaler.State().at("growth_tracker"), 1.0);

  double expected = 1024.0;
  for (float bad : {std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN()}) {
    model.Backward(scaler, torch::ones({3}));
    model.w.mutable_grad()[1] = bad;
    bool stepped = false;
    EXPECT_FALSE(scaler.Step({model.w}, [&] { stepped = true; })) << bad;
    EXPECT_FALSE(stepped);
    scaler.Update();
    expected /= 2;
    EXPECT_DOUBLE_EQ(scaler.scale(), expected) << bad;
    EXPECT_DOUBLE_EQ(scaler.State().at("growth_tracker"), 0.0);
  }
}

// The same contract on a GPU, where the inf check and the scale update are
// CUDA kernels and autocast gives fp16. Skipped without a GPU.
TEST(AmpTest, OnAGpuFp16AutocastAndTheScalerWork) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no GPU here";
  const auto cuda = torch::TensorOptions().device(torch::kCUDA);
  {
    AutocastScope autocast(torch::kCUDA, Precision::kFp16);
    EXPECT_EQ(torch::matmul(torch::randn({4, 4}, cuda), torch::randn({4, 4}, cuda)).scalar_type(), torch::kHalf);
  }
  GradScaler scaler({/*init_scale=*/1024.0, 2.0, 0.5, /*growth_interval=*/1});
  torch::Tensor w = torch::zeros({3}, cuda.requires_grad(true));
  scaler.Scale((w * torch::ones({3}, cuda)).sum()).backward();
  EXPECT_TRUE(scaler.Step({w}, [] {}));
  EXPECT_TRUE(torch::equal(w.grad().cpu(), torch::ones({3})));  // unscaled
  scaler.Update();
  EXPECT_DOUBLE_EQ(scaler.scale(), 2048.0);  // one clean step grows it

  w.mutable_grad() = torch::Tensor();
  scaler.Scale((w * torch::ones({3}, cuda)).sum()).backward();
  w.mutable_grad()[1] = std::numeric_limits<float>::infinity();
  bool stepped = false;
  EXPECT_FALSE(scaler.Step({w}, [&] { stepped = true; }));
  EXPECT_FALSE(stepped);
  scaler.Update();
  EXPECT_DOUBLE_EQ(scaler.scale(), 1024.0);
}

// FusedStep hands the scale and the inf flag to a fused optimizer, which
// divides and skips inside its kernel: on the CPU and, when there is one, on a GPU.
TEST(AmpTest, FusedStepUnscalesInTheKernelAndSkipsOnInf) {
  std::vector<torch::Device> devices = {torch::kCPU};
  if (torch::cuda::is_available()) devices.push_back(torch::kCUDA);
  for (const torch::Device& device : devices) {
    SCOPED_TRACE(device.str());
    const auto options = torch::TensorOptions().device(device);
    GradScaler scaler({/*init_scale=*/1024.0, 2.0, 0.5, /*growth_interval=*/2000});
    torch::Tensor w = torch::zeros({3}, options.requires_grad(true));
    Sgd sgd({w}, {/*lr=*/0.5, /*momentum=*/0.0, /*weight_decay=*/0.0, OptimizerKernels::kFused});
    auto fused_step = [&](const torch::Tensor& grad_scale, const torch::Tensor& found_inf) {
      sgd.Step(grad_scale, found_inf);
    };

    scaler.Scale((w * torch::ones({3}, options)).sum()).backward();  // gradients of 1024
    scaler.FusedStep({w}, fused_step);
    scaler.Update();
    EXPECT_TRUE(torch::allclose(w.cpu(), torch::full({3}, -0.5f)));
    EXPECT_TRUE(torch::equal(w.grad().cpu(), torch::ones({3})));  // the kernel unscaled them
    EXPECT_EQ(scaler.TakeSkippedSteps(), 0);

    sgd.ZeroGrad();
    scaler.Scale((w * torch::ones({3}, options)).sum()).backward();
    w.mutable_grad()[1] = std::numeric_limits<float>::infinity();
    scaler.FusedStep({w}, fused_step);
    scaler.Update();
    EXPECT_TRUE(torch::allclose(w.cpu(), torch::full({3}, -0.5f)));  // skipped
    EXPECT_DOUBLE_EQ(scaler.scale(), 512.0);
    EXPECT_EQ(scaler.TakeSkippedSteps(), 1);
    EXPECT_EQ(scaler.TakeSkippedSteps(), 0);

    // Unscaled first (e.g. to clip): the kernel must not divide again.
    sgd.ZeroGrad();
    scaler.Scale((w * torch::ones({3}, options)).sum()).backward();
    scaler.Unscale({w});
    scaler.FusedStep({w}, fused_step);
    EXPECT_THROW(scaler.FusedStep({w}, fused_step), c10::Error);  // twice in one iteration
    scaler.Update();
    EXPECT_TRUE(torch::allclose(w.cpu(), torch::full({3}, -1.0f)));
  }
}

// PyTorch refuses to unscale fp16 gradients, but its fused optimizers check
// and unscale them in their kernels.
TEST(AmpTest, FusedStepTakesFp16GradientsThatUnscaleRefuses) {
  GradScaler scaler({/*init_scale=*/1024.0, 2.0, 0.5, /*growth_interval=*/2000});
  torch::Tensor w = torch::zeros({3}, torch::TensorOptions().dtype(torch::kHalf).requires_grad(true));
  Sgd sgd({w}, {/*lr=*/0.5, /*momentum=*/0.0, /*weight_decay=*/0.0, OptimizerKernels::kFused});
  scaler.Scale((w.to(torch::kFloat) * torch::ones({3})).sum()).backward();  // fp16 gradients of 1024
  scaler.FusedStep({w}, [&](const torch::Tensor& grad_scale, const torch::Tensor& found_inf) {
    sgd.Step(grad_scale, found_inf);
  });
  scaler.Update();
  EXPECT_TRUE(torch::equal(w.to(torch::kFloat), torch::full({3}, -0.5f))) << w;

  sgd.ZeroGrad();
  scaler.Scale((w.to(torch::kFloat) * torch::ones({3})).sum()).backward();
  EXPECT_THROW(scaler.Unscale({w}), c10::Error);
}

TEST(AmpTest, StepCountsItsSkipsToo) {
  GradScaler scaler({/*init_scale=*/8.0, 2.0, 0.5, /*growth_interval=*/2000});
  Model model;
  model.Backward(scaler, torch::ones({3}));
  model.w.mutable_grad()[0] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_FALSE(scaler.Step({model.w}, [] {}));
  scaler.Update();
  EXPECT_EQ(scaler.TakeSkippedSteps(), 1);
  EXPECT_EQ(scaler.TakeSkippedSteps(), 0);
}

TEST(AmpTest, FindsInfAmongGradientsOfSeveralDtypes) {
  GradScaler scaler;
  torch::Tensor f = torch::ones({2}, torch::requires_grad());
  torch::Tensor d = torch::ones({2}, torch::dtype(torch::kDouble).requires_grad(true));
  torch::Tensor b = torch::ones({2}, torch::dtype(torch::kBFloat16).requires_grad(true));
  scaler.Scale(f.sum() + d.sum().to(torch::kFloat) + b.sum().to(torch::kFloat)).backward();
  d.mutable_grad()[0] = std::numeric_limits<double>::infinity();
  scaler.Unscale({f, d, b});
  EXPECT_TRUE(torch::equal(f.grad(), torch::ones({2})));
  EXPECT_TRUE(torch::equal(b.grad(), torch::ones({2}, torch::kBFloat16)));
  EXPECT_FALSE(scaler.Step([] { FAIL() << "stepped despite an inf gradient"; }));
  scaler.Update();
  EXPECT_DOUBLE_EQ(scaler.scale(), 32768.0);
}

TEST(AmpTest, ClipAfterUnscaleSeesTrueGradients) {
  GradScaler scaler;
  Model model;
  model.Backward(scaler, torch::tensor({3.0f, 4.0f, 0.0f}));
  EXPECT_FLOAT_EQ(model.w.grad()[0].item<float>(), 3.0f * 65536);
  scaler.Unscale({model.w});
  const double norm = torch::nn::utils::clip_grad_norm_({model.w}, /*max_norm=*/1.0);
  EXPECT_NEAR(norm, 5.0, 1e-5);
  EXPECT_NEAR(model.w.grad()[1].item<float>(), 0.8f, 1e-5);
  EXPECT_THROW(scaler.Unscale({model.w}), c10::Error);  // once per iteration
  EXPECT_TRUE(scaler.Step({model.w}, [] {}));            // does not unscale again
  EXPECT_NEAR(model.w.grad()[1].item<float>(), 0.8f, 1e-5);
  EXPECT_THROW(scaler.Step([] {}), c10::Error);  // once per iteration
  scaler.Update();
  model.Backward(scaler, torch::ones({3}));
  scaler.Unscale({model.w});  // allowed again after Update()
}

TEST(AmpTest, UpdateWithoutInfCheckIsAnError) {
  GradScaler scaler;
  Model model;
  model.Backward(scaler, torch::ones({3}));
  EXPECT_THROW(scaler.Update(), c10::Error);
  EXPECT_THROW(scaler.Step([] {}), c10::Error);  // needs Unscale(params) first
}

TEST(AmpTest, StateRoundTrips) {
  GradScaler source({/*init_scale=*/256.0, 3.0, 0.25, /*growth_interval=*/10});
  Model model;
  for (int i = 0; i < 2; ++i) {
    model.Backward(source, torch::ones({3}));
    source.Step({model.w}, [] {});
    source.Update();
  }
  model.Backward(source, torch::full({3}, std::numeric_limits<float>::infinity()));
  source.Step({model.w}, [] {});
  source.Update();
  model.Backward(source, torch::ones({3}));
  source.Step({model.w}, [] {});
  source.Update();
  const std::map<std::string, double> state = source.State();
  EXPECT_DOUBLE_EQ(state.at("scale"), 64.0);
  EXPECT_DOUBLE_EQ(state.at("growth_factor"), 3.0);
  EXPECT_DOUBLE_EQ(state.at("backoff_factor"), 0.25);
  EXPECT_DOUBLE_EQ(state.at("growth_interval"), 10.0);
  EXPECT_DOUBLE_EQ(state.at("growth_tracker"), 1.0);

  GradScaler fresh;  // not yet initialised by Scale()
  ASSERT_TRUE(fresh.LoadState(state).ok());
  EXPECT_EQ(fresh.State(), state);
  EXPECT_FLOAT_EQ(fresh.Scale(torch::ones({})).item<float>(), 64.0f);
  GradScaler used;  // already initialised
  used.Scale(torch::ones({}));
  ASSERT_TRUE(used.LoadState(state).ok());
  EXPECT_EQ(used.State(), state);

  std::map<std::string, double> missing = state;
  missing.erase("growth_tracker");
  absl::Status status = fresh.LoadState(missing);
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("growth_tracker"), std::string::npos);
  std::map<std::string, double> invalid = state;
  invalid["scale"] = -1;
  EXPECT_FALSE(fresh.LoadState(invalid).ok());
  invalid = state;
  invalid["growth_interval"] = 1e300;  // beyond int64
  EXPECT_FALSE(fresh.LoadState(invalid).ok());
  invalid = state;
  invalid["growth_tracker"] = 1e10;  // beyond the int32 tracker
  EXPECT_FALSE(fresh.LoadState(invalid).ok());
  EXPECT_EQ(fresh.State(), state);  // unchanged by failed loads
}

TEST(AmpTest, DisabledScalerPassesThrough) {
  GradScalerOptions options;
  options.enabled = false;
  GradScaler scaler(options);
  const torch::Tensor loss = torch::tensor(2.0f);
  EXPECT_TRUE(scaler.Scale(loss).is_same(loss));
  bool stepped = false;
  EXPECT_TRUE(scaler.Step([&] { stepped = true; }));
  EXPECT_TRUE(stepped);
  scaler.Update();
  EXPECT_DOUBLE_EQ(scaler.scale(), 1.0);
  EXPECT_TRUE(scaler.State().empty());
}

}  // namespace
}  // namespace dlspeed
