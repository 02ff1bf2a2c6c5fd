#include "common/distributed/sync_batchnorm.h"

#include <optional>
#include <vector>

#include <ATen/ATen.h>
#include <torch/autograd.h>
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/Work.hpp>

namespace dlspeed {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

at::Tensor PerChannel(const at::Tensor& values) { return values.view({1, -1, 1, 1}); }

void AllreduceSum(const c10::intrusive_ptr<c10d::Backend>& group, at::Tensor& tensor) {
  std::vector<at::Tensor> tensors = {tensor};
  group->allreduce(tensors)->wait();
}

c10::intrusive_ptr<c10d::Backend> GroupOf(AutogradContext* ctx) {
  return c10::static_intrusive_pointer_cast<c10d::Backend>(ctx->saved_data["group"].toCapsule());
}

// y = (x - mean) * invstd * weight + bias with global statistics.
class SyncBatchNormFunction : public torch::autograd::Function<SyncBatchNormFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight,
                            const at::Tensor& bias, at::Tensor running_mean, at::Tensor running_var,
                            at::Tensor num_batches_tracked, std::optional<double> momentum, double eps,
                            c10::intrusive_ptr<c10d::Backend> group) {
    const at::Tensor xf = x.to(at::kFloat);
    const int64_t channels = x.size(1);
    const double local_count = static_cast<double>(x.numel() / channels);
    // Var = E[x^2] - mean^2 cancels badly when a channel's mean is large next
    // to its spread (a black background after the first convolution). So each
    // rank centres on its own mean first, and the few per-channel numbers are
    // combined in float64: sum(x) and sum(x^2) = M2_r + n_r * mean_r^2.
    const at::Tensor local_mean = xf.mean({0, 2, 3});
    const at::Tensor local_m2 = (xf - PerChannel(local_mean)).square().sum({0, 2, 3}).to(at::kDouble);
    const at::Tensor local_sum = local_mean.to(at::kDouble) * local_count;
    at::Tensor stats = at::cat({local_sum, local_m2 + local_sum * local_mean.to(at::kDouble),
                                at::full({1}, local_count, local_sum.options())});
    AllreduceSum(group, stats);
    const at::Tensor count64 = stats.narrow(0, 2 * channels, 1);
    const at::Tensor mean64 = stats.narrow(0, 0, channels) / count64;
    const at::Tensor var64 = (stats.narrow(0, channels, channels) / count64 - mean64 * mean64).clamp_min(0);
    const at::Tensor count = count64.to(at::kFloat);
    const at::Tensor mean = mean64.to(at::kFloat);
    const at::Tensor var = var64.to(at::kFloat);
    const at::Tensor invstd = (var + eps).rsqrt();
    {
      at::NoGradGuard no_grad;
      const at::Tensor unbiased = var * count / (count - 1).clamp_min(1);
      num_batches_tracked.add_(1);
      if (momentum.has_value()) {
        running_mean.mul_(1 - *momentum).add_(mean.to(running_mean.scalar_type()) * *momentum);
        running_var.mul_(1 - *momentum).add_(unbiased.to(running_var.scalar_type()) * *momentum);
      } else {
        // Without a momentum the running statistics are the cumulative average
        // of every batch's, as BatchNorm2d keeps them: this batch weighs 1 / n.
        // The weight stays on the device (reading n would sync a GPU).
        const at::Tensor weight_new = num_batches_tracked.to(running_mean.scalar_type()).reciprocal();
        running_mean.mul_(1 - weight_new).add_(mean.to(running_mean.scalar_type()) * weight_new);
        running_var.mul_(1 - weight_new).add_(unbiased.to(running_var.scalar_type()) * weight_new);
      }
    }
    const at::Tensor scale = invstd * weight.to(at::kFloat);
    at::Tensor y = (xf - PerChannel(mean)) * PerChannel(scale) + PerChannel(bias.to(at::kFloat));
    ctx->save_for_backward({xf, mean, invstd, weight, count});
    ctx->saved_data["group"] = c10::IValue::make_capsule(group);
    return y.to(x.scalar_type());
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const variable_list saved = ctx->get_saved_variables();
    const at::Tensor& xf = saved[0];
    const at::Tensor& mean = saved[1];
    const at::Tensor& invstd = saved[2];
    const at::Tensor& weight = saved[3];
    const at::Tensor& count = saved[4];
    const at::Tensor dy = grad_outputs[0].to(at::kFloat);
    const int64_t channels = xf.size(1);
    const at::Tensor xhat = (xf - PerChannel(mean)) * PerChannel(invstd);
    const at::Tensor sum_dy = dy.sum({0, 2, 3});
    const at::Tensor sum_dy_xhat = (dy * xhat).sum({0, 2, 3});
    // The gradient through the statistics needs the global sums; the weight
    // and bias gradients stay local (the gradient reducer averages them).
    at::Tensor global = at::cat({sum_dy, sum_dy_xhat});
    AllreduceSum(GroupOf(ctx), global);
    const at::Tensor mean_dy = global.narrow(0, 0, channels) / count;
    const at::Tensor mean_dy_xhat = global.narrow(0, channels, channels) / count;
    const at::Tensor dx = (dy - PerChannel(mean_dy) - xhat * PerChannel(mean_dy_xhat)) *
                          PerChannel(invstd * weight.to(at::kFloat));
    const auto dtype = grad_outputs[0].scalar_type();
    return {dx.to(dtype), sum_dy_xhat.to(weight.scalar_type()), sum_dy.to(weight.scalar_type()),
            at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor SyncBatchNorm2d(torch::nn::BatchNorm2dImpl& bn, const at::Tensor& x,
                           const c10::intrusive_ptr<c10d::Backend>& group) {
  if (!bn.is_training() || group->getSize() == 1) return bn.forward(x);
  TORCH_CHECK(x.dim() == 4, "SyncBatchNorm2d expects [N, C, H, W] input, got ", x.dim(), " dimensions");
  TORCH_CHECK(bn.options.affine() && bn.options.track_running_stats(),
              "SyncBatchNorm2d needs a BatchNorm2d with affine and track_running_stats");
  return SyncBatchNormFunction::apply(x, bn.weight, bn.bias, bn.running_mean, bn.running_var,
                                      bn.num_batches_tracked, bn.options.momentum(), bn.options.eps(), group);
}

}  // namespace dlspeed
