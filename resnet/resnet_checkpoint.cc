#include "resnet/resnet_checkpoint.h"

#include <fstream>
#include <iterator>
#include <map>
#include <sstream>

#include <torch/csrc/jit/serialization/pickle.h>
#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/atomic_file.h"

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

// The first line of a LibTorch error, without its C++ stack trace.
std::string FirstLine(const std::string& message) {
  return message.substr(0, message.find('\n'));
}

}  // namespace

std::vector<std::pair<std::string, torch::Tensor>> StateDictEntries(const torch::nn::Module& module) {
  std::vector<std::pair<std::string, torch::Tensor>> entries;
  AppendEntries(module, "", &entries);
  return entries;
}

absl::Status SaveStateDict(const torch::nn::Module& module, const std::string& path) {
  c10::Dict<std::string, at::Tensor> dict;
  for (const auto& [name, tensor] : StateDictEntries(module)) {
    dict.insert(name, tensor.detach().to(torch::kCPU).contiguous());
  }
  std::vector<char> bytes;
  try {
    bytes = torch::pickle_save(c10::IValue(dict));
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("cannot serialise the state_dict for ", path, ": ", FirstLine(e.what())));
  }
  return WriteFileAtomically(path, absl::string_view(bytes.data(), bytes.size()));
}

absl::StatusOr<std::vector<std::pair<std::string, torch::Tensor>>> ReadStateDict(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("checkpoint '", path, "' not found or unreadable"));
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.empty()) return absl::DataLossError(absl::StrCat("checkpoint '", path, "' is empty"));
  c10::IValue value;
  try {
    value = torch::pickle_load(bytes);
  } catch (const std::exception& e) {
    return absl::DataLossError(absl::StrCat("checkpoint '", path,
                                            "' is not a readable PyTorch state_dict (truncated or corrupt?): ",
                                            FirstLine(e.what())));
  }
  if (!value.isGenericDict()) {
    return absl::InvalidArgumentError(absl::StrCat("checkpoint '", path, "' holds a ", value.tagKind(),
                                                   ", not a state_dict (a dict of tensors)"));
  }
  std::vector<std::pair<std::string, torch::Tensor>> entries;
  for (const auto& item : value.toGenericDict()) {
    if (!item.key().isString() || !item.value().isTensor()) {
      return absl::InvalidArgumentError(
          absl::StrCat("checkpoint '", path, "' is not a state_dict: it has an entry that is not name -> tensor"));
    }
    entries.emplace_back(item.key().toStringRef(), item.value().toTensor());
  }
  return entries;
}

absl::Status LoadStateDict(torch::nn::Module& module, const std::string& path, const std::string& what) {
  absl::StatusOr<std::vector<std::pair<std::string, torch::Tensor>>> read = ReadStateDict(path);
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
