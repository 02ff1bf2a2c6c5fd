// AdamW (torch.optim.AdamW's update: decoupled weight decay, bias-corrected
// moments) on ATen's fused kernel (_fused_adamw_: one pass per parameter, as
// Python's fused=True) or its multi-tensor _foreach_ kernels, and the linear warmup and
// decay schedule that fine-tuning uses (transformers'
// get_linear_schedule_with_warmup).
//
//   dlspeed::AdamW adamw(model->parameters(), {/*lr=*/2e-5});
//   for (int64_t step = 0; step < total; ++step) {
//     adamw.set_lr(2e-5 * dlspeed::LinearWarmupDecay(step, warmup, total));
//     adamw.ZeroGrad();
//     loss.backward();
//     adamw.Step();
//   }
#ifndef DLSPEED_COMMON_OPTIM_ADAMW_H_
#define DLSPEED_COMMON_OPTIM_ADAMW_H_

#include <cstdint>
#include <vector>

#include <torch/types.h>

#include "common/optim/optimizer_kernels.h"

namespace dlspeed {

struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;
  OptimizerKernels kernels = OptimizerKernels::kFused;
};

class AdamW {
 public:
  AdamW(std::vector<torch::Tensor> params, AdamWOptions options);

  // Sets every gradient to none (undefined).
  void ZeroGrad();
  // One update of the parameters that have gradients (others are skipped and
  // keep their own step count, as in PyTorch). Fused kernels only:
  // `grad_scale` divides the gradients first and a `found_inf` of 1 skips the
  // update and leaves the step counts (GradScaler::FusedStep passes them).
  void Step(const torch::Tensor& grad_scale = {}, const torch::Tensor& found_inf = {});
  bool fused() const { return options_.kernels == OptimizerKernels::kFused; }

  const AdamWOptions& options() const { return options_; }
  void set_lr(double lr) { options_.lr = lr; }

  // Per-parameter state, for checkpoints: the moments (undefined before the
  // parameter's first step) and its step count.
  struct ParamState {
    torch::Tensor exp_avg, exp_avg_sq;
    int64_t step = 0;
  };
  ParamState state(size_t i) const;
  void set_state(size_t i, ParamState state);
  size_t size() const { return params_.size(); }

 private:
  void StepForeach();
  void StepFused(const torch::Tensor& grad_scale, const torch::Tensor& found_inf);

  std::vector<torch::Tensor> params_;
  std::vector<torch::Tensor> exp_avg_, exp_avg_sq_;
  std::vector<int64_t> steps_;              // foreach: counted on the host
  std::vector<torch::Tensor> step_tensors_;  // fused: float scalars on the parameter's device
  AdamWOptions options_;
};

// Learning-rate factor at `step` (0-based) of `total`: rising linearly from 0
// over `warmup` steps to 1, then falling linearly to 0 at `total`.
double LinearWarmupDecay(int64_t step, int64_t warmup, int64_t total);

}  // namespace dlspeed

#endif  // DLSPEED_COMMON_OPTIM_ADAMW_H_
