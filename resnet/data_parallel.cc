#include "resnet/data_parallel.h"

#include <exception>
#include <thread>
#include <utility>

#include <c10/core/DeviceGuard.h>
#include <torch/torch.h>

namespace dlspeed {

DataParallel::DataParallel(ResNet model, std::vector<c10::Device> devices, Precision precision, bool channels_last)
    : devices_(std::move(devices)), precision_(precision), channels_last_(channels_last) {
  TORCH_CHECK(!devices_.empty(), "DataParallel needs at least one device");
  replicas_.push_back(model);
  for (size_t i = 1; i < devices_.size(); ++i) {
    ResNet replica(model->depth(), model->num_classes());
    replica->to(devices_[i]);
    if (channels_last_) ToChannelsLast(*replica);
    replicas_.push_back(replica);
  }
  for (const ResNet& replica : replicas_) {
    params_.push_back(replica->parameters());
    buffers_.push_back(replica->buffers());
  }
}

void DataParallel::RefreshReplicas() {
  torch::NoGradGuard no_grad;
  for (size_t r = 1; r < replicas_.size(); ++r) {
    replicas_[r]->train(replicas_[0]->is_training());
    for (size_t i = 0; i < params_[0].size(); ++i) params_[r][i].copy_(params_[0][i], /*non_blocking=*/true);
    for (size_t i = 0; i < buffers_[0].size(); ++i) buffers_[r][i].copy_(buffers_[0][i], /*non_blocking=*/true);
  }
}

torch::Tensor DataParallel::Forward(const torch::Tensor& images) {
  if (replicas_.size() == 1) {
    AutocastScope autocast(devices_[0], precision_);
    return replicas_[0]->forward(images);
  }
  RefreshReplicas();
  const std::vector<torch::Tensor> chunks = images.chunk(static_cast<int64_t>(replicas_.size()), /*dim=*/0);
  std::vector<torch::Tensor> outputs(chunks.size());
  std::vector<std::exception_ptr> errors(chunks.size());
  const bool grad_enabled = torch::GradMode::is_enabled();
  auto run = [&](size_t r) {
    try {
      c10::DeviceGuard guard(devices_[r]);
      torch::AutoGradMode grad_mode(grad_enabled);
      AutocastScope autocast(devices_[r], precision_);
      const auto format = channels_last_ ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
      outputs[r] = replicas_[r]->forward(chunks[r].to(devices_[r], /*non_blocking=*/true).contiguous(format));
    } catch (...) {
      errors[r] = std::current_exception();
    }
  };
  std::vector<std::thread> threads;
  for (size_t r = 1; r < chunks.size(); ++r) threads.emplace_back(run, r);
  run(0);
  for (std::thread& thread : threads) thread.join();
  for (const std::exception_ptr& error : errors) {
    if (error) std::rethrow_exception(error);
  }
  for (torch::Tensor& output : outputs) output = output.to(devices_[0], /*non_blocking=*/true);
  return torch::cat(outputs, /*dim=*/0);
}

void DataParallel::ReduceGradients() {
  torch::NoGradGuard no_grad;
  for (size_t r = 1; r < replicas_.size(); ++r) {
    for (size_t i = 0; i < params_[0].size(); ++i) {
      torch::Tensor& grad = params_[r][i].mutable_grad();
      if (!grad.defined()) continue;
      torch::Tensor& total = params_[0][i].mutable_grad();
      if (total.defined()) {
        total.add_(grad.to(devices_[0], /*non_blocking=*/true));
      } else {
        total = grad.to(devices_[0], grad.scalar_type(), /*non_blocking=*/true, /*copy=*/true);  // one copy
      }
      grad = torch::Tensor();
    }
  }
}

}  // namespace dlspeed
