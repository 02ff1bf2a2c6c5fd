#include "common/distributed/gradient_reducer.h"

#include <algorithm>
#include <map>
#include <memory>
#include <tuple>
#include <utility>

#include <ATen/ATen.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/Work.hpp>

#include "common/timing.h"

namespace dlspeed {
namespace {

class ReadyHook : public torch::autograd::PostAccumulateGradHook {
 public:
  ReadyHook(GradientReducer* reducer, int64_t index) : reducer_(reducer), index_(index) {}
  void operator()(const torch::autograd::Variable& /*param*/) override { reducer_->OnGradReady(index_); }

 private:
  GradientReducer* reducer_;
  int64_t index_;
};

int64_t Bytes(const at::Tensor& tensor) { return tensor.numel() * static_cast<int64_t>(tensor.element_size()); }

}  // namespace

void BroadcastFromRankZero(const std::vector<at::Tensor>& tensors, c10d::Backend& group) {
  if (group.getSize() == 1) return;
  // One broadcast per dtype and device of flattened copies, not one per tensor.
  std::map<std::pair<at::ScalarType, std::string>, std::vector<at::Tensor>> groups;
  for (const at::Tensor& tensor : tensors) {
    if (tensor.defined()) groups[{tensor.scalar_type(), tensor.device().str()}].push_back(tensor);
  }
  at::NoGradGuard no_grad;
  for (auto& [key, members] : groups) {
    std::vector<at::Tensor> flat_parts;
    for (const at::Tensor& tensor : members) flat_parts.push_back(tensor.reshape({-1}));
    std::vector<at::Tensor> flat = {at::cat(flat_parts)};
    c10d::BroadcastOptions options;
    options.rootRank = 0;
    group.broadcast(flat, options)->wait();
    int64_t offset = 0;
    for (const at::Tensor& tensor : members) {
      const_cast<at::Tensor&>(tensor).copy_(flat[0].narrow(0, offset, tensor.numel()).view(tensor.sizes()));
      offset += tensor.numel();
    }
  }
}

GradientReducer::GradientReducer(std::vector<at::Tensor> params, c10::intrusive_ptr<c10d::Backend> group,
                                 ReducerOptions options)
    : params_(std::move(params)), group_(std::move(group)), options_(options) {
  location_.assign(params_.size(), {-1, -1});
  ready_.assign(params_.size(), false);
  AssignBuckets();
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!params_[i].requires_grad()) continue;
    torch::autograd::impl::set_post_acc_grad_hooks(params_[i],
                                                   std::make_unique<ReadyHook>(this, static_cast<int64_t>(i)));
  }
}

void GradientReducer::AssignBuckets() {
  // Shared buckets are filled per (dtype, device) from the last parameter
  // back; a large CPU gradient gets its own. Each bucket is then placed by the
  // position of its last parameter in that backward order, when it should be
  // complete, so that in-order launching does not hold a large gradient back
  // behind a shared bucket that fills later.
  std::map<std::pair<at::ScalarType, std::string>, int64_t> open;
  std::vector<int64_t> bucket_bytes, completes_at;
  int64_t first_shared = -1, position = 0;
  for (int64_t i = static_cast<int64_t>(params_.size()) - 1; i >= 0; --i, ++position) {
    const at::Tensor& param = params_[i];
    if (!param.requires_grad()) continue;
    if (param.is_cpu() && Bytes(param) >= options_.own_bucket_min_bytes) {
      buckets_.emplace_back();
      buckets_.back().own = true;
      buckets_.back().params.push_back(i);
      bucket_bytes.push_back(Bytes(param));
      completes_at.push_back(position);
      continue;
    }
    const auto key = std::make_pair(param.scalar_type(), param.device().str());
    auto it = open.find(key);
    const bool full = it != open.end() && bucket_bytes[it->second] > 0 &&
                      bucket_bytes[it->second] + Bytes(param) > (it->second == first_shared
                                                                      ? options_.first_bucket_cap_bytes
                                                                      : options_.bucket_cap_bytes);
    if (it == open.end() || full) {
      buckets_.emplace_back();
      bucket_bytes.push_back(0);
      completes_at.push_back(0);
      open[key] = static_cast<int64_t>(buckets_.size()) - 1;
      if (first_shared < 0) first_shared = open[key];
      it = open.find(key);
    }
    buckets_[it->second].params.push_back(i);
    bucket_bytes[it->second] += Bytes(param);
    completes_at[it->second] = position;
  }
  std::vector<size_t> order(buckets_.size());
  for (size_t b = 0; b < order.size(); ++b) order[b] = b;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return completes_at[a] < completes_at[b]; });
  std::vector<Bucket> sorted;
  for (size_t b : order) sorted.push_back(std::move(buckets_[b]));
  buckets_ = std::move(sorted);

  for (size_t b = 0; b < buckets_.size(); ++b) {
    Bucket& bucket = buckets_[b];
    for (size_t slot = 0; slot < bucket.params.size(); ++slot) {
      location_[bucket.params[slot]] = {static_cast<int64_t>(b), static_cast<int64_t>(slot)};
    }
    bucket.pending = static_cast<int64_t>(bucket.params.size());
    if (bucket.own) continue;
    int64_t elements = 0;
    for (int64_t param : bucket.params) {
      bucket.offsets.push_back(elements);
      elements += params_[param].numel();
    }
    const at::Tensor& last = params_[bucket.params.back()];
    bucket.buffer = at::zeros({elements}, last.options().requires_grad(false));
    for (size_t slot = 0; slot < bucket.params.size(); ++slot) bucket.views.push_back(MakeView(bucket, slot));
  }
}

GradientReducer::~GradientReducer() {
  for (at::Tensor& param : params_) {
    if (param.requires_grad()) torch::autograd::impl::set_post_acc_grad_hooks(param, nullptr);
  }
}

at::Tensor GradientReducer::MakeView(const Bucket& bucket, size_t slot) const {
  const at::Tensor& param = params_[bucket.params[slot]];
  at::Tensor flat = bucket.buffer.narrow(0, bucket.offsets[slot], param.numel());
  // Keep the parameter's strides (channels_last) so the gradient matches it.
  if (param.is_non_overlapping_and_dense()) return flat.as_strided(param.sizes(), param.strides());
  return flat.view(param.sizes());
}

void GradientReducer::OnGradReady(int64_t param_index) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto [bucket_index, slot] = location_[param_index];
  if (bucket_index < 0 || ready_[param_index]) return;
  Bucket& bucket = buckets_[bucket_index];
  const at::Tensor& grad = params_[param_index].grad();
  if (bucket.own) {
    // Autograd's gradients are dense; anything else is made so (a copy) for
    // the collective, and becomes the parameter's gradient in FinishBackward.
    bucket.buffer = grad.is_non_overlapping_and_dense() ? grad : grad.contiguous(grad.suggest_memory_format());
    ready_[param_index] = true;
    bucket.pending = 0;
    if (options_.overlap) LaunchReady();
    return;
  }
  const at::Tensor& view = bucket.views[slot];
  // A gradient accumulated into its view (it was not reset since the last
  // step) is in place already. Otherwise, on the CPU it is copied now, while
  // it is still in cache; on a GPU with the bucket's others, in one launch.
  if (!grad.is_same(view)) {
    if (bucket.buffer.is_cpu() && !options_.batch_cpu_copies) {
      view.copy_(grad);
    } else {
      bucket.copy_from.push_back(grad);
      bucket.copy_to.push_back(view);
    }
  }
  ready_[param_index] = true;
  if (--bucket.pending == 0) {
    CopyArrived(bucket);
    if (options_.overlap) LaunchReady();
  }
}

void GradientReducer::CopyArrived(Bucket& bucket) {
  if (bucket.copy_to.empty()) return;
  at::NoGradGuard no_grad;
  at::_foreach_copy_(bucket.copy_to, bucket.copy_from);
  bucket.copy_from.clear();
  bucket.copy_to.clear();
}

void GradientReducer::LaunchReady() {
  while (next_to_launch_ < buckets_.size() && buckets_[next_to_launch_].pending == 0) {
    Launch(buckets_[next_to_launch_++]);
  }
}

void GradientReducer::Launch(Bucket& bucket) {
  at::NoGradGuard no_grad;
  const int world_size = group_->getSize();
  if (world_size > 1) bucket.buffer.div_(world_size);
  std::vector<at::Tensor> tensors = {bucket.buffer};
  bucket.work = group_->allreduce(tensors);
  ++stats_.allreduces;
  stats_.bytes += static_cast<double>(Bytes(bucket.buffer));
}

void GradientReducer::FinishBackward() {
  std::lock_guard<std::mutex> lock(mu_);
  at::NoGradGuard no_grad;
  // Parameters that got no gradient this step contribute zeros.
  for (Bucket& bucket : buckets_) {
    if (bucket.pending == 0) continue;
    for (size_t slot = 0; slot < bucket.params.size(); ++slot) {
      if (ready_[bucket.params[slot]]) continue;
      if (bucket.own) {
        bucket.buffer = at::zeros_like(params_[bucket.params[slot]]);
      } else {
        bucket.views[slot].zero_();
      }
      ready_[bucket.params[slot]] = true;
    }
    bucket.pending = 0;
    CopyArrived(bucket);
  }
  LaunchReady();
  Stopwatch waiting;
  std::exception_ptr failure;
  for (Bucket& bucket : buckets_) {
    if (!bucket.work) continue;
    try {
      bucket.work->wait();
    } catch (...) {
      if (!failure) failure = std::current_exception();
    }
    bucket.work.reset();
  }
  stats_.wait_seconds += waiting.Seconds();
  ++stats_.steps;
  if (failure) {
    ResetForNextStep();
    std::rethrow_exception(failure);
  }
  for (Bucket& bucket : buckets_) {
    for (size_t slot = 0; slot < bucket.params.size(); ++slot) {
      at::Tensor& param = params_[bucket.params[slot]];
      const at::Tensor& averaged = bucket.own ? bucket.buffer : bucket.views[slot];
      if (!param.grad().is_same(averaged)) param.mutable_grad() = averaged;
    }
  }
  ResetForNextStep();
}

void GradientReducer::ResetForNextStep() {
  for (Bucket& bucket : buckets_) {
    bucket.pending = static_cast<int64_t>(bucket.params.size());
    bucket.copy_from.clear();  // after a failed step
    bucket.copy_to.clear();
    if (bucket.own) bucket.buffer = at::Tensor();  // the parameter holds it; a set_to_none frees it
  }
  ready_.assign(params_.size(), false);
  next_to_launch_ = 0;
}

std::vector<std::vector<int64_t>> GradientReducer::bucket_indices() const {
  std::vector<std::vector<int64_t>> indices;
  for (const Bucket& bucket : buckets_) indices.push_back(bucket.params);
  return indices;
}

}  // namespace dlspeed
