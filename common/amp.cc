#include "common/amp.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <c10/core/GradMode.h>

#include "absl/strings/str_cat.h"

namespace dlspeed {

absl::StatusOr<Precision> ParsePrecision(absl::string_view text) {
  if (text == "fp32") return Precision::kFp32;
  if (text == "fp16") return Precision::kFp16;
  if (text == "bf16") return Precision::kBf16;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown precision '", text, "': expected fp32, fp16 or bf16"));
}

absl::StatusOr<Precision> ParseMixedPrecision(absl::string_view flag, const c10::Device& device) {
  if (flag == "auto") return device.is_cuda() ? Precision::kFp16 : Precision::kBf16;
  if (flag == "fp16") return Precision::kFp16;
  if (flag == "bf16") return Precision::kBf16;
  return absl::InvalidArgumentError(absl::StrCat("--precision must be auto, fp16 or bf16, got '", flag, "'"));
}

std::string PrecisionName(Precision precision) {
  switch (precision) {
    case Precision::kFp32:
      return "fp32";
    case Precision::kFp16:
      return "fp16";
    case Precision::kBf16:
      return "bf16";
  }
  return "unknown";
}

AutocastScope::AutocastScope(const c10::Device& device, Precision precision)
    : device_type_(device.type()) {
  if (precision == Precision::kFp32) return;
  TORCH_CHECK(at::autocast::is_autocast_available(device_type_), "autocast is not available for ",
              device.str());
  previous_enabled_ = at::autocast::is_autocast_enabled(device_type_);
  previous_dtype_ = at::autocast::get_autocast_dtype(device_type_);
  at::autocast::set_autocast_enabled(device_type_, true);
  at::autocast::set_autocast_dtype(
      device_type_, precision == Precision::kFp16 ? at::kHalf : at::kBFloat16);
  at::autocast::increment_nesting();
  active_ = true;
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  at::autocast::set_autocast_enabled(device_type_, previous_enabled_);
  at::autocast::set_autocast_dtype(device_type_, previous_dtype_);
}

GradScaler::GradScaler(GradScalerOptions options) : options_(options) {
  TORCH_CHECK(options_.init_scale > 0, "GradScaler: init_scale must be positive");
  TORCH_CHECK(options_.growth_factor > 1.0, "GradScaler: growth_factor must be > 1");
  TORCH_CHECK(options_.backoff_factor > 0 && options_.backoff_factor < 1.0,
              "GradScaler: backoff_factor must be in (0, 1)");
  TORCH_CHECK(options_.growth_interval >= 1, "GradScaler: growth_interval must be >= 1");
}

at::Tensor GradScaler::Scale(const at::Tensor& loss) {
  if (!options_.enabled) return loss;
  if (!scale_.defined()) {
    scale_ = at::full({}, options_.init_scale, at::TensorOptions(loss.device()).dtype(at::kFloat));
    growth_tracker_ = at::full({}, init_growth_tracker_,
                               at::TensorOptions(loss.device()).dtype(at::kInt));
  }
  return loss * scale_.to(loss.device(), /*non_blocking=*/true);
}

void GradScaler::Unscale(const std::vector<at::Tensor>& params) {
  if (!options_.enabled) return;
  TORCH_CHECK(scale_.defined(), "GradScaler: Unscale() called before Scale()");
  TORCH_CHECK(stage_ != Stage::kUnscaled,
              "GradScaler: Unscale() has already been called since the last Update()");
  TORCH_CHECK(stage_ != Stage::kStepped, "GradScaler: Unscale() called after Step()");
  CheckGradients(params, /*unscale=*/true);
  stage_ = Stage::kUnscaled;
}

void GradScaler::CheckGradients(const std::vector<at::Tensor>& params, bool unscale) {
  c10::NoGradGuard no_grad;
  if (!unscale && !one_.defined()) one_ = at::ones({}, scale_.options());  // once, not a fill every step
  const at::Tensor inv_scale = unscale ? scale_.to(at::kDouble).reciprocal().to(at::kFloat) : one_;

  // Gradients grouped by device, then dtype, in first-seen order.
  std::vector<std::pair<c10::Device, std::vector<std::pair<at::ScalarType, std::vector<at::Tensor>>>>>
      groups;
  for (const at::Tensor& param : params) {
    const at::Tensor& grad = param.grad();
    if (!grad.defined()) continue;
    // As in PyTorch, fp16 gradients cannot be unscaled, but a fused step may
    // check them for infs and unscale them in its own kernel.
    TORCH_CHECK(!unscale || grad.scalar_type() != at::kHalf, "GradScaler: attempting to unscale fp16 gradients");
    TORCH_CHECK(!grad.is_sparse(), "GradScaler: sparse gradients are not supported");
    auto device = std::find_if(groups.begin(), groups.end(),
                               [&](const auto& g) { return g.first == grad.device(); });
    if (device == groups.end()) device = groups.insert(groups.end(), {grad.device(), {}});
    auto dtype = std::find_if(device->second.begin(), device->second.end(),
                              [&](const auto& g) { return g.first == grad.scalar_type(); });
    if (dtype == device->second.end()) {
      dtype = device->second.insert(device->second.end(), {grad.scalar_type(), {}});
    }
    dtype->second.push_back(grad);
  }

  found_inf_.clear();
  for (auto& [device, by_dtype] : groups) {
    at::Tensor found_inf = at::zeros({}, at::TensorOptions(device).dtype(at::kFloat));
    const at::Tensor device_inv_scale = inv_scale.to(device, /*non_blocking=*/true);
    for (auto& [dtype, grads] : by_dtype) {
      at::_amp_foreach_non_finite_check_and_unscale_(grads, found_inf, device_inv_scale);
    }
    found_inf_.push_back(found_inf);
  }
}

bool GradScaler::Step(const std::function<void()>& optimizer_step) {
  if (!options_.enabled) {
    optimizer_step();
    return true;
  }
  TORCH_CHECK(stage_ != Stage::kStepped, "GradScaler: Step() has already been called since the last Update()");
  TORCH_CHECK(stage_ == Stage::kUnscaled,
              "GradScaler: Step(optimizer_step) needs Unscale(params) first; or call Step(params, optimizer_step)");
  TORCH_CHECK(!found_inf_.empty(), "GradScaler: no inf checks were recorded (no parameter has a gradient)");
  double found = 0;
  for (const at::Tensor& found_inf : found_inf_) found += found_inf.item<double>();
  stage_ = Stage::kStepped;
  if (found != 0) {
    ++skipped_;
    return false;
  }
  optimizer_step();
  return true;
}

bool GradScaler::Step(const std::vector<at::Tensor>& params,
                      const std::function<void()>& optimizer_step) {
  if (options_.enabled && stage_ == Stage::kReady) Unscale(params);
  return Step(optimizer_step);
}

void GradScaler::FusedStep(
    const std::vector<at::Tensor>& params,
    const std::function<void(const at::Tensor& grad_scale, const at::Tensor& found_inf)>& fused_step) {
  if (!options_.enabled) {
    fused_step(at::Tensor(), at::Tensor());
    return;
  }
  TORCH_CHECK(scale_.defined(), "GradScaler: FusedStep() called before Scale()");
  TORCH_CHECK(stage_ != Stage::kStepped, "GradScaler: FusedStep() has already been called since the last Update()");
  const bool unscaled = stage_ == Stage::kUnscaled;
  if (!unscaled) CheckGradients(params, /*unscale=*/false);
  TORCH_CHECK(!found_inf_.empty(), "GradScaler: no inf checks were recorded (no parameter has a gradient)");
  TORCH_CHECK(found_inf_.size() == 1, "GradScaler: FusedStep() needs every gradient on one device");
  const at::Tensor& found_inf = found_inf_[0];  // 0 or 1: one device
  fused_step(unscaled ? at::Tensor() : scale_.to(found_inf.device(), /*non_blocking=*/true), found_inf);
  // The kernel decided on the device whether to skip; count it there too.
  if (!fused_skipped_.defined()) fused_skipped_ = at::zeros({}, found_inf.options());
  fused_skipped_.add_(found_inf);
  stage_ = Stage::kStepped;
}

int64_t GradScaler::TakeSkippedSteps() {
  int64_t skipped = skipped_;
  skipped_ = 0;
  if (fused_skipped_.defined()) {
    skipped += static_cast<int64_t>(fused_skipped_.item<double>());
    fused_skipped_.zero_();
  }
  return skipped;
}

void GradScaler::Update() {
  if (!options_.enabled) return;
  TORCH_CHECK(scale_.defined(), "GradScaler: Update() called before Scale()");
  TORCH_CHECK(!found_inf_.empty(), "GradScaler: no inf checks were recorded prior to Update()");
  at::Tensor found_inf = found_inf_[0].to(scale_.device(), /*non_blocking=*/true);
  for (size_t i = 1; i < found_inf_.size(); ++i) {
    found_inf = found_inf + found_inf_[i].to(scale_.device(), /*non_blocking=*/true);
  }
  at::_amp_update_scale_(scale_, growth_tracker_, found_inf, options_.growth_factor,
                         options_.backoff_factor, options_.growth_interval);
  found_inf_.clear();
  stage_ = Stage::kReady;
}

double GradScaler::scale() const {
  if (!options_.enabled) return 1.0;
  return scale_.defined() ? scale_.item<double>() : options_.init_scale;
}

std::map<std::string, double> GradScaler::State() const {
  if (!options_.enabled) return {};
  return {
      {"scale", scale()},
      {"growth_factor", options_.growth_factor},
      {"backoff_factor", options_.backoff_factor},
      {"growth_interval", static_cast<double>(options_.growth_interval)},
      {"growth_tracker", growth_tracker_.defined() ? growth_tracker_.item<double>()
                                                   : static_cast<double>(init_growth_tracker_)},
  };
}

absl::Status GradScaler::LoadState(const std::map<std::string, double>& state) {
  if (!options_.enabled) return absl::OkStatus();
  if (state.empty()) {
    return absl::InvalidArgumentError(
        "GradScaler state is empty (was it saved from a disabled GradScaler?)");
  }
  double values[5];
  const char* keys[5] = {"scale", "growth_factor", "backoff_factor", "growth_interval",
                         "growth_tracker"};
  for (int i = 0; i < 5; ++i) {
    auto it = state.find(keys[i]);
    if (it == state.end()) {
      return absl::InvalidArgumentError(absl::StrCat("GradScaler state lacks '", keys[i], "'"));
    }
    values[i] = it->second;
  }
  const auto invalid = [](absl::string_view key, double value) {
    return absl::InvalidArgumentError(
        absl::StrCat("GradScaler state has an invalid ", key, ": ", value));
  };
  const auto is_count = [](double v) { return std::isfinite(v) && v >= 0 && v == std::floor(v); };
  if (!std::isfinite(values[0]) || values[0] <= 0) return invalid(keys[0], values[0]);
  if (!std::isfinite(values[1]) || values[1] <= 1) return invalid(keys[1], values[1]);
  if (!(values[2] > 0 && values[2] < 1)) return invalid(keys[2], values[2]);
  // The interval is an int64 and the tracker an int32 tensor: larger values would overflow.
  if (!is_count(values[3]) || values[3] < 1 || values[3] > 9.0e18) return invalid(keys[3], values[3]);
  if (!is_count(values[4]) || values[4] > std::numeric_limits<int32_t>::max()) return invalid(keys[4], values[4]);

  options_.init_scale = values[0];
  options_.growth_factor = values[1];
  options_.backoff_factor = values[2];
  options_.growth_interval = static_cast<int64_t>(values[3]);
  init_growth_tracker_ = static_cast<int64_t>(values[4]);
  if (scale_.defined()) {
    scale_.fill_(options_.init_scale);
    growth_tracker_.fill_(init_growth_tracker_);
  }
  return absl::OkStatus();
}

}  // namespace dlspeed
