#include "resnet/train.h"

#include <utility>

#include <torch/torch.h>

#include "common/data/augment.h"

namespace dlspeed {
namespace {

GradScalerOptions ScalerOptionsFor(Precision precision) {
  GradScalerOptions options;
  options.enabled = precision == Precision::kFp16;
  return options;
}

ResNet Prepare(ResNet model, const TrainOptions& options) {
  model->to(options.device);
  if (options.channels_last) ToChannelsLast(*model);
  model->train();
  return model;
}

}  // namespace

ResNetTrainer::ResNetTrainer(ResNet model, TrainOptions options)
    : model_(Prepare(std::move(model), options)),
      options_(options),
      params_(model_->parameters()),
      optimizer_(params_, options.sgd),
      scaler_(ScalerOptionsFor(options.precision)) {}

torch::Tensor ResNetTrainer::Step(const torch::Tensor& images, const torch::Tensor& labels,
                                  torch::Tensor* correct) {
  optimizer_.ZeroGrad();
  torch::Tensor logits, loss;
  {
    AutocastScope autocast(options_.device, options_.precision);
    logits = options_.forward ? options_.forward(images) : model_->forward(images);
    loss = torch::nn::functional::cross_entropy(logits, labels);
  }
  if (options_.precision == Precision::kFp16) {
    scaler_.Scale(loss).backward();
    if (options_.after_backward) options_.after_backward();
    if (!scaler_.Step(params_, [this] { optimizer_.Step(); })) ++skipped_steps_;
    scaler_.Update();
  } else {
    loss.backward();
    if (options_.after_backward) options_.after_backward();
    optimizer_.Step();
  }
  if (correct != nullptr) *correct = logits.detach().argmax(1).eq(labels).sum();
  return loss.detach();
}

EpochStats ResNetTrainer::TrainEpoch(BatchLoader& loader, int64_t epoch, const StepCallback& on_step,
                                     int64_t first_step) {
  model_->train();
  loader.StartEpoch(epoch);
  int64_t steps = loader.batches_per_epoch();
  if (options_.max_steps_per_epoch > 0 && options_.max_steps_per_epoch < steps) {
    steps = options_.max_steps_per_epoch;
  }
  const bool cuda = options_.device.is_cuda();
  const auto memory_format = options_.channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  StepTimer timer(options_.sync_each_step ? options_.device : c10::Device(c10::kCPU));
  Stopwatch wall;
  SynchronizeDevice(options_.device);
  wall.Restart();
  torch::Tensor loss_sum = torch::zeros({}, torch::TensorOptions().dtype(torch::kDouble).device(options_.device));
  torch::Tensor correct_sum = torch::zeros({}, torch::TensorOptions().dtype(torch::kLong).device(options_.device));
  const int64_t skipped_before = skipped_steps_;
  int64_t samples = 0;
  for (int64_t step = 0; step < steps; ++step) {
    std::optional<Batch> batch = loader.Next();
    if (!batch) break;
    if (step < first_step) continue;
    timer.Start();
    torch::Tensor images = batch->images.to(options_.device, /*non_blocking=*/cuda).contiguous(memory_format);
    torch::Tensor labels = batch->labels.to(options_.device, /*non_blocking=*/cuda);
    torch::Tensor correct;
    torch::Tensor loss = Step(images, labels, &correct);
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

double ResNetTrainer::Evaluate(const ImageDataset& data, int64_t batch_size) {
  if (data.size() == 0) return 0.0;
  model_->eval();
  const auto memory_format = options_.channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  int64_t correct = 0;
  {
    c10::InferenceMode inference;
    AutocastScope autocast(options_.device, options_.precision);
    torch::Tensor correct_sum = torch::zeros({}, torch::TensorOptions().dtype(torch::kLong).device(options_.device));
    for (int64_t start = 0; start < data.size(); start += batch_size) {
      const int64_t end = std::min(start + batch_size, data.size());
      torch::Tensor images = NormalizeImages(data.images.slice(0, start, end))
                                 .to(options_.device)
                                 .contiguous(memory_format);
      torch::Tensor labels = data.labels.slice(0, start, end).to(options_.device);
      correct_sum += model_->forward(images).argmax(1).eq(labels).sum();
    }
    correct = correct_sum.item<int64_t>();
  }
  model_->train();
  return static_cast<double>(correct) / static_cast<double>(data.size());
}

}  // namespace dlspeed
