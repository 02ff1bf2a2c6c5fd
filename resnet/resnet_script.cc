#include "resnet/resnet_script.h"

#include <algorithm>
#include <charconv>
#include <exception>
#include <filesystem>
#include <iterator>
#include <map>
#include <memory>
#include <sstream>
#include <system_error>
#include <utility>
#include <variant>
#include <vector>

#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/serialization/import.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/pooling.h>
#include <torch/utils.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "common/atomic_file.h"
#include "common/exception_text.h"

namespace dlspeed {
namespace {

namespace nn = torch::nn;

using Children = std::map<std::string, std::shared_ptr<nn::Module>>;

// A TorchScript float literal that reads back as exactly `value`.
std::string FloatLiteral(double value) {
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  std::string text(buffer, result.ptr);
  if (text.find_first_of(".en") == std::string::npos) text += ".0";  // 1 -> 1.0
  return text;
}

template <size_t D>
std::string IntList(const torch::ExpandingArray<D>& values) {
  return absl::StrCat("[", absl::StrJoin(*values, ", "), "]");
}

// The generated forward(), and the names under which the module's attributes
// are found.
class SourceWriter {
 public:
  void Line(absl::string_view text) { absl::StrAppend(&source_, "    ", text, "\n"); }
  const std::string& source() const { return source_; }

 private:
  std::string source_ = "def forward(self, x: Tensor) -> Tensor:\n";
};

std::string Attr(const std::string& module_name, absl::string_view attribute) {
  return absl::StrCat("self.", ScriptAttributeName(absl::StrCat(module_name, ".", attribute)));
}

absl::Status Unexpected(const std::string& name, absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("cannot script the ResNet: module '", name, "' ", what));
}

Children ChildrenOf(const nn::Module& module) {
  Children children;
  for (const auto& item : module.named_children()) children[item.key()] = item.value();
  return children;
}

// Looks up child `key` of the module called `parent` ("" for the root).
absl::StatusOr<std::shared_ptr<nn::Module>> Child(const Children& children, const std::string& parent,
                                                  const std::string& key) {
  auto it = children.find(key);
  if (it == children.end()) return Unexpected(parent.empty() ? key : parent + "." + key, "is missing");
  return it->second;
}

std::string Join(const std::string& parent, const std::string& key) {
  return parent.empty() ? key : absl::StrCat(parent, ".", key);
}

// `out = conv(in)` for the Conv2d called `name`.
absl::Status EmitConv(const std::string& name, const nn::Module& module, const std::string& in,
                      const std::string& out, SourceWriter& writer) {
  const auto* conv = module.as<nn::Conv2dImpl>();
  if (conv == nullptr) return Unexpected(name, "is not a Conv2d");
  const auto& options = conv->options;
  const auto* padding = std::get_if<torch::ExpandingArray<2>>(&options.padding());
  if (padding == nullptr) return Unexpected(name, "has 'same' or 'valid' padding");
  if (!std::holds_alternative<torch::enumtype::kZeros>(options.padding_mode())) {
    return Unexpected(name, "has a padding mode other than zeros");
  }
  const std::string bias = options.bias() ? Attr(name, "bias") : "None";
  writer.Line(absl::StrCat(out, " = torch.conv2d(", in, ", ", Attr(name, "weight"), ", ", bias, ", ",
                           IntList(options.stride()), ", ", IntList(*padding), ", ",
                           IntList(options.dilation()), ", ", options.groups(), ")"));
  return absl::OkStatus();
}

// `var = batch_norm(var)` in eval mode for the BatchNorm2d called `name`.
absl::Status EmitBatchNorm(const std::string& name, const nn::Module& module, const std::string& var,
                           SourceWriter& writer) {
  const auto* bn = module.as<nn::BatchNorm2dImpl>();
  if (bn == nullptr) return Unexpected(name, "is not a BatchNorm2d");
  const auto& options = bn->options;
  if (!options.affine() || !options.track_running_stats()) {
    return Unexpected(name, "lacks affine parameters or running statistics");
  }
  writer.Line(absl::StrCat(var, " = torch.batch_norm(", var, ", ", Attr(name, "weight"), ", ",
                           Attr(name, "bias"), ", ", Attr(name, "running_mean"), ", ",
                           Attr(name, "running_var"), ", False, ",
                           FloatLiteral(options.momentum().value_or(0.1)), ", ",
                           FloatLiteral(options.eps()), ", True)"));
  return absl::OkStatus();
}

// `var = bn(conv(in))` for children conv<suffix> and bn<suffix> of `parent`.
absl::Status EmitConvBn(const Children& children, const std::string& parent, const std::string& conv_key,
                        const std::string& bn_key, const std::string& in, const std::string& var,
                        SourceWriter& writer) {
  absl::StatusOr<std::shared_ptr<nn::Module>> conv = Child(children, parent, conv_key);
  if (!conv.ok()) return conv.status();
  absl::StatusOr<std::shared_ptr<nn::Module>> bn = Child(children, parent, bn_key);
  if (!bn.ok()) return bn.status();
  absl::Status status = EmitConv(Join(parent, conv_key), **conv, in, var, writer);
  if (!status.ok()) return status;
  return EmitBatchNorm(Join(parent, bn_key), **bn, var, writer);
}

// A BasicBlock or Bottleneck: conv1/bn1 ... convK/bnK with ReLUs between,
// the shortcut (downsample.0/.1 where present) added, then a ReLU. Reads and
// writes `x`.
absl::Status EmitBlock(const std::string& name, const nn::Module& block, SourceWriter& writer) {
  const Children children = ChildrenOf(block);
  int convs = 0;
  while (children.count(absl::StrCat("conv", convs + 1)) > 0) ++convs;
  if (convs < 2) return Unexpected(name, "is not a BasicBlock or Bottleneck");
  const bool has_downsample = children.count("downsample") > 0;
  if (children.size() != static_cast<size_t>(2 * convs) + (has_downsample ? 1 : 0)) {
    return Unexpected(name, "has modules other than convN, bnN and downsample");
  }
  for (int i = 1; i <= convs; ++i) {
    absl::Status status = EmitConvBn(children, name, absl::StrCat("conv", i), absl::StrCat("bn", i),
                                     i == 1 ? "x" : "out", "out", writer);
    if (!status.ok()) return status;
    if (i < convs) writer.Line("out = torch.relu(out)");
  }
  std::string shortcut = "x";
  if (has_downsample) {
    const std::string downsample_name = Join(name, "downsample");
    const Children downsample = ChildrenOf(*children.at("downsample"));
    if (downsample.size() != 2) return Unexpected(downsample_name, "is not a Conv2d and a BatchNorm2d");
    absl::Status status = EmitConvBn(downsample, downsample_name, "0", "1", "x", "identity", writer);
    if (!status.ok()) return status;
    shortcut = "identity";
  }
  writer.Line(absl::StrCat("x = torch.relu(out + ", shortcut, ")"));
  return absl::OkStatus();
}

absl::StatusOr<std::string> ForwardSource(const ResNetImpl& model) {
  const Children children = ChildrenOf(model);
  static const char* const kExpected[] = {"conv1", "bn1", "maxpool", "layer1", "layer2",
                                          "layer3", "layer4", "fc"};
  if (children.size() != std::size(kExpected)) {
    return Unexpected("ResNet", "does not have torchvision's children conv1 ... layer4, fc");
  }
  SourceWriter writer;
  absl::Status status = EmitConvBn(children, "", "conv1", "bn1", "x", "x", writer);
  if (!status.ok()) return status;
  writer.Line("x = torch.relu(x)");

  absl::StatusOr<std::shared_ptr<nn::Module>> maxpool_module = Child(children, "", "maxpool");
  if (!maxpool_module.ok()) return maxpool_module.status();
  const auto* maxpool = (*maxpool_module)->as<nn::MaxPool2dImpl>();
  if (maxpool == nullptr) return Unexpected("maxpool", "is not a MaxPool2d");
  const auto& pool = maxpool->options;
  writer.Line(absl::StrCat("x = torch.max_pool2d(x, ", IntList(pool.kernel_size()), ", ",
                           IntList(pool.stride()), ", ", IntList(pool.padding()), ", ",
                           IntList(pool.dilation()), ", ", pool.ceil_mode() ? "True" : "False", ")"));

  for (int layer = 1; layer <= 4; ++layer) {
    const std::string layer_name = absl::StrCat("layer", layer);
    absl::StatusOr<std::shared_ptr<nn::Module>> layer_module = Child(children, "", layer_name);
    if (!layer_module.ok()) return layer_module.status();
    const auto* sequential = (*layer_module)->as<nn::SequentialImpl>();
    if (sequential == nullptr || sequential->size() == 0) {
      return Unexpected(layer_name, "is not a non-empty Sequential");
    }
    for (size_t i = 0; i < sequential->size(); ++i) {
      status = EmitBlock(absl::StrCat(layer_name, ".", i), *sequential->ptr(i), writer);
      if (!status.ok()) return status;
    }
  }

  absl::StatusOr<std::shared_ptr<nn::Module>> fc = Child(children, "", "fc");
  if (!fc.ok()) return fc.status();
  const auto* linear = (*fc)->as<nn::LinearImpl>();
  if (linear == nullptr) return Unexpected("fc", "is not a Linear");
  writer.Line("x = torch.adaptive_avg_pool2d(x, [1, 1])");
  writer.Line("x = torch.flatten(x, 1)");
  writer.Line(absl::StrCat("return torch.linear(x, ", Attr("fc", "weight"), ", ",
                           linear->options.bias() ? Attr("fc", "bias") : "None", ")"));
  return writer.source();
}

const c10::Symbol kMkldnnConstant = c10::Symbol::fromQualString("prim::ConstantMKLDNNTensor");

bool HasMkldnnConstants(torch::jit::Module& module) {
  if (!module.find_method("forward")) return false;
  for (const torch::jit::Node* node : module.get_method("forward").graph()->nodes()) {
    if (node->kind() == kMkldnnConstant) return true;
  }
  return false;
}

// optimize_for_inference on the CPU keeps the folded weights as MKLDNN tensor
// constants (prim::ConstantMKLDNNTensor), which TorchScript's serializer
// cannot write. Replaces each with a dense constant converted to MKLDNN when
// the graph runs (a cheap reorder per call), so the module saves and loads.
void SerializableMkldnnConstants(torch::jit::Module& module) {
  std::shared_ptr<torch::jit::Graph> graph = module.get_method("forward").graph();
  std::vector<torch::jit::Node*> constants;
  for (torch::jit::Node* node : graph->nodes()) {
    if (node->kind() == kMkldnnConstant) constants.push_back(node);
  }
  // prim::BroadcastMKLDNNTensors does not print as loadable code either; in
  // a ResNet it only ever sees a residual sum's two same-shaped operands, so
  // it is the identity there.
  const c10::Symbol broadcast = c10::Symbol::fromQualString("prim::BroadcastMKLDNNTensors");
  std::vector<torch::jit::Node*> broadcasts;
  for (torch::jit::Node* node : graph->nodes()) {
    if (node->kind() == broadcast) broadcasts.push_back(node);
  }
  for (torch::jit::Node* node : broadcasts) {
    for (size_t i = 0; i < node->outputs().size(); ++i) {
      node->output(i)->replaceAllUsesWith(node->input(i));
    }
    node->destroy();
  }
  for (torch::jit::Node* node : constants) {
    const c10::Symbol value = c10::Symbol::attr("value");
    torch::Tensor mkldnn = node->kindOf(value) == torch::jit::AttributeKind::t ? node->t(value)
                                                                              : node->ival(value).toTensor();
    torch::jit::WithInsertPoint guard(node);
    torch::jit::Value* dense = graph->insertConstant(mkldnn.to_dense());
    torch::jit::Value* converted =
        graph->insert(c10::Symbol::fromQualString("aten::to_mkldnn"), {dense});
    converted->setType(node->output()->type());
    node->output()->replaceAllUsesWith(converted);
    node->destroy();
  }
}

}  // namespace

std::string ScriptAttributeName(absl::string_view name) {
  return absl::StrReplaceAll(name, {{".", "__"}});
}

absl::StatusOr<torch::jit::Module> ScriptResNet(const ResNet& model, const ScriptOptions& options) {
  if (model.is_empty()) return absl::InvalidArgumentError("cannot script the ResNet: the model is null");
  absl::StatusOr<std::string> source = ForwardSource(*model);
  if (!source.ok()) return source.status();
  try {
    torch::jit::Module module(
        c10::QualifiedName(absl::StrCat("__torch__.dlspeed.ScriptedResNet", model->depth())));
    module.register_attribute("training", c10::BoolType::get(), false);
    {
      torch::NoGradGuard no_grad;
      for (const auto& item : model->named_parameters(/*recurse=*/true)) {
        torch::Tensor copy = item.value().detach().clone();
        copy.set_requires_grad(item.value().requires_grad());
        module.register_parameter(ScriptAttributeName(item.key()), copy, /*is_buffer=*/false);
      }
      for (const auto& item : model->named_buffers(/*recurse=*/true)) {
        module.register_buffer(ScriptAttributeName(item.key()), item.value().detach().clone());
      }
    }
    module.define(*source);
    module.eval();
    if (options.freeze || options.optimize) module = torch::jit::freeze(module);
    if (options.optimize) module = torch::jit::optimize_for_inference(module);
    return module;
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("cannot script the ResNet-", model->depth(), ": ", ExceptionText(e)));
  }
}

std::string GraphOperators(torch::jit::Module& module) {
  std::map<std::string, int> counts;
  for (const torch::jit::Node* node : module.get_method("forward").graph()->nodes()) {
    if (node->kind() != c10::prim::Constant) ++counts[node->kind().toQualString()];
  }
  std::vector<std::pair<std::string, int>> sorted(counts.begin(), counts.end());
  std::stable_sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  std::vector<std::string> parts;
  for (const auto& [name, count] : sorted) parts.push_back(absl::StrCat(name, " x", count));
  return absl::StrJoin(parts, ", ");
}

absl::Status SaveScript(torch::jit::Module& module, const std::string& path,
                        const std::map<std::string, std::string>& extra_files) {
  std::ostringstream bytes;
  const torch::jit::ExtraFilesMap extra(extra_files.begin(), extra_files.end());
  try {
    if (HasMkldnnConstants(module)) {
      // The rewrite below is only known to be right for ScriptResNet's graphs.
      const auto& name = module.type()->name();
      if (!name.has_value() || !absl::StartsWith(name->name(), "ScriptedResNet")) {
        return absl::FailedPreconditionError(absl::StrCat(
            "cannot write ", path, ": the module holds MKLDNN constants (optimize_for_inference on the CPU), "
            "which TorchScript cannot save; save it before optimizing"));
      }
      torch::jit::Module copy = module.clone();
      SerializableMkldnnConstants(copy);
      copy.save(bytes, extra);
    } else {
      module.save(bytes, extra);
    }
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("cannot write ", path, ": ", ExceptionText(e)));
  }
  const std::string contents = std::move(bytes).str();
  return WriteFileAtomically(path, absl::string_view(contents.data(), contents.size()));
}

absl::StatusOr<torch::jit::Module> LoadScript(const std::string& path,
                                              std::map<std::string, std::string>* extra_files) {
  std::error_code error;
  const std::filesystem::file_status file = std::filesystem::status(path, error);
  if (!std::filesystem::exists(file)) {
    return absl::NotFoundError(absl::StrCat("cannot load TorchScript from ", path, ": no such file"));
  }
  if (!std::filesystem::is_regular_file(file)) {
    return absl::InvalidArgumentError(absl::StrCat("cannot load TorchScript from ", path, ": not a file"));
  }
  if (std::filesystem::file_size(path, error) == 0 && !error) {
    return absl::DataLossError(absl::StrCat("cannot load TorchScript from ", path, ": the file is empty"));
  }
  try {
    // The loader fills in the names it finds and leaves the others as given.
    const std::string kAbsent(1, '\0');
    torch::jit::ExtraFilesMap extra;
    if (extra_files != nullptr) {
      for (const auto& item : *extra_files) extra[item.first] = kAbsent;
    }
    torch::jit::Module module = torch::jit::load(path, torch::Device(torch::kCPU), extra);
    if (module.hasattr("training")) module.eval();
    if (extra_files != nullptr) {
      extra_files->clear();
      for (const auto& [name, contents] : extra) {
        if (contents != kAbsent) (*extra_files)[name] = contents;
      }
    }
    return module;
  } catch (const std::exception& e) {
    return absl::DataLossError(absl::StrCat("cannot load TorchScript from ", path,
                                            ": not a readable TorchScript archive (", ExceptionText(e), ")"));
  }
}

}  // namespace dlspeed
