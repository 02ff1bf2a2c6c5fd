// Real int8 post-training static quantization of the ResNets on the CPU.
//
// Each BatchNorm is folded into the convolution before it (eval-mode running
// statistics); the folded weights become per-output-channel symmetric qint8
// tensors, prepacked for the chosen quantized engine; calibration batches run
// through the folded fp32 network to fix the per-tensor quint8 scale and zero
// point of every quantized activation (input, each conv output, each residual
// sum, the logits). The forward pass then runs the quantized engine's kernels
// end to end (quantized::conv2d_relu, quantized::conv2d, quantized::add_relu,
// quantized max/avg pooling, quantized::linear) and dequantizes the logits.
//
//   std::vector<torch::Tensor> calibration = ...;  // float NCHW, normalized
//   dlspeed::QuantizeOptions options;
//   options.engine = "x86";
//   absl::StatusOr<std::unique_ptr<dlspeed::QuantizedResNet>> qmodel =
//       dlspeed::QuantizeResNet(model, calibration, options);
//   if (!qmodel.ok()) return qmodel.status();
//   c10::InferenceMode inference;
//   torch::Tensor logits = (*qmodel)->forward(images);  // float [N, classes]
//
// The quantized engine is process-wide state in LibTorch: forward() selects
// this model's engine for the duration of the call and restores the previous
// one, so two models quantized for different engines must not run their
// forward passes concurrently.
#ifndef DLSPEED_RESNET_QUANTIZED_RESNET_H_
#define DLSPEED_RESNET_QUANTIZED_RESNET_H_

#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/core/QEngine.h>
#include <torch/csrc/jit/api/module.h>

#include "absl/status/statusor.h"
#include "resnet/resnet.h"

namespace dlspeed {

struct QuantizeOptions {
  // LibTorch quantized engine: "x86" (default), "fbgemm", "onednn" or
  // "qnnpack", where the installed LibTorch supports it. Activations use
  // PyTorch's default qconfig for the engine: 7-bit (reduce_range) for x86
  // and fbgemm, 8-bit for onednn and qnnpack.
  std::string engine = "x86";
};

// OK when `engine` is one QuantizeOptions names and this LibTorch has it;
// otherwise InvalidArgument saying which engines there are.
absl::Status CheckQuantizedEngine(const std::string& engine);

// An int8 ResNet made by QuantizeResNet. Immutable after construction.
class QuantizedResNet {
 public:
  struct Impl;
  explicit QuantizedResNet(std::unique_ptr<Impl> impl);
  ~QuantizedResNet();
  QuantizedResNet(const QuantizedResNet&) = delete;
  QuantizedResNet& operator=(const QuantizedResNet&) = delete;

  // Logits (float, [N, num_classes]) for float NCHW images [N, 3, H, W],
  // normalized as the calibration data was. Runs on the CPU; a tensor on
  // another device is copied there. Throws c10::Error on a wrongly shaped input.
  torch::Tensor forward(const torch::Tensor& images) const;

  int depth() const;
  int64_t num_classes() const;
  // The engine name as given in QuantizeOptions ("x86", "fbgemm", ...).
  std::string engine() const;
  // The same engine as LibTorch names it, e.g. for at::globalContext().setQEngine.
  at::QEngine qengine() const;

  // The same int8 network as a frozen TorchScript module (the prepacked
  // weights as attributes, the quantized ops in its forward), which saves with
  // torch::jit::save and loads in C++ or Python. Its outputs equal forward()'s
  // when run with this model's engine selected (setQEngine(qengine())).
  absl::StatusOr<torch::jit::Module> ToTorchScript() const;

 private:
  std::unique_ptr<Impl> impl_;
};

// Quantizes `model` (any depth MakeResNet builds; its BatchNorm running
// statistics are used as in eval mode, whatever the module's training flag;
// the model itself is not modified) with activation ranges observed on
// `calibration_batches` (float [N, 3, H, W], normalized like the inputs the
// quantized model will see). Errors: InvalidArgument for an unknown or
// unsupported engine, no calibration batches, a badly shaped batch, or
// batches that make an activation infinite or NaN (a diverged model);
// FailedPrecondition when the model does not have the expected ResNet layout
// or the LibTorch lacks the quantized kernels.
absl::StatusOr<std::unique_ptr<QuantizedResNet>> QuantizeResNet(
    const ResNet& model, const std::vector<torch::Tensor>& calibration_batches,
    const QuantizeOptions& options = {});

}  // namespace dlspeed

#endif  // DLSPEED_RESNET_QUANTIZED_RESNET_H_
