// SGD with momentum and weight decay (torch.optim.SGD's update, dampening 0,
// no Nesterov) on ATen's multi-tensor _foreach_ kernels: a handful of kernels
// per step for the whole model instead of several per parameter, as Python's
// default foreach implementation does. LibTorch's torch::optim::SGD updates one
// parameter at a time.
//
//   dlspeed::ForeachSgd sgd(model->parameters(), {/*lr=*/0.1, /*momentum=*/0.9, /*weight_decay=*/5e-4});
//   sgd.ZeroGrad();
//   loss.backward();
//   sgd.Step();
#ifndef DLSPEED_COMMON_OPTIM_SGD_H_
#define DLSPEED_COMMON_OPTIM_SGD_H_

#include <utility>
#include <vector>

#include <torch/types.h>

namespace dlspeed {

struct SgdOptions {
  double lr = 0.1;
  double momentum = 0.9;
  double weight_decay = 5e-4;
};

class ForeachSgd {
 public:
  ForeachSgd(std::vector<torch::Tensor> params, SgdOptions options);

  // Sets every gradient to none (undefined), as set_to_none=True does.
  void ZeroGrad();

  // One update of the parameters that have gradients. Parameters without a
  // gradient are skipped, as in PyTorch.
  void Step();

  const SgdOptions& options() const { return options_; }
  void set_lr(double lr) { options_.lr = lr; }

  // Momentum buffers, one per parameter (undefined before its first step).
  const std::vector<torch::Tensor>& momentum_buffers() const { return buffers_; }
  // Replaces parameter i's momentum buffer (e.g. from a checkpoint).
  void set_momentum_buffer(size_t i, torch::Tensor buffer) { buffers_.at(i) = std::move(buffer); }

 private:
  std::vector<torch::Tensor> params_;
  std::vector<torch::Tensor> buffers_;
  SgdOptions options_;
};

}  // namespace dlspeed

#endif  // DLSPEED_COMMON_OPTIM_SGD_H_
