#include "resnet/training_checkpoint.h"

#include <map>
#include <optional>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/serialize/torch_save_reader.h"
#include "common/serialize/torch_save_writer.h"

namespace dlspeed {
namespace {

constexpr char kModel[] = "model.";
constexpr char kMomentum[] = "sgd.momentum.";
constexpr char kScaler[] = "scaler.";
constexpr char kProgress[] = "progress";  // int64 [epoch, steps_done]
constexpr char kSettings[] = "settings";  // uint8: TrainingProgress::settings

}  // namespace

absl::Status SaveTrainingCheckpoint(const std::string& path, ResNetTrainer& trainer, const TrainingProgress& progress) {
  std::vector<std::pair<std::string, at::Tensor>> entries;
  for (const auto& item : trainer.model()->named_parameters()) entries.emplace_back(kModel + item.key(), item.value().detach());
  for (const auto& item : trainer.model()->named_buffers()) entries.emplace_back(kModel + item.key(), item.value().detach());
  const std::vector<torch::Tensor>& momentum = trainer.optimizer().momentum_buffers();
  for (size_t i = 0; i < momentum.size(); ++i) {
    if (momentum[i].defined()) entries.emplace_back(absl::StrCat(kMomentum, i), momentum[i]);
  }
  for (const auto& [key, value] : trainer.scaler().State()) {
    entries.emplace_back(kScaler + key, torch::tensor(value, torch::kDouble));
  }
  entries.emplace_back(kProgress, torch::tensor({progress.epoch, progress.steps_done}, torch::kLong));
  if (!progress.settings.empty()) entries.emplace_back(kSettings, TextTensor(progress.settings));
  return WriteTorchSaveStateDict(path, entries);
}

absl::StatusOr<TrainingProgress> LoadTrainingCheckpoint(const std::string& path, ResNetTrainer& trainer,
                                                        const std::string& settings) {
  absl::StatusOr<std::vector<std::pair<std::string, at::Tensor>>> entries = ReadTorchSaveStateDict(path);
  if (!entries.ok()) return entries.status();
  std::map<std::string, at::Tensor> by_name(entries->begin(), entries->end());
  auto invalid = [&](const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is not a checkpoint of this run: ", why));
  };
  torch::NoGradGuard no_grad;
  auto restore = [&](const std::string& name, torch::Tensor& target) -> absl::Status {
    auto it = by_name.find(kModel + name);
    if (it == by_name.end()) return invalid(absl::StrCat("it lacks ", name));
    if (it->second.sizes() != target.sizes()) return invalid(absl::StrCat(name, " has another shape"));
    target.copy_(it->second);
    return absl::OkStatus();
  };
  for (auto& item : trainer.model()->named_parameters()) {
    if (absl::Status s = restore(item.key(), item.value()); !s.ok()) return s;
  }
  for (auto& item : trainer.model()->named_buffers()) {
    if (absl::Status s = restore(item.key(), item.value()); !s.ok()) return s;
  }
  const std::vector<torch::Tensor> params = trainer.model()->parameters();
  std::map<std::string, double> scaler;
  for (const auto& [name, tensor] : by_name) {
    if (absl::StartsWith(name, kMomentum)) {
      size_t index = 0;
      if (!absl::SimpleAtoi(name.substr(sizeof(kMomentum) - 1), &index) || index >= params.size() ||
          tensor.sizes() != params[index].sizes()) {
        return invalid(absl::StrCat("bad entry ", name));
      }
      trainer.optimizer().set_momentum_buffer(index, tensor.to(params[index].options()).contiguous(
                                                         params[index].suggest_memory_format()));
    } else if (absl::StartsWith(name, kScaler)) {
      if (tensor.numel() != 1) return invalid(absl::StrCat("bad entry ", name));
      scaler[name.substr(sizeof(kScaler) - 1)] = tensor.item<double>();
    }
  }
  if (absl::Status s = trainer.scaler().LoadState(scaler); !s.ok()) return invalid(std::string(s.message()));
  auto progress = by_name.find(kProgress);
  if (progress == by_name.end() || progress->second.dim() != 1 || progress->second.numel() != 2) {
    return invalid("it lacks its progress");
  }
  TrainingProgress at;
  at.epoch = progress->second[0].item<int64_t>();
  at.steps_done = progress->second[1].item<int64_t>();
  if (at.epoch < 0 || at.steps_done < 0) return invalid("its progress is negative");
  if (auto saved = by_name.find(kSettings); saved != by_name.end()) {
    std::optional<std::string> text = TextOfTensor(saved->second);
    if (!text) return invalid("bad entry settings");
    at.settings = *text;
  }
  if (!at.settings.empty() && !settings.empty() && at.settings != settings) {
    return absl::InvalidArgumentError(absl::StrCat(path, " was written with ", at.settings, ", not ", settings,
                                                   ": resume with those flags, or remove it"));
  }
  return at;
}

}  // namespace dlspeed
