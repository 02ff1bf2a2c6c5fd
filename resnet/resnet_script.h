// TorchScript export of this project's ResNets, built in C++ without Python:
// the module's forward is TorchScript source generated from the model's
// structure, its attributes are copies of the model's parameters and buffers,
// and it is then frozen and optimised for inference (BatchNorm folded into the
// convolutions; on the CPU, MKLDNN kernels where PyTorch finds them faster).
//
//   dlspeed::ResNet model = *dlspeed::MakeResNet(/*depth=*/18);
//   ... train, then ...
//   absl::StatusOr<torch::jit::Module> script = dlspeed::ScriptResNet(model);
//   absl::Status s = dlspeed::SaveScript(*script, "models/resnet18.ts");
//   absl::StatusOr<torch::jit::Module> loaded = dlspeed::LoadScript("models/resnet18.ts");
//   torch::Tensor logits = loaded->forward({images}).toTensor();  // [N, 10]
//
// The saved file is an ordinary TorchScript archive: Python's torch.jit.load
// reads it too.
#ifndef DLSPEED_RESNET_RESNET_SCRIPT_H_
#define DLSPEED_RESNET_RESNET_SCRIPT_H_

#include <map>
#include <string>

#include <torch/csrc/jit/api/module.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "resnet/resnet.h"

namespace dlspeed {

struct ScriptOptions {
  // torch::jit::freeze: parameters become constants, BatchNorm is folded into
  // the preceding convolution. The result has no parameters left.
  bool freeze = true;
  // torch::jit::optimize_for_inference (conv-add-relu fusion, MKLDNN on the
  // CPU). Implies freezing, as it does in PyTorch.
  bool optimize = true;
};

// The attribute name under which the scripted module keeps the model's
// parameter or buffer `name` (torchvision's name, e.g. "layer1.0.bn1.weight"
// -> "layer1__0__bn1__weight"): every "." becomes "__".
std::string ScriptAttributeName(absl::string_view name);

// Builds a TorchScript module computing what `model` computes in eval mode
// (BatchNorm with running statistics), on the model's device and dtype; the
// model itself is not changed. The module is in eval mode; without freezing
// it holds copies of all parameters (as parameters) and buffers (as buffers)
// under ScriptAttributeName names. A model whose structure is not the
// ResNet of resnet.h is InvalidArgument; a TorchScript failure is Internal.
absl::StatusOr<torch::jit::Module> ScriptResNet(const ResNet& model,
                                                const ScriptOptions& options = ScriptOptions());

// The operators of the module's forward graph and how often each occurs,
// most frequent first, constants left out: "aten::conv2d x20, aten::relu x17,
// ...". Shows what freezing and optimize_for_inference made of the model (on
// a GPU, whether cuDNN's fused conv-add-relu took the place of three ops).
std::string GraphOperators(torch::jit::Module& module);

// Writes `module` to `path` as a TorchScript archive, atomically (a temporary
// file in the same directory renamed into place), creating missing parent
// directories. Errors name `path`. A module optimised on the CPU holds MKLDNN
// weight constants, which TorchScript cannot serialise: those are written as
// dense constants converted to MKLDNN as the loaded module runs (same
// results; `module` itself is not changed).
// `extra_files` (name -> contents) are stored beside the module, where
// Python's torch.jit.load(path, _extra_files=...) can read them too.
absl::Status SaveScript(torch::jit::Module& module, const std::string& path,
                        const std::map<std::string, std::string>& extra_files = {});

// Loads a TorchScript archive onto the CPU, in eval mode. A missing file is
// NotFound, an empty or corrupt one DataLoss; errors name `path`. For each
// name in `extra_files` the archive holds, its contents are filled in; the
// other names are erased.
absl::StatusOr<torch::jit::Module> LoadScript(const std::string& path,
                                              std::map<std::string, std::string>* extra_files = nullptr);

}  // namespace dlspeed

#endif  // DLSPEED_RESNET_RESNET_SCRIPT_H_
