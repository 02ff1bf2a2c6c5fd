#include "resnet/resnet.h"

#include <memory>

#include <torch/nn/init.h>
#include <torch/nn/modules/container/any.h>

#include "absl/strings/str_cat.h"

namespace dlspeed {
namespace {

namespace nn = torch::nn;

nn::Conv2d Conv(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, kernel).stride(stride).padding(padding).bias(false));
}

nn::Sequential MaybeDownsample(int64_t in_planes, int64_t out_planes, int64_t stride) {
  if (stride == 1 && in_planes == out_planes) return nn::Sequential(nullptr);
  return nn::Sequential(Conv(in_planes, out_planes, /*kernel=*/1, stride, /*padding=*/0),
                        ResNetBatchNorm(out_planes));
}

std::vector<int64_t> BlocksPerLayer(int depth) {
  switch (depth) {
    case 18: return {2, 2, 2, 2};
    case 34: return {3, 4, 6, 3};
    default: return {3, 4, 6, 3};  // 50: same counts, bottleneck blocks
  }
}

}  // namespace

torch::Tensor ResNetBatchNormImpl::forward(const torch::Tensor& x) {
  if (training_forward_ && is_training()) return training_forward_(*this, x);
  return torch::nn::BatchNorm2dImpl::forward(x);
}

BasicBlockImpl::BasicBlockImpl(int64_t in_planes, int64_t planes, int64_t stride)
    : conv1(Conv(in_planes, planes, /*kernel=*/3, stride, /*padding=*/1)),
      conv2(Conv(planes, planes, /*kernel=*/3, /*stride=*/1, /*padding=*/1)),
      bn1(planes),
      bn2(planes),
      downsample(MaybeDownsample(in_planes, planes * kExpansion, stride)) {
  register_module("conv1", conv1);
  register_module("bn1", bn1);
  register_module("conv2", conv2);
  register_module("bn2", bn2);
  if (downsample) register_module("downsample", downsample);
}

torch::Tensor BasicBlockImpl::forward(const torch::Tensor& x) {
  // In-place ReLUs where torchvision has ReLU(inplace=True).
  torch::Tensor out = bn1(conv1(x)).relu_();
  out = bn2(conv2(out));
  out += downsample ? downsample->forward(x) : x;
  return out.relu_();
}

BottleneckImpl::BottleneckImpl(int64_t in_planes, int64_t planes, int64_t stride)
    : conv1(Conv(in_planes, planes, /*kernel=*/1, /*stride=*/1, /*padding=*/0)),
      conv2(Conv(planes, planes, /*kernel=*/3, stride, /*padding=*/1)),
      conv3(Conv(planes, planes * kExpansion, /*kernel=*/1, /*stride=*/1, /*padding=*/0)),
      bn1(planes),
      bn2(planes),
      bn3(planes * kExpansion),
      downsample(MaybeDownsample(in_planes, planes * kExpansion, stride)) {
  register_module("conv1", conv1);
  register_module("bn1", bn1);
  register_module("conv2", conv2);
  register_module("bn2", bn2);
  register_module("conv3", conv3);
  register_module("bn3", bn3);
  if (downsample) register_module("downsample", downsample);
}

torch::Tensor BottleneckImpl::forward(const torch::Tensor& x) {
  torch::Tensor out = bn1(conv1(x)).relu_();
  out = bn2(conv2(out)).relu_();
  out = bn3(conv3(out));
  out += downsample ? downsample->forward(x) : x;
  return out.relu_();
}

ResNetImpl::ResNetImpl(int depth, int64_t num_classes)
    : depth_(depth),
      num_classes_(num_classes),
      bottleneck_(depth >= 50),
      conv1(Conv(/*in=*/3, /*out=*/64, /*kernel=*/7, /*stride=*/2, /*padding=*/3)),
      bn1(64),
      maxpool(nn::MaxPool2dOptions(/*kernel_size=*/3).stride(2).padding(1)) {
  register_module("conv1", conv1);
  register_module("bn1", bn1);
  register_module("maxpool", maxpool);
  const std::vector<int64_t> blocks = BlocksPerLayer(depth);
  layer1 = register_module("layer1", MakeLayer(/*planes=*/64, blocks[0], /*stride=*/1));
  layer2 = register_module("layer2", MakeLayer(/*planes=*/128, blocks[1], /*stride=*/2));
  layer3 = register_module("layer3", MakeLayer(/*planes=*/256, blocks[2], /*stride=*/2));
  layer4 = register_module("layer4", MakeLayer(/*planes=*/512, blocks[3], /*stride=*/2));
  fc = register_module("fc", nn::Linear(in_planes_, num_classes));

  for (auto& module : modules(/*include_self=*/false)) {
    if (auto* conv = module->as<nn::Conv2d>()) {
      nn::init::kaiming_normal_(conv->weight, /*a=*/0, torch::kFanOut, torch::kReLU);
    } else if (auto* bn = module->as<nn::BatchNorm2d>()) {
      nn::init::ones_(bn->weight);
      nn::init::zeros_(bn->bias);
    }
  }
}

nn::Sequential ResNetImpl::MakeLayer(int64_t planes, int64_t blocks, int64_t stride) {
  nn::Sequential layer;
  for (int64_t i = 0; i < blocks; ++i) {
    const int64_t block_stride = i == 0 ? stride : 1;
    if (bottleneck_) {
      layer->push_back(Bottleneck(in_planes_, planes, block_stride));
      in_planes_ = planes * BottleneckImpl::kExpansion;
    } else {
      layer->push_back(BasicBlock(in_planes_, planes, block_stride));
      in_planes_ = planes * BasicBlockImpl::kExpansion;
    }
  }
  return layer;
}

void ResNetImpl::SetBatchNormTrainingForward(const BatchNormForward& forward) {
  for (const std::shared_ptr<nn::Module>& module : modules()) {
    if (auto* bn = module->as<ResNetBatchNormImpl>()) bn->set_training_forward(forward);
  }
}

torch::Tensor ResNetImpl::forward(torch::Tensor x) {
  x = maxpool(bn1(conv1(x)).relu_());
  x = layer4->forward(layer3->forward(layer2->forward(layer1->forward(x))));
  x = torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1);
  return fc(x);
}

absl::StatusOr<ResNet> MakeResNet(int depth, int64_t num_classes) {
  if (depth != 18 && depth != 34 && depth != 50) {
    return absl::InvalidArgumentError(
        absl::StrCat("unsupported ResNet depth ", depth, " (choose 18, 34 or 50)"));
  }
  if (num_classes < 1) {
    return absl::InvalidArgumentError(absl::StrCat("num_classes must be positive, got ", num_classes));
  }
  return ResNet(depth, num_classes);
}

int64_t CountParameters(const torch::nn::Module& module) {
  int64_t count = 0;
  for (const auto& p : module.parameters()) count += p.numel();
  return count;
}

void ToChannelsLast(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& p : module.parameters()) {
    if (p.dim() == 4) p.set_data(p.contiguous(at::MemoryFormat::ChannelsLast));
  }
}

}  // namespace dlspeed
