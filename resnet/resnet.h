// ResNet-18/34/50 in the LibTorch C++ frontend, with torchvision's
// architecture and parameter names (conv1, bn1, layer1.0.conv1, ...,
// layer2.0.downsample.0, fc), so that a torchvision state_dict loads as is.
//
//   absl::StatusOr<dlspeed::ResNet> model = dlspeed::MakeResNet(/*depth=*/18);
//   torch::Tensor logits = (*model)->forward(images);  // [N, 10]
//
// Weights move between this model and Python as torchvision state_dicts
// (torch.save / torch.load files): see resnet_checkpoint.h.
#ifndef DLSPEED_RESNET_RESNET_H_
#define DLSPEED_RESNET_RESNET_H_

#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/pooling.h>
#include <torch/nn/pimpl.h>

#include "absl/status/statusor.h"

namespace dlspeed {

// The depths this project builds; any other is a usage error.
inline constexpr int kResNetDepths[] = {18, 34, 50};

// Replaces a BatchNorm's training-mode forward, e.g. with SyncBatchNorm
// (common/distributed/sync_batchnorm.h).
using BatchNormForward = std::function<torch::Tensor(torch::nn::BatchNorm2dImpl&, const torch::Tensor&)>;

// BatchNorm2d (same parameters, buffers and names) whose training-mode
// forward can be replaced; eval mode is always BatchNorm2d's.
class ResNetBatchNormImpl : public torch::nn::BatchNorm2dImpl {
 public:
  explicit ResNetBatchNormImpl(int64_t features) : torch::nn::BatchNorm2dImpl(features) {}
  torch::Tensor forward(const torch::Tensor& x);
  void set_training_forward(BatchNormForward forward) { training_forward_ = std::move(forward); }

 private:
  BatchNormForward training_forward_;
};
TORCH_MODULE(ResNetBatchNorm);

// torchvision's BasicBlock (ResNet-18/34): two 3x3 convolutions.
class BasicBlockImpl : public torch::nn::Module {
 public:
  static constexpr int64_t kExpansion = 1;
  BasicBlockImpl(int64_t in_planes, int64_t planes, int64_t stride);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  ResNetBatchNorm bn1{nullptr}, bn2{nullptr};
  torch::nn::Sequential downsample{nullptr};
};
TORCH_MODULE(BasicBlock);

// torchvision's Bottleneck (ResNet-50, "v1.5": stride on the 3x3 conv).
class BottleneckImpl : public torch::nn::Module {
 public:
  static constexpr int64_t kExpansion = 4;
  BottleneckImpl(int64_t in_planes, int64_t planes, int64_t stride);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  ResNetBatchNorm bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  torch::nn::Sequential downsample{nullptr};
};
TORCH_MODULE(Bottleneck);

class ResNetImpl : public torch::nn::Module {
 public:
  // Requires depth in kResNetDepths; use MakeResNet to validate first.
  ResNetImpl(int depth, int64_t num_classes);
  torch::Tensor forward(torch::Tensor x);

  int depth() const { return depth_; }
  int64_t num_classes() const { return num_classes_; }
  // Gives every BatchNorm of the model this training-mode forward (nullptr
  // restores BatchNorm2d's).
  void SetBatchNormTrainingForward(const BatchNormForward& forward);

 private:
  torch::nn::Sequential MakeLayer(int64_t planes, int64_t blocks, int64_t stride);

  int depth_;
  int64_t num_classes_;
  bool bottleneck_;
  int64_t in_planes_ = 64;
  torch::nn::Conv2d conv1{nullptr};
  ResNetBatchNorm bn1{nullptr};
  torch::nn::MaxPool2d maxpool{nullptr};
  torch::nn::Sequential layer1{nullptr}, layer2{nullptr}, layer3{nullptr}, layer4{nullptr};
  torch::nn::Linear fc{nullptr};
};
TORCH_MODULE(ResNet);

// Builds a ResNet of the given depth (18, 34 or 50), initialised as
// torchvision does (Kaiming-normal convolutions, unit BatchNorm weights).
// An unsupported depth or class count is an InvalidArgument error.
absl::StatusOr<ResNet> MakeResNet(int depth, int64_t num_classes = 10);

// Number of trainable parameters (torchvision: 11,181,642 / 21,289,802 /
// 23,528,522 for 10 classes).
int64_t CountParameters(const torch::nn::Module& module);

// Converts the model's 4-D parameters and buffers to channels_last in place.
void ToChannelsLast(torch::nn::Module& module);

}  // namespace dlspeed

#endif  // DLSPEED_RESNET_RESNET_H_
