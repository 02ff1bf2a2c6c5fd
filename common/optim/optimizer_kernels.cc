#include "common/optim/optimizer_kernels.h"

#include <utility>

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace dlspeed {

absl::StatusOr<OptimizerKernels> ParseOptimizerKernels(absl::string_view flag, absl::string_view text) {
  if (text == "fused") return OptimizerKernels::kFused;
  if (text == "foreach") return OptimizerKernels::kForeach;
  return absl::InvalidArgumentError(
      absl::StrCat("--", flag, ": unknown optimizer kernels '", text, "' (choose fused or foreach)"));
}

std::string OptimizerKernelsName(OptimizerKernels kernels) {
  return kernels == OptimizerKernels::kFused ? "fused" : "foreach";
}

namespace optim_internal {

namespace {

// Whether `a` and `b` lay their elements out alike: equal strides wherever a
// dimension has more than one element (a size-1 dimension's stride is never
// used, and autograd's gradients may differ from the parameter there).
bool SameLayout(const at::Tensor& a, const at::Tensor& b) {
  if (a.sizes() != b.sizes()) return false;
  for (int64_t d = 0; d < a.dim(); ++d) {
    if (a.size(d) != 1 && a.stride(d) != b.stride(d)) return false;
  }
  return true;
}

}  // namespace

at::Tensor LaidOutLike(const at::Tensor& param, const at::Tensor& tensor) {
  if (SameLayout(param, tensor) && tensor.device() == param.device() &&
      tensor.scalar_type() == param.scalar_type() && tensor.is_non_overlapping_and_dense()) {
    return tensor;
  }
  return at::empty_like(param, at::MemoryFormat::Preserve).copy_(tensor);
}

at::Tensor& StateLike(const at::Tensor& param, at::Tensor& state) {
  state = state.defined() ? LaidOutLike(param, state) : at::zeros_like(param, at::MemoryFormat::Preserve);
  return state;
}

std::vector<std::vector<size_t>> FusedGroups(const std::vector<at::Tensor>& params, const char* optimizer) {
  std::vector<std::pair<std::pair<c10::Device, at::ScalarType>, std::vector<size_t>>> groups;
  for (size_t i = 0; i < params.size(); ++i) {
    if (!params[i].grad().defined()) continue;
    TORCH_CHECK(params[i].is_non_overlapping_and_dense(), optimizer,
                ": the fused kernels need dense parameters (parameter ", i,
                " is not; use --optimizer_kernels=foreach)");
    const std::pair<c10::Device, at::ScalarType> key{params[i].device(), params[i].scalar_type()};
    auto group = groups.begin();
    while (group != groups.end() && group->first != key) ++group;
    if (group == groups.end()) group = groups.insert(groups.end(), {key, {}});
    group->second.push_back(i);
  }
  std::vector<std::vector<size_t>> indices;
  for (auto& group : groups) indices.push_back(std::move(group.second));
  return indices;
}

std::optional<at::Tensor> OnDevice(const at::Tensor& tensor, const c10::Device& device) {
  if (!tensor.defined()) return std::nullopt;
  if (tensor.device() == device) return tensor;
  return tensor.to(device, /*non_blocking=*/true);
}

}  // namespace optim_internal
}  // namespace dlspeed
