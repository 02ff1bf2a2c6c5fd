// Averages gradients across the ranks of a process group the way PyTorch's
// DistributedDataParallel does: parameters are grouped into buckets (in
// reverse order, since backward produces gradients roughly last layer first;
// the first bucket small so communication starts early), and each bucket's
// allreduce is launched asynchronously as soon as its last gradient has been
// accumulated, so that communication overlaps the rest of backward.
//
//   dlspeed::BroadcastFromRankZero(module_tensors, group->backend());
//   dlspeed::GradientReducer reducer(model->parameters(), group->backend_ptr());
//   loss.backward();          // buckets are allreduced as gradients arrive
//   reducer.FinishBackward(); // waits; param.grad() now holds the average
//   optimizer.Step();
//
// Buckets are launched in the same order on every rank (bucket i only after
// buckets 0..i-1), as NCCL and Gloo require: the order in which their last
// gradients are expected, last parameter first. On a GPU a bucket's fresh
// gradients are copied in with one multi-tensor copy when its last one
// arrives, not one copy per gradient: every launch costs host time. On the CPU
// each is copied as it arrives, while it is still in cache, and a large
// gradient (ReducerOptions::own_bucket_min_bytes) is not copied at all: it is
// a bucket of its own, allreduced where autograd left it. After
// FinishBackward, each other gradient is a view into its bucket (DDP's
// gradient_as_bucket_view), so no copy back is needed. A parameter that got
// no gradient contributes zeros. With the GradScaler, an inf/NaN on any rank
// reaches every rank's averaged gradients, so every rank skips the same steps.
#ifndef DLSPEED_COMMON_DISTRIBUTED_GRADIENT_REDUCER_H_
#define DLSPEED_COMMON_DISTRIBUTED_GRADIENT_REDUCER_H_

#include <cstdint>
#include <mutex>
#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/util/intrusive_ptr.h>

namespace c10d {
class Backend;
class Work;
}  // namespace c10d

namespace dlspeed {

// Copies rank 0's values of `tensors` (parameters and buffers) to every rank.
void BroadcastFromRankZero(const std::vector<at::Tensor>& tensors, c10d::Backend& group);

struct ReducerOptions {
  int64_t bucket_cap_bytes = 25 << 20;       // DDP's bucket_cap_mb=25
  int64_t first_bucket_cap_bytes = 1 << 20;  // DDP's first bucket: 1 MB
  // A CPU gradient of at least this size is a bucket of its own, allreduced in
  // place instead of copied into a shared buffer. On the CPU the copy takes
  // memory bandwidth from the step (ResNet-18's 45 MB: about 3 ms, 4-5 % of a
  // batch-32 step on the 2-core VM of DESIGN.md), while a collective of 1 MB
  // or more gains nothing from sharing one. GPU gradients always share
  // buckets: there a copy is one cheap kernel and each collective costs host
  // time to launch. Set it above the largest gradient to share buckets always.
  int64_t own_bucket_min_bytes = 1 << 20;
  // false: hold every allreduce until FinishBackward (no overlap), to measure
  // what overlapping saves.
  bool overlap = true;
  // true: on the CPU too, copy a shared bucket's gradients in together when
  // its last one arrives, as on a GPU, instead of each as it arrives. For
  // tests, so that a CPU-only host runs the GPU's copy path.
  bool batch_cpu_copies = false;
};

struct ReducerStats {
  int64_t steps = 0;
  int64_t allreduces = 0;
  double bytes = 0;
  // Time FinishBackward spent waiting for allreduces: communication that was
  // not hidden behind backward. Host time: with NCCL, Work::wait only makes
  // the current CUDA stream wait, so there this is near zero and the unhidden
  // communication shows in the (synchronised) step times instead.
  double wait_seconds = 0;
};

class GradientReducer {
 public:
  // Registers a post-accumulate-grad hook on every parameter that requires
  // grad. Parameters must keep their storage while the reducer lives.
  GradientReducer(std::vector<at::Tensor> params, c10::intrusive_ptr<c10d::Backend> group,
                  ReducerOptions options = {});
  ~GradientReducer();  // removes the hooks
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  // Call after each backward: launches what is still pending, waits for all
  // buckets and leaves the averaged gradients in the parameters' .grad().
  // Throws c10::Error if a collective fails (a peer died, a timeout).
  void FinishBackward();

  // Parameter indices (into the constructor's list) of each bucket.
  std::vector<std::vector<int64_t>> bucket_indices() const;
  const ReducerStats& stats() const { return stats_; }
  void ResetStats() { stats_ = ReducerStats(); }  // e.g. after a warm-up epoch

  // Called by the hooks; not for users.
  void OnGradReady(int64_t param_index);

 private:
  struct Bucket {
    std::vector<int64_t> params;
    // A bucket of one large CPU gradient: `buffer` is that gradient itself,
    // set when it arrives; `offsets` and `views` stay empty.
    bool own = false;
    std::vector<int64_t> offsets;  // element offset of each parameter in `buffer`
    at::Tensor buffer;             // flat, one dtype and device
    std::vector<at::Tensor> views;  // each parameter's gradient in `buffer`, in its strides
    int64_t pending = 0;           // gradients not yet arrived in this step
    // On a GPU (or with batch_cpu_copies), arrived gradients that are not yet
    // the bucket's views, and their views: copied in together when the bucket
    // is complete.
    std::vector<at::Tensor> copy_from, copy_to;
    c10::intrusive_ptr<c10d::Work> work;
  };
  void AssignBuckets();
  at::Tensor MakeView(const Bucket& bucket, size_t slot) const;
  void CopyArrived(Bucket& bucket);
  void LaunchReady();
  void Launch(Bucket& bucket);
  void ResetForNextStep();

  std::vector<at::Tensor> params_;
  c10::intrusive_ptr<c10d::Backend> group_;
  ReducerOptions options_;
  std::vector<Bucket> buckets_;
  std::vector<std::pair<int64_t, int64_t>> location_;  // param -> (bucket, slot)
  std::vector<bool> ready_;
  size_t next_to_launch_ = 0;
  std::mutex mu_;
  ReducerStats stats_;
};

}  // namespace dlspeed

#endif  // DLSPEED_COMMON_DISTRIBUTED_GRADIENT_REDUCER_H_
