#include "common/data/loader.h"

#include <algorithm>
#include <initializer_list>
#include <utility>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include "absl/strings/str_cat.h"
#include "common/data/augment.h"
#include "common/intra_op_threads.h"

namespace dlspeed {
namespace {

// Hashes a list of numbers into one seed (splitmix64 steps), so nearby
// (seed, epoch, batch) triples give unrelated random streams.
uint64_t MixSeed(std::initializer_list<uint64_t> parts) {
  uint64_t h = 0x9e3779b97f4a7c15ULL;
  for (uint64_t part : parts) {
    h ^= part + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
  }
  return h;
}

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace

absl::Status CheckLoaderOptions(const ImageDataset& data, const LoaderOptions& options) {
  if (options.batch_size < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("batch size must be at least 1, got ", options.batch_size));
  }
  if (options.world_size < 1 || options.rank < 0 || options.rank >= options.world_size) {
    return absl::InvalidArgumentError(absl::StrCat("rank ", options.rank,
                                                   " is not in a world of size ",
                                                   options.world_size));
  }
  if (options.workers < 0 || options.prefetch < 1) {
    return absl::InvalidArgumentError(absl::StrCat("need workers >= 0 and prefetch >= 1, got ",
                                                   options.workers, " and ", options.prefetch));
  }
  if (!data.images.defined() || data.images.dim() != 4 ||
      data.images.scalar_type() != at::kByte || !data.labels.defined() ||
      data.labels.dim() != 1 || data.labels.scalar_type() != at::kLong ||
      data.labels.size(0) != data.images.size(0)) {
    return absl::InvalidArgumentError(
        "data set must hold uint8 images [N,C,H,W] and int64 labels [N]");
  }
  return absl::OkStatus();
}

BatchLoader::BatchLoader(const ImageDataset& data, LoaderOptions options)
    : data_(data),
      options_(options),
      samples_per_epoch_(
          CeilDiv(data.size(), std::max<int64_t>(options.world_size, 1))) {
  const absl::Status status = CheckLoaderOptions(data, options);
  TORCH_CHECK(status.ok(), "BatchLoader: ", std::string(status.message()));
  for (int i = 0; i < options_.workers; ++i) {
    workers_.emplace_back([this] { WorkerLoop(); });
  }
}

BatchLoader::~BatchLoader() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (std::thread& worker : workers_) worker.join();
}

int64_t BatchLoader::batches_per_epoch() const {
  return options_.drop_last ? samples_per_epoch_ / options_.batch_size
                            : CeilDiv(samples_per_epoch_, options_.batch_size);
}

void BatchLoader::StartEpoch(int64_t epoch) {
  // The same permutation on every rank; then DistributedSampler's padding
  // (repeat the head until the total divides world_size) and striding.
  const int64_t n = data_.size();
  at::Tensor order;
  if (options_.shuffle) {
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(
        MixSeed({options_.seed, static_cast<uint64_t>(epoch)}));
    order = at::randperm(n, gen, at::TensorOptions(at::kLong));
  } else {
    order = at::arange(n, at::TensorOptions(at::kLong));
  }
  const int64_t total = samples_per_epoch_ * options_.world_size;
  if (total > n) {
    order = at::cat({order, order.repeat({CeilDiv(total - n, n)}).slice(0, 0, total - n)});
  }
  order = order.slice(0, options_.rank, total, options_.world_size).contiguous();
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++generation_;
    epoch_ = epoch;
    order_ = std::move(order);
    next_to_build_ = 0;
    next_to_return_ = 0;
    ready_.clear();
    error_ = nullptr;
  }
  cv_.notify_all();
}

std::optional<Batch> BatchLoader::Next() {
  std::unique_lock<std::mutex> lock(mu_);
  if (epoch_ < 0 || next_to_return_ >= batches_per_epoch()) return std::nullopt;
  if (workers_.empty()) {
    return Build(epoch_, order_, next_to_return_++);
  }
  cv_.wait(lock, [this] { return error_ != nullptr || ready_.count(next_to_return_) > 0; });
  if (error_ != nullptr) std::rethrow_exception(error_);
  auto it = ready_.find(next_to_return_);
  Batch batch = std::move(it->second);
  ready_.erase(it);
  ++next_to_return_;
  lock.unlock();
  cv_.notify_all();
  return batch;
}

Batch BatchLoader::Build(int64_t epoch, const at::Tensor& order, int64_t index) const {
  const int64_t begin = index * options_.batch_size;
  const int64_t end = std::min(begin + options_.batch_size, order.size(0));
  const at::Tensor samples = order.slice(0, begin, end);
  at::Tensor images = data_.images.index_select(0, samples);
  if (options_.augment) {
    // Seeded by the batch's place, not by which worker builds it.
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(
        MixSeed({options_.seed, static_cast<uint64_t>(epoch),
                 static_cast<uint64_t>(options_.rank), static_cast<uint64_t>(index)}));
    images = RandomCropFlip(images, gen);
  }
  Batch batch{NormalizeImages(images), data_.labels.index_select(0, samples), index};
  if (options_.pin_memory && at::hasCUDA()) {
    batch.images = batch.images.pin_memory();
    batch.labels = batch.labels.pin_memory();
  }
  return batch;
}

void BatchLoader::WorkerLoop() {
  // Workers build whole batches side by side; an OpenMP team per worker
  // would only spin beside the training step's (common/intra_op_threads.h).
  UseOneIntraOpThreadHere();
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [this] {
      return stop_ || (epoch_ >= 0 && next_to_build_ < batches_per_epoch() &&
                       next_to_build_ < next_to_return_ + options_.prefetch);
    });
    if (stop_) return;
    const int64_t index = next_to_build_++;
    const int64_t generation = generation_;
    const int64_t epoch = epoch_;
    const at::Tensor order = order_;
    lock.unlock();
    std::optional<Batch> batch;
    std::exception_ptr error;
    try {
      batch = Build(epoch, order, index);
    } catch (...) {
      error = std::current_exception();
    }
    lock.lock();
    if (generation != generation_) continue;  // the epoch was cancelled
    if (error != nullptr) {
      error_ = error;
    } else {
      ready_.emplace(index, std::move(*batch));
    }
    cv_.notify_all();
  }
}

}  // namespace dlspeed
