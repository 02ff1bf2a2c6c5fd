#include "roberta/roberta_trainer.h"

#include <utility>

#include <torch/torch.h>

#include "absl/strings/str_cat.h"

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
    sgd_ = std::make_unique<ForeachSgd>(params_, SgdOptions{options_.lr, options_.momentum, options_.weight_decay});
  } else {
    AdamWOptions adamw;
    adamw.lr = options_.lr;
    adamw.weight_decay = options_.weight_decay;
    adamw_ = std::make_unique<ForeachAdamW>(params_, adamw);
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
  auto step = [this] {
    if (adamw_) {
      adamw_->Step();
    } else {
      sgd_->Step();
    }
  };
  if (options_.precision == Precision::kFp16) {
    scaler_.Scale(loss).backward();
    if (options_.after_backward) options_.after_backward();
    if (!scaler_.Step(params_, step)) ++skipped_steps_;
    scaler_.Update();
  } else {
    loss.backward();
    if (options_.after_backward) options_.after_backward();
    step();
  }
  ++steps_taken_;
  if (correct != nullptr) *correct = logits.detach().argmax(1).eq(labels).sum();
  return loss.detach();
}

EpochStats RobertaTrainer::TrainEpoch(TextBatcher& batcher, int64_t epoch, const StepCallback& on_step) {
  model_->train();
  batcher.StartEpoch(epoch);
  int64_t steps = batcher.batches_per_epoch();
  if (options_.max_steps_per_epoch > 0 && options_.max_steps_per_epoch < steps) steps = options_.max_steps_per_epoch;
  const bool cuda = options_.device.is_cuda();
  StepTimer timer(c10::Device(c10::kCPU));
  SynchronizeDevice(options_.device);
  Stopwatch wall;
  torch::Tensor loss_sum = torch::zeros({}, torch::TensorOptions().dtype(torch::kDouble).device(options_.device));
  torch::Tensor correct_sum = torch::zeros({}, torch::TensorOptions().dtype(torch::kLong).device(options_.device));
  const int64_t skipped_before = skipped_steps_;
  int64_t samples = 0;
  for (int64_t step = 0; step < steps; ++step) {
    std::optional<TextBatch> batch = batcher.Next();
    if (!batch) break;
    timer.Start();
    const torch::Tensor ids = batch->input_ids.to(options_.device, /*non_blocking=*/cuda);
    const torch::Tensor mask = batch->attention_mask.to(options_.device, /*non_blocking=*/cuda);
    const torch::Tensor labels = batch->labels.to(options_.device, /*non_blocking=*/cuda);
    torch::Tensor correct;
    const torch::Tensor loss = Step(ids, mask, labels, &correct);
    const int64_t n = labels.size(0);
    loss_sum += loss.to(torch::kDouble) * n;
    correct_sum += correct;
    samples += n;
    timer.Stop(n);
    if (on_step) on_step(step + 1, steps);
  }
  SynchronizeDevice(options_.device);
  EpochStats stats;
  stats.epoch = epoch;
  stats.seconds = wall.Seconds();
  stats.steps = timer.steps();
  stats.samples = samples;
  stats.skipped_steps = skipped_steps_ - skipped_before;
  stats.mean_loss = samples > 0 ? loss_sum.item<double>() / samples : 0.0;
  stats.train_accuracy = samples > 0 ? static_cast<double>(correct_sum.item<int64_t>()) / samples : 0.0;
  stats.step_seconds = timer.StepSummary();
  stats.step_times = timer.step_seconds();
  stats.throughput = timer.Throughput();
  return stats;
}

double RobertaTrainer::Evaluate(const TextDataset& data, int64_t batch_size, int64_t max_len) {
  if (data.size() == 0) return 0.0;
  model_->eval();
  TextBatchOptions options;
  options.batch_size = batch_size;
  options.max_len = max_len;
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
          model_->forward(batch->input_ids.to(options_.device), batch->attention_mask.to(options_.device));
      correct_sum += logits.argmax(1).eq(batch->labels.to(options_.device)).sum();
    }
    correct = correct_sum.item<int64_t>();
  }
  model_->train();
  return static_cast<double>(correct) / static_cast<double>(data.size());
}

}  // namespace dlspeed
