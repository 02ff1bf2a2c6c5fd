// Mixed precision: the --precision choice, an RAII autocast scope, and a
// gradient scaler that behaves like Python's torch.amp.GradScaler.
//
// Example (one training step):
//   dlspeed::GradScalerOptions options;
//   options.enabled = precision == dlspeed::Precision::kFp16;
//   dlspeed::GradScaler scaler(options);
//   {
//     dlspeed::AutocastScope autocast(device, precision);
//     loss = criterion(model->forward(images), labels);
//   }
//   scaler.Scale(loss).backward();
//   scaler.Unscale(params);                 // optional: before clipping
//   torch::nn::utils::clip_grad_norm_(params, 1.0);
//   scaler.Step([&] { optimizer.step(); });  // skipped on inf/NaN gradients
//   scaler.Update();
// With a fused optimizer (common/optim), which unscales and skips inside its
// kernel, the step needs no host sync:
//   scaler.FusedStep(params, [&](const at::Tensor& grad_scale, const at::Tensor& found_inf) {
//     sgd.Step(grad_scale, found_inf);
//   });
#ifndef DLSPEED_COMMON_AMP_H_
#define DLSPEED_COMMON_AMP_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace dlspeed {

enum class Precision { kFp32, kFp16, kBf16 };

// Parses "fp32", "fp16" or "bf16"; the error lists the choices.
absl::StatusOr<Precision> ParsePrecision(absl::string_view text);
// "fp32", "fp16" or "bf16".
std::string PrecisionName(Precision precision);
// The mixed precision a --precision flag asks for on `device`: "auto" is fp16
// on CUDA (with the GradScaler) and bf16 elsewhere; "fp16" and "bf16" are
// themselves; anything else (fp32 included) is InvalidArgument naming the flag.
absl::StatusOr<Precision> ParseMixedPrecision(absl::string_view flag, const c10::Device& device);

// Enables autocast for the device's type (e.g. CUDA or CPU) with the
// precision's dtype for the scope's lifetime, then restores the previous
// state; clears the autocast cast cache when the outermost scope ends. A
// no-op for kFp32. Scopes nest; use one per thread.
class AutocastScope {
 public:
  AutocastScope(const c10::Device& device, Precision precision);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool active_ = false;
  c10::DeviceType device_type_;
  bool previous_enabled_ = false;
  c10::ScalarType previous_dtype_ = c10::ScalarType::Undefined;
};

struct GradScalerOptions {
  double init_scale = 65536.0;
  double growth_factor = 2.0;
  double backoff_factor = 0.5;
  int64_t growth_interval = 2000;
  bool enabled = true;
};

// Dynamic loss scaling for fp16 training, as torch.amp.GradScaler (one
// optimizer per scaler). Per iteration: Scale(loss).backward(), optionally
// Unscale(params), Step(...), Update(). Misuse (Unscale twice, Step twice, or
// Update without an inf check) throws c10::Error, like Python's RuntimeError.
// When disabled, Scale returns the loss and Step just runs the step.
class GradScaler {
 public:
  explicit GradScaler(GradScalerOptions options = {});

  // loss * scale. The scale lives on the device of the first loss scaled.
  at::Tensor Scale(const at::Tensor& loss);
  // Divides the gradients of `params` by the scale in place and records
  // whether any is inf/NaN (grouped by device and dtype). Once per iteration.
  void Unscale(const std::vector<at::Tensor>& params);
  // Runs `optimizer_step` unless the unscaled gradients had an inf/NaN;
  // returns whether it ran. Requires Unscale(params) earlier this iteration.
  bool Step(const std::function<void()>& optimizer_step);
  // Unscale(params) if not yet done this iteration, then Step(optimizer_step).
  bool Step(const std::vector<at::Tensor>& params, const std::function<void()>& optimizer_step);
  // For an optimizer whose kernel divides by `grad_scale` and skips when
  // `found_inf` is 1 (PyTorch's fused kernels, as GradScaler.step hands them
  // to fused=True optimizers): checks the gradients of `params` for inf/NaN
  // (without dividing; skipped if Unscale ran, and then grad_scale is
  // undefined) and calls `fused_step` with both tensors, on the gradients'
  // device. Nothing waits for the device; TakeSkippedSteps() counts the skips.
  void FusedStep(const std::vector<at::Tensor>& params,
                 const std::function<void(const at::Tensor& grad_scale, const at::Tensor& found_inf)>& fused_step);
  // Backs the scale off after an inf/NaN, or grows it after growth_interval
  // clean iterations; starts the next iteration.
  void Update();

  // Steps skipped for inf/NaN gradients since the last call (by Step or
  // FusedStep), then starts counting afresh. Waits for the device when fused
  // steps were taken.
  int64_t TakeSkippedSteps();

  // The current scale (1.0 when disabled).
  double scale() const;
  bool enabled() const { return options_.enabled; }

  // Keys: scale, growth_factor, backoff_factor, growth_interval,
  // growth_tracker. Empty when disabled (like Python's state_dict()).
  std::map<std::string, double> State() const;
  // Restores State(); fails naming a missing or invalid key. A no-op when disabled.
  absl::Status LoadState(const std::map<std::string, double>& state);

 private:
  enum class Stage { kReady, kUnscaled, kStepped };

  // The inf checks of this iteration's gradients, one per device: dividing
  // them by the scale (Unscale) or by 1 (FusedStep's check alone).
  void CheckGradients(const std::vector<at::Tensor>& params, bool unscale);

  GradScalerOptions options_;
  int64_t init_growth_tracker_ = 0;
  at::Tensor scale_;           // float32 scalar, created by the first Scale()
  at::Tensor growth_tracker_;  // int32 scalar on the same device
  std::vector<at::Tensor> found_inf_;  // one per gradient device, this iteration
  Stage stage_ = Stage::kReady;
  int64_t skipped_ = 0;       // skipped steps decided on the host (Step)
  at::Tensor fused_skipped_;  // and in fused kernels (float, on the gradients' device)
  at::Tensor one_;            // 1.0 beside scale_: what FusedStep's check divides by
};

}  // namespace dlspeed

#endif  // DLSPEED_COMMON_AMP_H_
