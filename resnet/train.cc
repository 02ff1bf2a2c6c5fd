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
    if (optimizer_.fused()) {
      scaler_.FusedStep(params_, [this](const torch::Tensor& grad_scale, const torch::Tensor& found_inf) {
        optimizer_.Step(grad_scale, found_inf);
      });
    } else {
      scaler_.Step(params_, [this] { optimizer_.Step(); });
    }
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
  // A resumed epoch draws the batches it has done (the loader's order depends
  // on them) before its clock starts.
  for (int64_t step = 0; step < first_step && step < steps; ++step) {
    if (!loader.Next()) break;
  }
  EpochRecorder recorder(epoch, options_.device, options_.sync_each_step);
  const int64_t skipped_before = skipped_steps_;
  for (int64_t step = first_step; step < steps; ++step) {
    std::optional<Batch> batch = loader.Next();
    if (!batch) break;
    recorder.StartStep();
    torch::Tensor images = batch->images.to(options_.device, /*non_blocking=*/cuda).contiguous(memory_format);
    torch::Tensor labels = batch->labels.to(options_.device, /*non_blocking=*/cuda);
    torch::Tensor correct;
    torch::Tensor loss = Step(images, labels, &correct);
    recorder.EndStep(loss, correct, labels.size(0));
    if (on_step) on_step(step + 1, steps);
  }
  skipped_steps_ += scaler_.TakeSkippedSteps();
  return recorder.Finish(skipped_steps_ - skipped_before);
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
