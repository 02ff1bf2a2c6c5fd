#include "resnet/resnet_checkpoint.h"

#include <map>

#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/serialize/torch_save_reader.h"
#include "common/serialize/torch_save_writer.h"

namespace dlspeed {
namespace {

void AppendEntries(const torch::nn::Module& module, const std::string& prefix,
                   std::vector<std::pair<std::string, torch::Tensor>>* out) {
  for (const auto& item : module.named_parameters(/*recurse=*/false)) {
    out->emplace_back(prefix + item.key(), item.value());
  }
  for (const auto& item : module.named_buffers(/*recurse=*/false)) {
    out->emplace_back(prefix + item.key(), item.value());
  }
  for (const auto& child : module.named_children()) {
    AppendEntries(*child.value(), prefix + child.key() + ".", out);
  }
}

std::string ShapeString(const torch::Tensor& t) {
  return absl::StrCat("[", absl::StrJoin(t.sizes(), ", "), "]");
}

// Whether a tensor of type `from` may be loaded into one of type `to`: both
// floating point, or both integral (bool, complex and the rest load into neither).
bool SameKind(at::ScalarType to, at::ScalarType from) {
  if (at::isFloatingType(to)) return at::isFloatingType(from);
  return at::isIntegralType(to, /*includeBool=*/false) && at::isIntegralType(from, /*includeBool=*/false);
}

}  // namespace

std::vector<std::pair<std::string, torch::Tensor>> StateDictEntries(const torch::nn::Module& module) {
  std::vector<std::pair<std::string, torch::Tensor>> entries;
  AppendEntries(module, "", &entries);
  return entries;
}

absl::Status SaveStateDict(const torch::nn::Module& module, const std::string& path) {
  return WriteTorchSaveStateDict(path, StateDictEntries(module));
}

absl::Status LoadStateDict(torch::nn::Module& module, const std::string& path, const std::string& what) {
  absl::StatusOr<std::vector<std::pair<std::string, torch::Tensor>>> read = ReadTorchSaveStateDict(path);
  if (!read.ok()) return read.status();
  std::map<std::string, torch::Tensor> wanted;
  for (const auto& [name, tensor] : StateDictEntries(module)) wanted[name] = tensor;
  std::map<std::string, torch::Tensor> found(read->begin(), read->end());
  const std::string prefix = absl::StrCat("checkpoint '", path, "' does not fit ", what, ": ");
  for (const auto& [name, tensor] : found) {
    auto it = wanted.find(name);
    if (it == wanted.end()) return absl::InvalidArgumentError(absl::StrCat(prefix, "unexpected key ", name));
    if (it->second.sizes() != tensor.sizes()) {
      return absl::InvalidArgumentError(absl::StrCat(prefix, name, " is ", ShapeString(tensor), ", expected ",
                                                     ShapeString(it->second)));
    }
    // copy_ would convert any dtype: only floats (of any width) load into a
    // float parameter, only integers into an integer buffer (num_batches_tracked).
    if (!SameKind(it->second.scalar_type(), tensor.scalar_type())) {
      return absl::InvalidArgumentError(absl::StrCat(prefix, name, " is ", c10::toString(tensor.scalar_type()),
                                                     ", expected ", c10::toString(it->second.scalar_type())));
    }
  }
  for (const auto& [name, tensor] : wanted) {
    if (!found.count(name)) return absl::InvalidArgumentError(absl::StrCat(prefix, "missing key ", name));
  }
  torch::NoGradGuard no_grad;
  for (auto& [name, tensor] : wanted) tensor.copy_(found[name]);
  return absl::OkStatus();
}

}  // namespace dlspeed
