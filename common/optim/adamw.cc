#include "common/optim/adamw.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <utility>

#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>

namespace dlspeed {

ForeachAdamW::ForeachAdamW(std::vector<torch::Tensor> params, AdamWOptions options)
    : params_(std::move(params)),
      exp_avg_(params_.size()),
      exp_avg_sq_(params_.size()),
      steps_(params_.size(), 0),
      options_(options) {}

void ForeachAdamW::ZeroGrad() {
  for (auto& p : params_) p.mutable_grad() = torch::Tensor();
}

void ForeachAdamW::Step() {
  torch::NoGradGuard no_grad;
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

void ForeachAdamW::set_state(size_t i, ParamState state) {
  exp_avg_.at(i) = std::move(state.exp_avg);
  exp_avg_sq_.at(i) = std::move(state.exp_avg_sq);
  steps_.at(i) = state.step;
}

double LinearWarmupDecay(int64_t step, int64_t warmup, int64_t total) {
  if (step < warmup) return static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup));
  return std::max(0.0, static_cast<double>(total - step) / static_cast<double>(std::max<int64_t>(1, total - warmup)));
}

}  // namespace dlspeed
