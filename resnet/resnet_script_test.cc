#include "resnet/resnet_script.h"
#include "common/testing/close_to_scale.h"
#include "common/testing/scratch_dir.h"

#include <cstdio>
#include <fstream>
#include <map>
#include <string>

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace dlspeed {
namespace {

// A model in eval mode whose BatchNorm running statistics are not the
// initial zeros and ones: a few training forward passes update them.
ResNet TrainedModel(int depth) {
  torch::manual_seed(depth);
  ResNet model = *MakeResNet(depth);
  model->train();
  torch::NoGradGuard no_grad;
  for (int i = 0; i < 3; ++i) model->forward(torch::randn({8, 3, 32, 32}) * 2 + 0.5);
  model->eval();
  return model;
}

torch::Tensor Scripted(torch::jit::Module& module, const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  return module.forward({x}).toTensor();
}

torch::Tensor Eager(ResNet& model, const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  return model->forward(x);
}

// Within 1e-4 of the output's scale: folded BatchNorm and MKLDNN reorder the arithmetic.
void ExpectClose(const torch::Tensor& actual, const torch::Tensor& expected) {
  ExpectCloseToScale(actual, expected, 1e-4);
}

class ResNetScriptTest : public ::testing::TestWithParam<int> {};

TEST_P(ResNetScriptTest, OptimizedScriptMatchesEagerEval) {
  ResNet model = TrainedModel(GetParam());
  const torch::Tensor x = torch::randn({4, 3, 32, 32});
  absl::StatusOr<torch::jit::Module> script = ScriptResNet(model);
  ASSERT_TRUE(script.ok()) << script.status();
  ExpectClose(Scripted(*script, x), Eager(model, x));
  EXPECT_FALSE(model->is_training());  // the model is left as it was
}

TEST_P(ResNetScriptTest, UnfrozenScriptMatchesAndKeepsParameters) {
  ResNet model = TrainedModel(GetParam());
  const torch::Tensor x = torch::randn({4, 3, 32, 32});
  absl::StatusOr<torch::jit::Module> script =
      ScriptResNet(model, ScriptOptions{/*freeze=*/false, /*optimize=*/false});
  ASSERT_TRUE(script.ok()) << script.status();
  ExpectClose(Scripted(*script, x), Eager(model, x));

  int64_t count = 0;
  for (const torch::Tensor& p : script->parameters()) count += p.numel();
  EXPECT_EQ(count, CountParameters(*model));
  const auto buffers = model->named_buffers();
  const std::string name = "layer1.0.bn1.running_mean";
  torch::Tensor copy = script->attr(ScriptAttributeName(name)).toTensor();
  EXPECT_TRUE(torch::equal(copy, *buffers.find(name)));
  EXPECT_NE(copy.data_ptr(), buffers.find(name)->data_ptr());  // a copy, not a view
}

TEST_P(ResNetScriptTest, FrozenWithoutOptimizationMatches) {
  ResNet model = TrainedModel(GetParam());
  const torch::Tensor x = torch::randn({4, 3, 32, 32});
  absl::StatusOr<torch::jit::Module> script =
      ScriptResNet(model, ScriptOptions{/*freeze=*/true, /*optimize=*/false});
  ASSERT_TRUE(script.ok()) << script.status();
  ExpectClose(Scripted(*script, x), Eager(model, x));
  // Freezing folds every batch norm into its convolution.
  const std::string frozen = GraphOperators(*script);
  EXPECT_NE(frozen.find("aten::conv2d x"), std::string::npos) << frozen;
  EXPECT_EQ(frozen.find("aten::batch_norm"), std::string::npos) << frozen;
  EXPECT_EQ(frozen.find("prim::Constant"), std::string::npos) << frozen;
  absl::StatusOr<torch::jit::Module> unfrozen =
      ScriptResNet(model, ScriptOptions{/*freeze=*/false, /*optimize=*/false});
  ASSERT_TRUE(unfrozen.ok()) << unfrozen.status();
  EXPECT_NE(GraphOperators(*unfrozen).find("aten::batch_norm x"), std::string::npos) << GraphOperators(*unfrozen);
}

TEST_P(ResNetScriptTest, OptimizedScriptTakesOtherBatchSizes) {
  ResNet model = TrainedModel(GetParam());
  absl::StatusOr<torch::jit::Module> script = ScriptResNet(model);
  ASSERT_TRUE(script.ok()) << script.status();
  for (int64_t batch : {4, 1, 32, 4}) {
    SCOPED_TRACE(batch);
    const torch::Tensor x = torch::randn({batch, 3, 32, 32});
    const torch::Tensor y = Scripted(*script, x);
    EXPECT_EQ(y.sizes(), (std::vector<int64_t>{batch, 10}));
    ExpectClose(y, Eager(model, x));
  }
}

TEST_P(ResNetScriptTest, SavedScriptLoadsBackWithSameOutput) {
  ResNet model = TrainedModel(GetParam());
  const torch::Tensor x = torch::randn({4, 3, 32, 32});
  absl::StatusOr<torch::jit::Module> script = ScriptResNet(model);
  ASSERT_TRUE(script.ok()) << script.status();
  const std::string path = ScratchPath("scripts/depth" + std::to_string(GetParam()) + "/resnet.ts");
  ASSERT_TRUE(SaveScript(*script, path).ok());
  absl::StatusOr<torch::jit::Module> loaded = LoadScript(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const torch::Tensor expected = Scripted(*script, x);
  const torch::Tensor actual = Scripted(*loaded, x);
  EXPECT_TRUE(torch::allclose(actual, expected, /*rtol=*/1e-6, /*atol=*/1e-6));
  ExpectClose(actual, Eager(model, x));
}

INSTANTIATE_TEST_SUITE_P(Depths, ResNetScriptTest, ::testing::Values(18, 50),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return "ResNet" + std::to_string(info.param);
                         });

TEST(ResNetScriptTest, UnfrozenScriptSavesAndLoads) {
  ResNet model = TrainedModel(18);
  const torch::Tensor x = torch::randn({2, 3, 32, 32});
  absl::StatusOr<torch::jit::Module> script =
      ScriptResNet(model, ScriptOptions{/*freeze=*/false, /*optimize=*/false});
  ASSERT_TRUE(script.ok()) << script.status();
  const std::string path = ScratchPath("unfrozen.ts");
  ASSERT_TRUE(SaveScript(*script, path, {{"resnet.json", "{\"depth\": 18}"}}).ok());
  std::map<std::string, std::string> extra = {{"resnet.json", ""}, {"absent.txt", ""}};
  absl::StatusOr<torch::jit::Module> loaded = LoadScript(path, &extra);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ExpectClose(Scripted(*loaded, x), Eager(model, x));
  EXPECT_EQ(extra, (std::map<std::string, std::string>{{"resnet.json", "{\"depth\": 18}"}}));
}

TEST(ResNetScriptTest, AttributeNamesReplaceDots) {
  EXPECT_EQ(ScriptAttributeName("layer2.0.downsample.1.running_var"),
            "layer2__0__downsample__1__running_var");
  EXPECT_EQ(ScriptAttributeName("fc.bias"), "fc__bias");
}

TEST(ResNetScriptTest, NullModelIsAnError) {
  EXPECT_EQ(ScriptResNet(ResNet(nullptr)).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ResNetScriptTest, LoadingMissingEmptyOrGarbageFilesFails) {
  const std::string missing = ScratchPath("no/such/model.ts");
  absl::StatusOr<torch::jit::Module> loaded = LoadScript(missing);
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(loaded.status().message().find(missing), std::string::npos);

  const std::string empty = ScratchPath("empty.ts");
  std::ofstream(empty).close();
  loaded = LoadScript(empty);
  EXPECT_FALSE(loaded.ok());
  EXPECT_NE(loaded.status().message().find(empty), std::string::npos);

  const std::string garbage = ScratchPath("garbage.ts");
  std::ofstream(garbage) << "this is not a TorchScript archive\n";
  loaded = LoadScript(garbage);
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(loaded.status().message().find(garbage), std::string::npos);

  // A zip archive cut short, as a crash during a plain (non-atomic) write would leave.
  ResNet model = TrainedModel(18);
  absl::StatusOr<torch::jit::Module> script = ScriptResNet(model);
  ASSERT_TRUE(script.ok()) << script.status();
  const std::string whole = ScratchPath("whole.ts");
  ASSERT_TRUE(SaveScript(*script, whole).ok());
  std::string bytes;
  {
    std::ifstream in(whole, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  const std::string truncated = ScratchPath("truncated.ts");
  std::ofstream(truncated, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  loaded = LoadScript(truncated);
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(loaded.status().message().find(truncated), std::string::npos);
}

TEST(ResNetScriptTest, SaveToUnwritablePathFails) {
  ResNet model = TrainedModel(18);
  absl::StatusOr<torch::jit::Module> script = ScriptResNet(model);
  ASSERT_TRUE(script.ok()) << script.status();
  const std::string file = ScratchPath("a_file");
  std::ofstream(file) << "x";
  const std::string path = file + "/under/a/file.ts";
  absl::Status status = SaveScript(*script, path);
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find(path), std::string::npos);
}

}  // namespace
}  // namespace dlspeed
