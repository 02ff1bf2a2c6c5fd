// CudaGraphRunner: without a GPU (or in a build without CUDA) capture is
// refused with a status; on a GPU, replays of new inputs equal eager calls of
// the same module and write into one static output, an input unlike the
// example is refused, and a failed capture leaves the next one working.
#include "common/cuda_graph.h"

#include <stdexcept>
#include <string>

#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include "common/testing/close_to_scale.h"

namespace dlspeed {
namespace {

// Convolution, BatchNorm with non-trivial running statistics, pooling and a
// classifier: the kinds of kernels (cuDNN, cuBLAS, elementwise) ResNet replays.
torch::nn::Sequential SmallConvNet(const torch::Device& device) {
  torch::manual_seed(0);
  torch::nn::Sequential net(torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 16, 3).padding(1)),
                            torch::nn::BatchNorm2d(16), torch::nn::ReLU(), torch::nn::AdaptiveAvgPool2d(1),
                            torch::nn::Flatten(), torch::nn::Linear(16, 10));
  net->to(device);
  torch::NoGradGuard no_grad;
  net->train();
  for (int i = 0; i < 3; ++i) net->forward(torch::randn({8, 3, 16, 16}, device) * 2 + 0.5);
  net->eval();
  return net;
}

bool HaveGpu() { return CudaGraphsBuiltIn() && torch::cuda::is_available(); }

TEST(CudaGraphTest, RefusesACpuInput) {
  torch::nn::Sequential net = SmallConvNet(torch::kCPU);
  int calls = 0;
  absl::StatusOr<std::unique_ptr<CudaGraphRunner>> graph = CudaGraphRunner::Capture(
      [&](const at::Tensor& x) {
        ++calls;
        return net->forward(x);
      },
      torch::randn({2, 3, 16, 16}));
  ASSERT_FALSE(graph.ok());
  EXPECT_EQ(graph.status().code(),
            CudaGraphsBuiltIn() ? absl::StatusCode::kInvalidArgument : absl::StatusCode::kUnimplemented)
      << graph.status();
  EXPECT_EQ(calls, 0);  // refused before running anything
}

TEST(CudaGraphTest, BuiltInWhereLibTorchSeesAGpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no GPU here";
  // Else a GPU build that lost the CUDA headers would skip every replay test.
  EXPECT_TRUE(CudaGraphsBuiltIn()) << "LibTorch sees a GPU but this build has no CUDA graphs (CUDA headers missing?)";
}

// On a GPU, in the parameter's dtype: the small net and its eager forward.
class CudaGraphReplayTest : public ::testing::TestWithParam<torch::Dtype> {
 protected:
  void SetUp() override {
    if (!HaveGpu()) GTEST_SKIP() << "no GPU here (or a build without CUDA)";
    net_ = SmallConvNet(torch::kCUDA);
    net_->to(GetParam());
  }
  at::Tensor Images(int64_t batch) const {
    return torch::randn({batch, 3, 16, 16}, torch::TensorOptions().device(torch::kCUDA).dtype(GetParam()));
  }
  at::Tensor Eager(const at::Tensor& x) { return net_->forward(x); }
  // The replay keeps the dtype and gives eager's output within fp32's or fp16's rounding.
  void ExpectEager(const at::Tensor& replayed, const at::Tensor& x) {
    EXPECT_EQ(replayed.scalar_type(), GetParam());
    ExpectCloseToScale(replayed, Eager(x), GetParam() == torch::kFloat ? 1e-4 : 1e-2);
  }

  torch::NoGradGuard no_grad_;
  torch::nn::Sequential net_{nullptr};
};

TEST_P(CudaGraphReplayTest, ReplaysOfNewInputsEqualEagerCalls) {
  absl::StatusOr<std::unique_ptr<CudaGraphRunner>> graph =
      CudaGraphRunner::Capture([&](const at::Tensor& x) { return Eager(x); }, Images(8));
  ASSERT_TRUE(graph.ok()) << graph.status();
  at::Tensor previous;
  for (int i = 0; i < 3; ++i) {
    SCOPED_TRACE(i);
    const at::Tensor x = Images(8) * (i + 1);
    const at::Tensor replayed = (*graph)->Run(x);
    ExpectEager(replayed, x);
    // One static output: the next replay overwrites what the last returned.
    if (previous.defined()) {
      EXPECT_EQ(replayed.data_ptr(), previous.data_ptr());
    }
    previous = replayed;
  }
}

TEST_P(CudaGraphReplayTest, CapturedInputIsACopyOfTheExample) {
  at::Tensor example = Images(4);
  const at::Tensor kept = example.clone();
  absl::StatusOr<std::unique_ptr<CudaGraphRunner>> graph =
      CudaGraphRunner::Capture([&](const at::Tensor& x) { return Eager(x); }, example);
  ASSERT_TRUE(graph.ok()) << graph.status();
  example.zero_();  // the caller may reuse its tensor after capture
  ExpectEager((*graph)->Run(kept), kept);
}

TEST_P(CudaGraphReplayTest, RunRefusesAnInputUnlikeTheExample) {
  absl::StatusOr<std::unique_ptr<CudaGraphRunner>> graph =
      CudaGraphRunner::Capture([&](const at::Tensor& x) { return Eager(x); }, Images(8));
  ASSERT_TRUE(graph.ok()) << graph.status();
  EXPECT_THROW((*graph)->Run(Images(4)), c10::Error);  // copy_ would broadcast it
  const torch::Dtype other = GetParam() == torch::kFloat ? torch::kHalf : torch::kFloat;
  EXPECT_THROW((*graph)->Run(Images(8).to(other)), c10::Error);
  EXPECT_THROW((*graph)->Run(Images(8).cpu()), c10::Error);
}

TEST_P(CudaGraphReplayTest, AFailedCaptureLeavesTheNextOneWorking) {
  int calls = 0;
  absl::StatusOr<std::unique_ptr<CudaGraphRunner>> failed = CudaGraphRunner::Capture(
      [&](const at::Tensor& x) {
        at::Tensor out = Eager(x);
        if (++calls > 1) throw std::runtime_error("planted failure");  // during the capture, not the warm-up
        return out;
      },
      Images(8), /*warmup=*/1);
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.status().message().find("planted failure"), std::string::npos) << failed.status();
  EXPECT_EQ(calls, 2);
  // Neither the stream pool nor the caching allocator is left capturing.
  absl::StatusOr<std::unique_ptr<CudaGraphRunner>> graph =
      CudaGraphRunner::Capture([&](const at::Tensor& x) { return Eager(x); }, Images(8));
  ASSERT_TRUE(graph.ok()) << graph.status();
  const at::Tensor x = Images(8);
  ExpectEager((*graph)->Run(x), x);
}

TEST_P(CudaGraphReplayTest, RefusesToCaptureUnderAutocast) {
  at::autocast::set_autocast_enabled(at::kCUDA, true);
  absl::StatusOr<std::unique_ptr<CudaGraphRunner>> graph =
      CudaGraphRunner::Capture([&](const at::Tensor& x) { return Eager(x); }, Images(8));
  at::autocast::set_autocast_enabled(at::kCUDA, false);
  EXPECT_EQ(graph.status().code(), absl::StatusCode::kInvalidArgument) << graph.status();
}

INSTANTIATE_TEST_SUITE_P(Dtypes, CudaGraphReplayTest, ::testing::Values(torch::kFloat, torch::kHalf),
                         [](const ::testing::TestParamInfo<torch::Dtype>& info) {
                           return info.param == torch::kFloat ? std::string("Fp32") : std::string("Fp16");
                         });

}  // namespace
}  // namespace dlspeed
