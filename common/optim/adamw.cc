#include "common/optim/adamw.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <utility>

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <torch/csrc/autograd/grad_mode.h>

namespace dlspeed {

AdamW::AdamW(std::vector<torch::Tensor> params, AdamWOptions options)
    : params_(std::move(params)),
      exp_avg_(params_.size()),
      exp_avg_sq_(params_.size()),
      steps_(params_.size(), 0),
      step_tensors_(params_.size()),
      options_(options) {}

void AdamW::ZeroGrad() {
  for (auto& p : params_) p.mutable_grad() = torch::Tensor();
}

void AdamW::Step(const torch::Tensor& grad_scale, const torch::Tensor& found_inf) {
  torch::NoGradGuard no_grad;
  if (fused()) {
    StepFused(grad_scale, found_inf);
    return;
  }
  TORCH_CHECK(!grad_scale.defined() && !found_inf.defined(),
              "AdamW: grad_scale and found_inf need the fused kernels (--optimizer_kernels=fused)");
  StepForeach();
}

void AdamW::StepForeach() {
  // Parameters are grouped by step count, so that each group shares its bias
  // corrections (usually one group: every parameter has a gradient each step).
  std::map<int64_t, std::vector<size_t>> by_step;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!params_[i].grad().defined()) continue;
    if (!exp_avg_[i].defined()) {
      exp_avg_[i] = torch::zeros_like(params_[i], at::MemoryFormat::Preserve);
      exp_avg_sq_[i] = torch::zeros_like(params_[i], at::MemoryFormat::Preserve);
    }
    by_step[++steps_[i]].push_back(i);
  }
  const AdamWOptions& o = options_;
  for (const auto& [step, indices] : by_step) {
    std::vector<torch::Tensor> params, grads, exp_avg, exp_avg_sq;
    for (size_t i : indices) {
      params.push_back(params_[i]);
      grads.push_back(params_[i].grad());
      exp_avg.push_back(exp_avg_[i]);
      exp_avg_sq.push_back(exp_avg_sq_[i]);
    }
    const double bias1 = 1 - std::pow(o.beta1, static_cast<double>(step));
    const double bias2 = 1 - std::pow(o.beta2, static_cast<double>(step));
    if (o.weight_decay != 0) at::_foreach_mul_(params, 1 - o.lr * o.weight_decay);
    at::_foreach_lerp_(exp_avg, grads, 1 - o.beta1);
    at::_foreach_mul_(exp_avg_sq, o.beta2);
    at::_foreach_addcmul_(exp_avg_sq, grads, grads, 1 - o.beta2);
    std::vector<torch::Tensor> denom = at::_foreach_sqrt(exp_avg_sq);
    at::_foreach_div_(denom, std::sqrt(bias2));
    at::_foreach_add_(denom, o.eps);
    at::_foreach_addcdiv_(params, exp_avg, denom, -o.lr / bias1);
  }
}

void AdamW::StepFused(const torch::Tensor& grad_scale, const torch::Tensor& found_inf) {
  const AdamWOptions& o = options_;
  for (const std::vector<size_t>& group : optim_internal::FusedGroups(params_, "AdamW")) {
    std::vector<torch::Tensor> params, grads, exp_avg, exp_avg_sq, steps;
    for (size_t i : group) {
      const torch::Tensor& param = params_[i];
      if (!step_tensors_[i].defined()) {
        step_tensors_[i] = at::full({}, static_cast<double>(steps_[i]), param.options().dtype(at::kFloat));
      }
      params.push_back(param);
      grads.push_back(optim_internal::LaidOutLike(param, param.grad()));
      exp_avg.push_back(optim_internal::StateLike(param, exp_avg_[i]));
      exp_avg_sq.push_back(optim_internal::StateLike(param, exp_avg_sq_[i]));
      steps.push_back(step_tensors_[i]);
    }
    const c10::Device device = params.front().device();
    const std::optional<at::Tensor> inf = optim_internal::OnDevice(found_inf, device);
    // As Python's fused AdamW: the kernel reads the incremented step for its
    // bias corrections; a skipped step takes the increment back.
    at::_foreach_add_(steps, 1);
    at::_fused_adamw_(params, grads, exp_avg, exp_avg_sq, /*max_exp_avg_sqs=*/{}, steps, o.lr, o.beta1, o.beta2,
                      o.weight_decay, o.eps, /*amsgrad=*/false, /*maximize=*/false,
                      optim_internal::OnDevice(grad_scale, device), inf);
    if (inf.has_value()) at::_foreach_sub_(steps, std::vector<at::Tensor>(steps.size(), *inf));
  }
}

AdamW::ParamState AdamW::state(size_t i) const {
  const int64_t step = step_tensors_[i].defined() ? static_cast<int64_t>(step_tensors_[i].item<double>()) : steps_[i];
  return {exp_avg_[i], exp_avg_sq_[i], step};
}

void AdamW::set_state(size_t i, ParamState state) {
  exp_avg_.at(i) = std::move(state.exp_avg);
  exp_avg_sq_.at(i) = std::move(state.exp_avg_sq);
  steps_.at(i) = state.step;
  step_tensors_.at(i) = torch::Tensor();  // rebuilt from steps_ by the next fused step
}

double LinearWarmupDecay(int64_t step, int64_t warmup, int64_t total) {
  if (step < warmup) return static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup));
  return std::max(0.0, static_cast<double>(total - step) / static_cast<double>(std::max<int64_t>(1, total - warmup)));
}

}  // namespace dlspeed
