#include "resnet/resnet.h"

#include <string>

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace dlspeed {
namespace {

TEST(ResNetTest, ParameterCountsMatchTorchvision) {
  EXPECT_EQ(CountParameters(**MakeResNet(18)), 11181642);
  EXPECT_EQ(CountParameters(**MakeResNet(34)), 21289802);
  EXPECT_EQ(CountParameters(**MakeResNet(50)), 23528522);
}

TEST(ResNetTest, UsesTorchvisionParameterNames) {
  ResNet model = *MakeResNet(50);
  auto params = model->named_parameters();
  EXPECT_TRUE(params.contains("conv1.weight"));
  EXPECT_TRUE(params.contains("layer1.0.downsample.0.weight"));
  EXPECT_TRUE(params.contains("layer4.2.conv3.weight"));
  EXPECT_TRUE(params.contains("fc.bias"));
  EXPECT_TRUE(model->named_buffers().contains("layer3.5.bn2.running_var"));
  EXPECT_FALSE(params.contains("layer1.0.conv3.weight") && !params.contains("layer1.0.bn3.weight"));
  ResNet small = *MakeResNet(18);
  EXPECT_FALSE(small->named_parameters().contains("layer1.0.downsample.0.weight"));
  EXPECT_TRUE(small->named_parameters().contains("layer2.0.downsample.1.weight"));
}

TEST(ResNetTest, RejectsUnknownDepthAndClassCount) {
  EXPECT_EQ(MakeResNet(101).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(MakeResNet(101).status().message().find("18, 34 or 50"), std::string::npos);
  EXPECT_FALSE(MakeResNet(18, 0).ok());
}

TEST(ResNetTest, OutputsHaveClassShape) {
  torch::manual_seed(0);
  ResNet model = *MakeResNet(18, /*num_classes=*/7);
  model->eval();
  torch::Tensor out = model->forward(torch::randn({3, 3, 32, 32}));
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{3, 7}));
}

TEST(ResNetTest, ChannelsLastGivesTheSameOutputs) {
  torch::manual_seed(1);
  ResNet model = *MakeResNet(18);
  model->eval();
  torch::Tensor x = torch::randn({2, 3, 32, 32});
  torch::Tensor reference = model->forward(x);
  ToChannelsLast(*model);
  EXPECT_TRUE(model->named_parameters()["conv1.weight"].is_contiguous(at::MemoryFormat::ChannelsLast));
  torch::Tensor out = model->forward(x.contiguous(at::MemoryFormat::ChannelsLast));
  EXPECT_TRUE(torch::allclose(out, reference, /*rtol=*/1e-4, /*atol=*/1e-5));
}

}  // namespace
}  // namespace dlspeed
