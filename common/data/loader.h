// BatchLoader: background threads cut an ImageDataset into normalized float
// batches, in a seeded per-epoch order, optionally augmented, sharded across
// ranks like torch.utils.data.DistributedSampler.
//
//   dlspeed::LoaderOptions options;
//   options.batch_size = 512;
//   options.augment = true;
//   dlspeed::BatchLoader loader(train, options);
//   for (int64_t epoch = 0; epoch < epochs; ++epoch) {
//     loader.StartEpoch(epoch);
//     while (std::optional<dlspeed::Batch> batch = loader.Next()) {
//       Step(batch->images.to(device, /*non_blocking=*/true), batch->labels.to(device));
//     }
//   }
//
// Batches depend only on the data, the options and the epoch, never on thread
// timing. StartEpoch and Next are called from one thread.
#ifndef DLSPEED_COMMON_DATA_LOADER_H_
#define DLSPEED_COMMON_DATA_LOADER_H_

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <ATen/core/Tensor.h>

#include "absl/status/status.h"
#include "common/data/image_dataset.h"

namespace dlspeed {

struct LoaderOptions {
  int64_t batch_size = 512;
  bool shuffle = true;      // a new permutation each epoch, seeded by (seed, epoch)
  bool augment = false;     // RandomCrop(32, padding=4) + RandomHorizontalFlip
  uint64_t seed = 0;
  int workers = 2;          // background threads; 0 builds batches inside Next()
  int prefetch = 4;         // most batches built ahead of the one Next() returns
  bool drop_last = false;   // drop this rank's last partial batch
  int64_t rank = 0;         // this process's shard, 0 <= rank < world_size
  int64_t world_size = 1;
  bool pin_memory = false;  // page-locked batches when CUDA is available
};

struct Batch {
  at::Tensor images;  // float32 [B,3,32,32], normalized to [-1, 1]
  at::Tensor labels;  // int64 [B]
  int64_t index;      // position of the batch within its epoch
};

// Returns InvalidArgument if BatchLoader would reject `options` or `data`
// (batch_size < 1, world_size < 1, rank outside [0, world_size), workers < 0,
// prefetch < 1, images not uint8 [N,C,H,W] or labels not int64 [N]).
absl::Status CheckLoaderOptions(const ImageDataset& data, const LoaderOptions& options);

class BatchLoader {
 public:
  // Requires CheckLoaderOptions(data, options).ok() (throws c10::Error
  // otherwise). Keeps references to data's tensors; starts the workers idle.
  BatchLoader(const ImageDataset& data, LoaderOptions options);
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;
  // Cancels any epoch in flight and joins the workers.
  ~BatchLoader();

  // Begins `epoch` (any batches of an unfinished epoch are discarded).
  void StartEpoch(int64_t epoch);
  // The epoch's next batch, in order; nullopt once the epoch is done or before
  // the first StartEpoch. Rethrows an exception raised while building it.
  std::optional<Batch> Next();

  // Batches and samples this rank sees per epoch.
  int64_t batches_per_epoch() const;
  int64_t samples_per_epoch() const { return samples_per_epoch_; }

 private:
  Batch Build(int64_t epoch, const at::Tensor& order, int64_t index) const;
  void WorkerLoop();

  const ImageDataset data_;
  const LoaderOptions options_;
  const int64_t samples_per_epoch_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  int64_t generation_ = 0;   // bumped by StartEpoch; stale work is discarded
  int64_t epoch_ = -1;
  at::Tensor order_;         // this rank's sample indices for the epoch
  int64_t next_to_build_ = 0;
  int64_t next_to_return_ = 0;
  std::map<int64_t, Batch> ready_;
  std::exception_ptr error_;
  std::vector<std::thread> workers_;
};

}  // namespace dlspeed

#endif  // DLSPEED_COMMON_DATA_LOADER_H_
