#include "roberta/roberta_trainer.h"

#include <map>
#include <optional>
#include <utility>
#include <vector>

#include <ATen/Context.h>
#include <torch/torch.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/serialize/torch_save_reader.h"
#include "common/serialize/torch_save_writer.h"

namespace dlspeed {
namespace {

GradScalerOptions ScalerOptionsFor(Precision precision) {
  GradScalerOptions options;
  options.enabled = precision == Precision::kFp16;
  return options;
}

}  // namespace

absl::StatusOr<RobertaOptimizer> ParseRobertaOptimizer(const std::string& name) {
  if (name == "sgd") return RobertaOptimizer::kSgd;
  if (name == "adamw") return RobertaOptimizer::kAdamW;
  return absl::InvalidArgumentError(absl::StrCat("unknown optimizer '", name, "' (choose sgd or adamw)"));
}

RobertaTrainer::RobertaTrainer(RobertaClassifier model, RobertaTrainOptions options)
    : model_(std::move(model)), options_(options), scaler_(ScalerOptionsFor(options.precision)) {
  model_->to(options_.device);
  model_->train();
  params_ = model_->parameters();
  if (options_.optimizer == RobertaOptimizer::kSgd) {
    sgd_ = std::make_unique<Sgd>(
        params_, SgdOptions{options_.lr, options_.momentum, options_.weight_decay, options_.optimizer_kernels});
  } else {
    AdamWOptions adamw;
    adamw.lr = options_.lr;
    adamw.weight_decay = options_.weight_decay;
    adamw.kernels = options_.optimizer_kernels;
    adamw_ = std::make_unique<AdamW>(params_, adamw);
  }
}

torch::Tensor RobertaTrainer::Step(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                   const torch::Tensor& labels, torch::Tensor* correct) {
  if (adamw_) {
    const double factor = options_.total_steps > 0
                              ? LinearWarmupDecay(steps_taken_, options_.warmup_steps, options_.total_steps)
                              : 1.0;
    adamw_->set_lr(options_.lr * factor);
    adamw_->ZeroGrad();
  } else {
    sgd_->ZeroGrad();
  }
  torch::Tensor logits, loss;
  {
    AutocastScope autocast(options_.device, options_.precision);
    logits = model_->forward(input_ids, attention_mask);
    loss = torch::nn::functional::cross_entropy(logits.to(torch::kFloat), labels);
  }
  // grad_scale and found_inf: the GradScaler's, for fused kernels (undefined otherwise).
  auto step = [this](const torch::Tensor& grad_scale, const torch::Tensor& found_inf) {
    if (adamw_) {
      adamw_->Step(grad_scale, found_inf);
    } else {
      sgd_->Step(grad_scale, found_inf);
    }
  };
  if (options_.precision == Precision::kFp16) {
    scaler_.Scale(loss).backward();
    if (options_.after_backward) options_.after_backward();
    if (options_.optimizer_kernels == OptimizerKernels::kFused) {
      scaler_.FusedStep(params_, step);
    } else {
      scaler_.Step(params_, [&] { step({}, {}); });
    }
    scaler_.Update();
  } else {
    loss.backward();
    if (options_.after_backward) options_.after_backward();
    step({}, {});
  }
  ++steps_taken_;
  if (correct != nullptr) *correct = logits.detach().argmax(1).eq(labels).sum();
  return loss.detach();
}

EpochStats RobertaTrainer::TrainEpoch(TextBatcher& batcher, int64_t epoch, const StepCallback& on_step,
                                      int64_t first_step) {
  model_->train();
  batcher.StartEpoch(epoch);
  int64_t steps = batcher.batches_per_epoch();
  if (options_.max_steps_per_epoch > 0 && options_.max_steps_per_epoch < steps) steps = options_.max_steps_per_epoch;
  const bool cuda = options_.device.is_cuda();
  // A resumed epoch draws the batches it has done (the batcher's order depends
  // on them) before its clock starts.
  for (int64_t step = 0; step < first_step && step < steps; ++step) {
    if (!batcher.Next()) break;
  }
  EpochRecorder recorder(epoch, options_.device, options_.sync_each_step);
  const int64_t skipped_before = skipped_steps_;
  for (int64_t step = first_step; step < steps; ++step) {
    std::optional<TextBatch> batch = batcher.Next();
    if (!batch) break;
    recorder.StartStep();
    const torch::Tensor ids = batch->input_ids.to(options_.device, /*non_blocking=*/cuda);
    const torch::Tensor mask = ModelMask(*batch, options_.device, /*non_blocking=*/cuda);
    const torch::Tensor labels = batch->labels.to(options_.device, /*non_blocking=*/cuda);
    torch::Tensor correct;
    const torch::Tensor loss = Step(ids, mask, labels, &correct);
    recorder.EndStep(loss, correct, labels.size(0));
    if (on_step) on_step(step + 1, steps);
  }
  skipped_steps_ += scaler_.TakeSkippedSteps();
  return recorder.Finish(skipped_steps_ - skipped_before);
}

double RobertaTrainer::Evaluate(const TextDataset& data, int64_t batch_size, int64_t max_len) {
  if (data.size() == 0) return 0.0;
  model_->eval();
  TextBatchOptions options;
  options.batch_size = batch_size;
  options.max_len = max_len;
  options.pad_id = model_->config().pad_token_id;
  options.shuffle = false;
  TextBatcher batcher(data, options);
  batcher.StartEpoch(0);
  int64_t correct = 0;
  {
    c10::InferenceMode inference;
    AutocastScope autocast(options_.device, options_.precision);
    torch::Tensor correct_sum = torch::zeros({}, torch::TensorOptions().dtype(torch::kLong).device(options_.device));
    while (std::optional<TextBatch> batch = batcher.Next()) {
      const torch::Tensor logits =
          model_->forward(batch->input_ids.to(options_.device), ModelMask(*batch, options_.device));
      correct_sum += logits.argmax(1).eq(batch->labels.to(options_.device)).sum();
    }
    correct = correct_sum.item<int64_t>();
  }
  model_->train();
  return static_cast<double>(correct) / static_cast<double>(data.size());
}

}  // namespace dlspeed

namespace dlspeed {

absl::Status RobertaTrainer::SaveCheckpoint(const std::string& path, int64_t epoch, int64_t steps_done,
                                            const std::string& settings) {
  std::vector<std::pair<std::string, at::Tensor>> entries;
  for (const auto& item : model_->named_parameters()) entries.emplace_back("model." + item.key(), item.value().detach());
  for (size_t i = 0; i < params_.size(); ++i) {
    if (sgd_ && sgd_->momentum_buffers()[i].defined()) {
      entries.emplace_back(absl::StrCat("sgd.momentum.", i), sgd_->momentum_buffers()[i]);
    }
    if (adamw_) {
      const AdamW::ParamState state = adamw_->state(i);  // reads a fused step count off the device
      if (state.exp_avg.defined()) {
        entries.emplace_back(absl::StrCat("adamw.exp_avg.", i), state.exp_avg);
        entries.emplace_back(absl::StrCat("adamw.exp_avg_sq.", i), state.exp_avg_sq);
        entries.emplace_back(absl::StrCat("adamw.step.", i), torch::tensor(state.step, torch::kLong));
      }
    }
  }
  for (const auto& [key, value] : scaler_.State()) entries.emplace_back("scaler." + key, torch::tensor(value, torch::kDouble));
  skipped_steps_ += scaler_.TakeSkippedSteps();
  entries.emplace_back("progress", torch::tensor({epoch, steps_done, steps_taken_, skipped_steps_}, torch::kLong));
  // Dropout draws from the default generator of the model's device.
  entries.emplace_back("rng", at::globalContext().defaultGenerator(options_.device).get_state());
  if (!settings.empty()) entries.emplace_back("settings", TextTensor(settings));
  return WriteTorchSaveStateDict(path, entries);
}

absl::StatusOr<std::pair<int64_t, int64_t>> RobertaTrainer::LoadCheckpoint(const std::string& path,
                                                                           const std::string& settings) {
  absl::StatusOr<std::vector<std::pair<std::string, at::Tensor>>> entries = ReadTorchSaveStateDict(path);
  if (!entries.ok()) return entries.status();
  std::map<std::string, at::Tensor> by_name(entries->begin(), entries->end());
  auto invalid = [&](const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is not a checkpoint of this run: ", why));
  };
  auto find = [&](const std::string& name, const torch::Tensor& like) -> std::optional<at::Tensor> {
    auto it = by_name.find(name);
    if (it == by_name.end() || it->second.sizes() != like.sizes()) return std::nullopt;
    return it->second.to(like.options());
  };
  torch::NoGradGuard no_grad;
  for (auto& item : model_->named_parameters()) {
    std::optional<at::Tensor> value = find("model." + item.key(), item.value());
    if (!value) return invalid(absl::StrCat("no ", item.key(), " of this shape"));
    item.value().copy_(*value);
  }
  for (size_t i = 0; i < params_.size(); ++i) {
    if (sgd_) {
      if (std::optional<at::Tensor> m = find(absl::StrCat("sgd.momentum.", i), params_[i])) sgd_->set_momentum_buffer(i, *m);
    } else {
      std::optional<at::Tensor> avg = find(absl::StrCat("adamw.exp_avg.", i), params_[i]);
      std::optional<at::Tensor> avg_sq = find(absl::StrCat("adamw.exp_avg_sq.", i), params_[i]);
      auto step = by_name.find(absl::StrCat("adamw.step.", i));
      if (avg && avg_sq && step != by_name.end()) adamw_->set_state(i, {*avg, *avg_sq, step->second.item<int64_t>()});
    }
  }
  std::map<std::string, double> scaler;
  for (const auto& [name, tensor] : by_name) {
    if (!absl::StartsWith(name, "scaler.")) continue;
    if (tensor.numel() != 1) return invalid(absl::StrCat("bad entry ", name));
    scaler[name.substr(7)] = tensor.item<double>();
  }
  if (absl::Status s = scaler_.LoadState(scaler); !s.ok()) return invalid(std::string(s.message()));
  auto progress = by_name.find("progress");
  if (progress == by_name.end() || progress->second.dim() != 1 || progress->second.numel() != 4) {
    return invalid("it lacks its progress");
  }
  if (progress->second.min().item<int64_t>() < 0) return invalid("its progress is negative");
  if (auto saved = by_name.find("settings"); saved != by_name.end() && !settings.empty()) {
    const std::optional<std::string> written = TextOfTensor(saved->second);
    if (!written) return invalid("bad entry settings");
    if (*written != settings) {
      return absl::InvalidArgumentError(absl::StrCat(path, " was written with ", *written, ", not ", settings,
                                                     ": resume with those flags, or remove it"));
    }
  }
  auto rng = by_name.find("rng");
  if (rng == by_name.end()) return invalid("it lacks the random generator's state");
  try {
    at::Generator generator = at::globalContext().defaultGenerator(options_.device);
    generator.set_state(rng->second);
  } catch (const c10::Error&) {
    return invalid("its random generator state is for another device");
  }
  steps_taken_ = progress->second[2].item<int64_t>();
  skipped_steps_ = progress->second[3].item<int64_t>();
  return std::make_pair(progress->second[0].item<int64_t>(), progress->second[1].item<int64_t>());
}

}  // namespace dlspeed
