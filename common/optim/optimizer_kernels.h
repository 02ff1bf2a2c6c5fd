// Which ATen kernels an optimizer's step runs on: the multi-tensor _foreach_
// kernels (a few passes over the parameters, as Python's default foreach
// implementation on GPUs) or the fused ones (_fused_sgd_, _fused_adamw_: one
// pass reading each parameter, gradient and state once, as Python's
// fused=True). Fused kernels also take the GradScaler's scale and inf flag, so
// that an fp16 step unscales and skips inside the kernel without a host sync.
#ifndef DLSPEED_COMMON_OPTIM_OPTIMIZER_KERNELS_H_
#define DLSPEED_COMMON_OPTIM_OPTIMIZER_KERNELS_H_

#include <optional>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace dlspeed {

enum class OptimizerKernels { kFused, kForeach };

// Parses "fused" or "foreach"; the error names the flag and the choices.
absl::StatusOr<OptimizerKernels> ParseOptimizerKernels(absl::string_view flag, absl::string_view text);
// "fused" or "foreach".
std::string OptimizerKernelsName(OptimizerKernels kernels);

namespace optim_internal {

// `tensor` (a gradient or optimizer state) laid out as `param`, on its device
// and in its dtype, which fused kernels need: they walk all three as flat
// memory. Returns `tensor` itself when it already is (strides of size-1
// dimensions may differ), else a copy with param's layout.
at::Tensor LaidOutLike(const at::Tensor& param, const at::Tensor& tensor);

// Optimizer state for a fused kernel: `state` laid out like `param`
// (LaidOutLike), or zeros like it when undefined. Stored back into `state`.
at::Tensor& StateLike(const at::Tensor& param, at::Tensor& state);

// The indices of `params` that have a gradient, grouped by (device, dtype) in
// first-seen order: each fused kernel call takes tensors of one device and
// dtype. A parameter that is not dense is an error naming `optimizer`.
std::vector<std::vector<size_t>> FusedGroups(const std::vector<at::Tensor>& params, const char* optimizer);

// The GradScaler's scale or inf flag on `device`, as a fused kernel's optional
// argument: nullopt when undefined (kernels read any tensor they are given).
std::optional<at::Tensor> OnDevice(const at::Tensor& tensor, const c10::Device& device);

}  // namespace optim_internal
}  // namespace dlspeed

#endif  // DLSPEED_COMMON_OPTIM_OPTIMIZER_KERNELS_H_
