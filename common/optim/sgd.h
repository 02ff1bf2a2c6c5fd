// SGD with momentum and weight decay (torch.optim.SGD's update, dampening 0,
// no Nesterov) on ATen's fused kernel (_fused_sgd_: one pass per parameter,
// as Python's fused=True) or on its multi-tensor _foreach_ kernels (a handful
// of kernels for the whole model, as Python's default on GPUs). LibTorch's
// torch::optim::SGD updates one parameter at a time, several kernels each.
//
//   dlspeed::Sgd sgd(model->parameters(), {/*lr=*/0.1, /*momentum=*/0.9, /*weight_decay=*/5e-4});
//   sgd.ZeroGrad();
//   loss.backward();
//   sgd.Step();
#ifndef DLSPEED_COMMON_OPTIM_SGD_H_
#define DLSPEED_COMMON_OPTIM_SGD_H_

#include <utility>
#include <vector>

#include <torch/types.h>

#include "common/optim/optimizer_kernels.h"

namespace dlspeed {

struct SgdOptions {
  double lr = 0.1;
  double momentum = 0.9;
  double weight_decay = 5e-4;
  OptimizerKernels kernels = OptimizerKernels::kFused;
};

class Sgd {
 public:
  Sgd(std::vector<torch::Tensor> params, SgdOptions options);

  // Sets every gradient to none (undefined), as set_to_none=True does.
  void ZeroGrad();

  // One update of the parameters that have gradients. Parameters without a
  // gradient are skipped, as in PyTorch. Fused kernels only: `grad_scale`
  // (the GradScaler's scale) divides the gradients first, and a `found_inf`
  // of 1 skips the whole update; either may be undefined (GradScaler::FusedStep
  // passes them).
  void Step(const torch::Tensor& grad_scale = {}, const torch::Tensor& found_inf = {});

  const SgdOptions& options() const { return options_; }
  bool fused() const { return options_.kernels == OptimizerKernels::kFused; }
  void set_lr(double lr) { options_.lr = lr; }

  // Momentum buffers, one per parameter (undefined before its first step).
  const std::vector<torch::Tensor>& momentum_buffers() const { return buffers_; }
  // Replaces parameter i's momentum buffer (e.g. from a checkpoint).
  void set_momentum_buffer(size_t i, torch::Tensor buffer) { buffers_.at(i) = std::move(buffer); }

 private:
  void StepForeach();
  void StepFused(const torch::Tensor& grad_scale, const torch::Tensor& found_inf);

  std::vector<torch::Tensor> params_;
  std::vector<torch::Tensor> buffers_;
  SgdOptions options_;
};

}  // namespace dlspeed

#endif  // DLSPEED_COMMON_OPTIM_SGD_H_
