#include "common/optim/sgd.h"

#include <utility>

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <torch/csrc/autograd/grad_mode.h>

namespace dlspeed {

Sgd::Sgd(std::vector<torch::Tensor> params, SgdOptions options)
    : params_(std::move(params)), buffers_(params_.size()), options_(options) {}

void Sgd::ZeroGrad() {
  for (auto& p : params_) p.mutable_grad() = torch::Tensor();
}

void Sgd::Step(const torch::Tensor& grad_scale, const torch::Tensor& found_inf) {
  torch::NoGradGuard no_grad;
  if (fused()) {
    StepFused(grad_scale, found_inf);
    return;
  }
  TORCH_CHECK(!grad_scale.defined() && !found_inf.defined(),
              "Sgd: grad_scale and found_inf need the fused kernels (--optimizer_kernels=fused)");
  StepForeach();
}

void Sgd::StepForeach() {
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
    std::vector<torch::Tensor> running, running_grads;
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

void Sgd::StepFused(const torch::Tensor& grad_scale, const torch::Tensor& found_inf) {
  const bool momentum = options_.momentum != 0;
  for (const std::vector<size_t>& group : optim_internal::FusedGroups(params_, "Sgd")) {
    std::vector<torch::Tensor> params, grads, buffers;
    for (size_t i : group) {
      const torch::Tensor& param = params_[i];
      params.push_back(param);
      grads.push_back(optim_internal::LaidOutLike(param, param.grad()));
      // A zero buffer makes the first step's momentum the gradient itself
      // (0.9 * 0 + g), as PyTorch's first step sets it, and stays right when
      // the GradScaler skips that first step inside the kernel.
      if (momentum) buffers.push_back(optim_internal::StateLike(param, buffers_[i]));
    }
    const c10::Device device = params.front().device();
    at::_fused_sgd_(params, grads, buffers, options_.weight_decay, options_.momentum, options_.lr,
                    /*dampening=*/0.0, /*nesterov=*/false, /*maximize=*/false, /*is_first_step=*/false,
                    optim_internal::OnDevice(grad_scale, device), optim_internal::OnDevice(found_inf, device));
  }
}

}  // namespace dlspeed
