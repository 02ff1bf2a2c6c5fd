// SyncBatchNorm for a BatchNorm2d module: in training, the batch statistics
// (mean and variance per channel) are those of the whole global batch, summed
// across the ranks of a process group, and so is the backward pass through
// them; as torch.nn.SyncBatchNorm. The module's parameters and running
// statistics are used and updated as BatchNorm2d would, so checkpoints keep
// BatchNorm2d's names.
//
//   torch::Tensor y = dlspeed::SyncBatchNorm2d(*bn, x, group->backend_ptr());
//
// In eval mode (or with one rank) it is bn.forward(x).
#ifndef DLSPEED_COMMON_DISTRIBUTED_SYNC_BATCHNORM_H_
#define DLSPEED_COMMON_DISTRIBUTED_SYNC_BATCHNORM_H_

#include <ATen/core/Tensor.h>
#include <c10/util/intrusive_ptr.h>
#include <torch/nn/modules/batchnorm.h>

namespace c10d {
class Backend;
}  // namespace c10d

namespace dlspeed {

// x: [N, C, H, W] (any memory format, fp32/fp16/bf16); returns x's dtype.
// Requires bn.options.affine() and track_running_stats() (as ResNets use);
// momentum unset keeps a cumulative average, as BatchNorm2d does.
at::Tensor SyncBatchNorm2d(torch::nn::BatchNorm2dImpl& bn, const at::Tensor& x,
                           const c10::intrusive_ptr<c10d::Backend>& group);

}  // namespace dlspeed

#endif  // DLSPEED_COMMON_DISTRIBUTED_SYNC_BATCHNORM_H_
