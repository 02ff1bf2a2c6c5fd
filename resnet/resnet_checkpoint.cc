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
  }
  for (const auto& [name, tensor] : wanted) {
    if (!found.count(name)) return absl::InvalidArgumentError(absl::StrCat(prefix, "missing key ", name));
  }
  torch::NoGradGuard no_grad;
  for (auto& [name, tensor] : wanted) tensor.copy_(found[name]);
  return absl::OkStatus();
}

}  // namespace dlspeed
