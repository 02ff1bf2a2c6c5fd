#include "roberta/roberta_checkpoint.h"

#include <fstream>
#include <map>
#include <sstream>

#include <torch/torch.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"
#include "common/serialize/safetensors.h"

namespace dlspeed {
namespace {

std::string ShapeText(const at::Tensor& t) {
  std::ostringstream out;
  out << t.sizes();
  return out.str();
}

// Tensors of a checkpoint the classifier has no use for: a masked-LM head,
// the pooler (with or without the "roberta." prefix: a base model's save has
// none), and transformers' buffers.
bool Ignored(const std::string& name) {
  return absl::StartsWith(name, "lm_head.") || absl::StartsWith(name, "roberta.pooler.") ||
         absl::StartsWith(name, "pooler.") ||
         absl::EndsWith(name, "position_ids") || absl::EndsWith(name, "token_type_ids");
}

}  // namespace

absl::StatusOr<LoadedRoberta> LoadRobertaFolder(const std::string& dir, int64_t num_labels) {
  const std::string config_path = dir + "/config.json";
  std::ifstream config_file(config_path);
  if (!config_file) return absl::NotFoundError(absl::StrCat("cannot open ", config_path, " (a Hugging Face checkpoint folder has config.json and model.safetensors)"));
  const nlohmann::json json = nlohmann::json::parse(config_file, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return absl::DataLossError(absl::StrCat(config_path, " is not valid JSON"));
  absl::StatusOr<RobertaConfig> config = RobertaConfigFromJson(json);
  if (!config.ok()) return absl::InvalidArgumentError(absl::StrCat(config_path, ": ", config.status().message()));
  if (num_labels > 0) config->num_labels = num_labels;

  const std::string weights_path = dir + "/model.safetensors";
  absl::StatusOr<NamedTensors> tensors = ReadSafetensors(weights_path);
  if (!tensors.ok()) return tensors.status();

  LoadedRoberta loaded;
  try {
    loaded.model = RobertaClassifier(*config);
  } catch (const std::exception& e) {  // e.g. more memory than the host has
    const std::string what = e.what();
    return absl::ResourceExhaustedError(absl::StrCat("cannot build the model ", config_path, " describes (",
                                                     RobertaParameterCount(*config), " parameters): ",
                                                     what.substr(0, what.find('\n'))));
  }
  torch::OrderedDict<std::string, torch::Tensor> params = loaded.model->named_parameters();
  std::map<std::string, bool> filled;
  int loaded_count = 0;
  torch::NoGradGuard no_grad;
  for (const auto& [raw_name, tensor] : *tensors) {
    std::string name = raw_name;
    if (!params.contains(name) && params.contains("roberta." + name)) name = "roberta." + name;
    if (Ignored(name)) continue;
    torch::Tensor* target = params.find(name);
    if (target == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(weights_path, ": unexpected tensor '", raw_name,
                                                     "' (not a RoBERTa classifier parameter)"));
    }
    if (target->sizes() != tensor.sizes()) {
      if (absl::StartsWith(name, "classifier.out_proj.") && num_labels > 0) continue;  // a new head was asked for
      return absl::InvalidArgumentError(absl::StrCat(weights_path, ": '", raw_name, "' has shape ", ShapeText(tensor),
                                                     " but the model (", config_path, ") expects ", ShapeText(*target)));
    }
    target->copy_(tensor);
    filled[name] = true;
    ++loaded_count;
  }
  int head_missing = 0;
  for (const auto& item : params) {
    if (filled.count(item.key())) continue;
    if (!absl::StartsWith(item.key(), "classifier.")) {
      return absl::InvalidArgumentError(absl::StrCat(weights_path, " lacks '", item.key(), "'"));
    }
    ++head_missing;
  }
  loaded.summary = absl::StrCat("loaded ", loaded_count, " tensors from ", weights_path);
  if (head_missing > 0) {
    absl::StrAppend(&loaded.summary, "; the classifier head (", head_missing,
                    " tensors) is initialised randomly: it is not in the checkpoint or has another label count");
  }
  return loaded;
}

absl::Status SaveRobertaFolder(RobertaClassifierImpl& model, const std::string& dir) {
  NamedTensors tensors;
  for (const auto& item : model.named_parameters()) tensors.emplace_back(item.key(), item.value().detach().to(torch::kFloat));
  if (absl::Status s = WriteSafetensors(dir + "/model.safetensors", tensors, {{"format", "pt"}}); !s.ok()) return s;
  const std::string text = RobertaConfigToJson(model.config()).dump(2) + "\n";
  return WriteFileAtomically(dir + "/config.json", absl::string_view(text.data(), text.size()));
}

}  // namespace dlspeed
