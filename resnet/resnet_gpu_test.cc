// ResNet inference on a GPU, as resnet_gpu_script runs it: frozen TorchScript
// and CUDA-graph replay give the eager model's logits, in fp32 and in fp16
// with channels_last. Skipped where there is no GPU (tools/gpu_check.sh runs
// it on a GPU host); resnet_script_test covers the CPU.
#include <ATen/Context.h>
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include "common/cuda_graph.h"
#include "common/testing/close_to_scale.h"
#include "resnet/resnet.h"
#include "resnet/resnet_script.h"

namespace dlspeed {
namespace {

struct Precision {
  const char* name;
  torch::Dtype dtype;
  at::MemoryFormat format;
  double tolerance;  // of the largest |logit|
};

class ResNetGpuTest : public ::testing::TestWithParam<Precision> {
 protected:
  void SetUp() override {
    if (!torch::cuda::is_available()) GTEST_SKIP() << "no GPU here";
    // TF32 would make fp32 convolutions differ by ~1e-3 between algorithms.
    tf32_ = at::globalContext().allowTF32CuDNN();
    restore_tf32_ = true;
    at::globalContext().setAllowTF32CuDNN(false);
    torch::manual_seed(18);
    model_ = *MakeResNet(18);
    model_->to(torch::kCUDA);
    model_->train();
    torch::NoGradGuard no_grad;  // non-trivial BatchNorm statistics
    for (int i = 0; i < 3; ++i) model_->forward(torch::randn({16, 3, 32, 32}, torch::kCUDA) * 2 + 0.5);
    model_->eval();
    model_->to(GetParam().dtype);
    if (GetParam().format == at::MemoryFormat::ChannelsLast) ToChannelsLast(*model_);
  }
  void TearDown() override {
    if (restore_tf32_) at::globalContext().setAllowTF32CuDNN(tf32_);
  }

  torch::Tensor Images(int64_t batch) const {
    return torch::randn({batch, 3, 32, 32}, torch::kCUDA).to(GetParam().dtype).contiguous(GetParam().format);
  }

  void ExpectSameLogits(const torch::Tensor& actual, const torch::Tensor& expected) const {
    ExpectCloseToScale(actual, expected, GetParam().tolerance);
  }

  ResNet model_{nullptr};
  bool tf32_ = true, restore_tf32_ = false;
};

TEST_P(ResNetGpuTest, FrozenTorchScriptMatchesEager) {
  absl::StatusOr<torch::jit::Module> script = ScriptResNet(model_);
  ASSERT_TRUE(script.ok()) << script.status();
  c10::InferenceMode inference;
  for (int64_t batch : {32, 7}) {
    SCOPED_TRACE(batch);
    const torch::Tensor x = Images(batch);
    ExpectSameLogits(script->forward({x}).toTensor(), model_->forward(x));
  }
}

TEST_P(ResNetGpuTest, CudaGraphReplayMatchesEager) {
  // A GPU build that lost the CUDA headers would otherwise skip every graph check.
  ASSERT_TRUE(CudaGraphsBuiltIn()) << "LibTorch sees a GPU but this build has no CUDA graphs (CUDA headers missing?)";
  c10::InferenceMode inference;
  auto forward = [&](const torch::Tensor& x) { return model_->forward(x); };
  absl::StatusOr<std::unique_ptr<CudaGraphRunner>> graph = CudaGraphRunner::Capture(forward, Images(32));
  ASSERT_TRUE(graph.ok()) << graph.status();
  for (int i = 0; i < 3; ++i) {
    SCOPED_TRACE(i);
    const torch::Tensor x = Images(32);
    ExpectSameLogits((*graph)->Run(x), forward(x));
  }
}

TEST_P(ResNetGpuTest, CudaGraphOfTheFrozenModuleMatchesEager) {
  ASSERT_TRUE(CudaGraphsBuiltIn()) << "LibTorch sees a GPU but this build has no CUDA graphs (CUDA headers missing?)";
  absl::StatusOr<torch::jit::Module> script = ScriptResNet(model_);
  ASSERT_TRUE(script.ok()) << script.status();
  c10::InferenceMode inference;
  // Captured after the warm-up calls, once TorchScript has optimised the graph
  // for this shape (resnet_gpu_script's cuda-graph-frozen).
  auto forward = [&](const torch::Tensor& x) { return script->forward({x}).toTensor(); };
  absl::StatusOr<std::unique_ptr<CudaGraphRunner>> graph = CudaGraphRunner::Capture(forward, Images(32));
  ASSERT_TRUE(graph.ok()) << graph.status();
  for (int i = 0; i < 3; ++i) {
    SCOPED_TRACE(i);
    const torch::Tensor x = Images(32);
    ExpectSameLogits((*graph)->Run(x), model_->forward(x));
  }
}

INSTANTIATE_TEST_SUITE_P(Precisions, ResNetGpuTest,
                         ::testing::Values(Precision{"Fp32", torch::kFloat, at::MemoryFormat::Contiguous, 1e-4},
                                           Precision{"Fp16ChannelsLast", torch::kHalf,
                                                     at::MemoryFormat::ChannelsLast, 5e-2}),
                         [](const ::testing::TestParamInfo<Precision>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace dlspeed
