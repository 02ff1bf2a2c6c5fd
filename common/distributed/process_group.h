// A c10d process group for this rank: the rendezvous on c10d's TCPStore (rank
// 0 hosts it at MASTER_ADDR:MASTER_PORT), then Gloo (CPU tensors) or NCCL
// (CUDA tensors) on top, plus a heartbeat so that a rank whose collective
// fails can say which peer stopped.
//
//   absl::StatusOr<std::unique_ptr<dlspeed::ProcessGroup>> group =
//       dlspeed::ProcessGroup::Create(*env, {.backend = "gloo"});
//   if (!group.ok()) return dlspeed::ReportError(group.status().message());
//   (*group)->backend().allreduce(tensors)->wait();
//
// Collectives themselves are c10d's; nothing here reimplements them.
#ifndef DLSPEED_COMMON_DISTRIBUTED_PROCESS_GROUP_H_
#define DLSPEED_COMMON_DISTRIBUTED_PROCESS_GROUP_H_

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/util/intrusive_ptr.h>

#include "absl/status/statusor.h"
#include "common/distributed/rank_env.h"

namespace c10d {
class Backend;
class Store;
}  // namespace c10d

namespace dlspeed {

struct ProcessGroupOptions {
  std::string backend = "gloo";  // "gloo" or "nccl"
  // Limit for the rendezvous (all ranks connecting) and for each collective.
  std::chrono::milliseconds timeout = std::chrono::minutes(5);
  int device_index = 0;  // the CUDA device NCCL uses (usually LOCAL_RANK)
};

// The gist of a c10d or Gloo error for a one-line message: its first line,
// without a leading "[file:line] " and Gloo's generic advice after it.
std::string ShortCollectiveError(const std::string& what);

// Backends this LibTorch build can create: "gloo", and "nccl" when it was built
// with CUDA and NCCL headers were found.
bool BackendAvailable(const std::string& backend);

// --backend's value is one of auto, gloo and nccl, or InvalidArgument.
absl::Status CheckBackendName(const std::string& flag);

// The backend for --backend=`flag` when the ranks run on GPUs or on the CPU:
// auto is NCCL on GPUs and Gloo on the CPU. InvalidArgument for an unknown
// name; FailedPrecondition for NCCL on the CPU or in a LibTorch without it.
absl::StatusOr<std::string> ChooseBackend(const std::string& flag, bool on_gpus);

// The device this rank trains on: the CPU when `on_gpus` is false, else its
// own GPU (OwnGpuIndex over the GPUs this process sees). An error names what
// the launcher's variables lack.
absl::StatusOr<c10::Device> RankDevice(const RankEnv& env, bool on_gpus);

class ProcessGroup {
 public:
  // Joins the job described by `env`. Errors, each one line: an unknown or
  // unavailable backend (InvalidArgument), MASTER_PORT already in use on rank
  // 0, rank 0 unreachable or ranks missing within the timeout (Unavailable).
  static absl::StatusOr<std::unique_ptr<ProcessGroup>> Create(const RankEnv& env,
                                                              const ProcessGroupOptions& options);
  ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  c10d::Backend& backend() const { return *backend_; }
  const c10::intrusive_ptr<c10d::Backend>& backend_ptr() const { return backend_; }
  int rank() const { return env_.rank; }
  int world_size() const { return env_.world_size; }
  const RankEnv& env() const { return env_; }
  const std::string& backend_name() const { return backend_name_; }

  // After a collective failed: which peers stopped beating, e.g. "rank 1
  // stopped responding", or "rank 0 (host of the rendezvous store) is
  // unreachable". Takes about two heartbeat periods.
  std::string DescribeFailedPeers();

  // For work rank 0 does alone between collectives (evaluating, saving a
  // model), which may outlast the collective timeout that the other ranks'
  // next collective would wait under. Every rank calls it after that work,
  // with a name new each time; rank 0 returns at once, the others when rank 0
  // has called it, however long that takes while rank 0's heartbeat goes on.
  // Unavailable when rank 0 stops beating or its store stops answering.
  absl::Status AwaitRankZero(const std::string& name);

 private:
  ProcessGroup(RankEnv env, std::string backend_name, c10::intrusive_ptr<c10d::Store> store,
               c10::intrusive_ptr<c10d::Backend> backend);
  void Heartbeat();

  RankEnv env_;
  std::string backend_name_;
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d::Backend> backend_;
  std::atomic<bool> stop_{false};
  std::thread heartbeat_;
};

// For --resume, after each rank has looked for `checkpoint` (`found`), tried
// to load it (`unreadable` when that failed; the rank says why itself) and
// read where it resumes (`epoch`, `step`; 0 and 0 when not found): OK when
// every rank resumes from the same point, else FailedPrecondition saying what
// differs or that a rank could not read it. A checkpoint only some ranks see
// means they do not share a file system; left alone, those ranks would train
// from the start while the others resume, and hang at the end. A rank that
// cannot read it calls this too instead of exiting, so that the others do not
// wait in their collective until it times out. A collective: every rank calls
// it.
absl::Status CheckSameResumePoint(c10d::Backend& backend, const c10::Device& device, const std::string& checkpoint,
                                  bool found, bool unreadable, int64_t epoch, int64_t step);

// Makes every rank stop at the same step when any of them got SIGINT/SIGTERM
// (common/stop_signal.h; launchers pass signals on, but ranks see them at
// different steps). Check(), called after every step, allreduces the pending
// signal (MAX) at the first step and then about every `interval` of training,
// and returns it; on other steps it returns 0 without communicating. Each
// agreement also takes the slowest rank's mean step time since the last one,
// from which every rank computes the same number of steps to the next (1 to
// `max_period`): a signal is acted on within about `interval` or one step,
// and the training loop pays one tiny allreduce and device sync per
// interval. With no group (one process) it returns the local signal at every
// step.
class StopAgreement {
 public:
  StopAgreement(ProcessGroup* group, c10::Device device,
                std::chrono::milliseconds interval = std::chrono::seconds(1), int64_t max_period = 100);
  int Check();
  int64_t period() const { return period_; }  // steps until the next agreement

 private:
  ProcessGroup* group_;
  double interval_seconds_;
  int64_t max_period_;
  int64_t period_ = 1;
  int64_t steps_ = 0;
  std::chrono::steady_clock::time_point since_;
  at::Tensor flag_;
};

}  // namespace dlspeed

#endif  // DLSPEED_COMMON_DISTRIBUTED_PROCESS_GROUP_H_
