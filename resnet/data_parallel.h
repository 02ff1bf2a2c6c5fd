// Single-process data parallelism over several devices, the study's
// nn.DataParallel (Resnet-2): the batch is split across replicas of the model,
// one per device, their forward passes run in parallel threads, the logits are
// gathered on the first device where the loss is taken, and after backward the
// replicas' gradients are summed into the model's.
//
//   dlspeed::DataParallel dp(model, {cuda:0, cuda:1}, dlspeed::Precision::kFp16);
//   options.forward = [&](const torch::Tensor& x) { return dp.Forward(x); };
//   options.after_backward = [&] { dp.ReduceGradients(); };
//
// Unlike LibTorch's torch::nn::parallel::data_parallel, which clones the
// module on every call, the replicas are built once and only their parameters
// and buffers are refreshed from the model at each Forward (as
// nn.DataParallel's replicate() broadcasts them). The model itself is the
// replica on the first device, so its BatchNorm running statistics are the
// ones kept, as in PyTorch.
#ifndef DLSPEED_RESNET_DATA_PARALLEL_H_
#define DLSPEED_RESNET_DATA_PARALLEL_H_

#include <vector>

#include <c10/core/Device.h>
#include <torch/types.h>

#include "common/amp.h"
#include "resnet/resnet.h"

namespace dlspeed {

class DataParallel {
 public:
  // `model` must already be on devices[0]; the other replicas are made on
  // devices[1..] with the same depth, classes and memory format.
  DataParallel(ResNet model, std::vector<c10::Device> devices, Precision precision, bool channels_last = false);

  // Splits `images` (on devices[0]) into one chunk per replica (fewer when the
  // batch is smaller than the number of devices), runs the replicas in
  // parallel under autocast for the precision, and returns the logits
  // concatenated on devices[0], differentiable back into every replica.
  torch::Tensor Forward(const torch::Tensor& images);

  // Adds the other replicas' gradients into the model's and clears theirs.
  void ReduceGradients();

  // Copies the model's parameters and buffers (and training mode) into the
  // other replicas; Forward does this first. Public for the benchmark that
  // sets it against cloning the model each step.
  void RefreshReplicas();

  const std::vector<c10::Device>& devices() const { return devices_; }
  const std::vector<ResNet>& replicas() const { return replicas_; }

 private:
  std::vector<c10::Device> devices_;
  Precision precision_;
  bool channels_last_;
  std::vector<ResNet> replicas_;  // replicas_[0] is the model
  std::vector<std::vector<torch::Tensor>> params_, buffers_;
};

}  // namespace dlspeed

#endif  // DLSPEED_RESNET_DATA_PARALLEL_H_
