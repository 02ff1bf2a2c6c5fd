#include "common/optim/sgd.h"

#include <utility>

#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>

namespace dlspeed {

ForeachSgd::ForeachSgd(std::vector<torch::Tensor> params, SgdOptions options)
    : params_(std::move(params)), buffers_(params_.size()), options_(options) {}

void ForeachSgd::ZeroGrad() {
  for (auto& p : params_) p.mutable_grad() = torch::Tensor();
}

void ForeachSgd::Step() {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> params, grads;
  std::vector<size_t> index;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!params_[i].grad().defined()) continue;
    params.push_back(params_[i]);
    grads.push_back(params_[i].grad());
    index.push_back(i);
  }
  if (params.empty()) return;
  if (options_.weight_decay != 0) grads = at::_foreach_add(grads, params, options_.weight_decay);
  if (options_.momentum != 0) {
    std::vector<torch::Tensor> fresh, fresh_grads, running, running_grads;
    for (size_t k = 0; k < index.size(); ++k) {
      torch::Tensor& buffer = buffers_[index[k]];
      if (buffer.defined()) {
        running.push_back(buffer);
        running_grads.push_back(grads[k]);
      } else {
        buffer = grads[k].detach().clone();
      }
    }
    if (!running.empty()) {
      at::_foreach_mul_(running, options_.momentum);
      at::_foreach_add_(running, running_grads);
    }
    for (size_t k = 0; k < index.size(); ++k) grads[k] = buffers_[index[k]];
  }
  at::_foreach_add_(params, grads, -options_.lr);
}

}  // namespace dlspeed
