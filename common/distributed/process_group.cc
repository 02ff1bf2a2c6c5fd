#include "common/distributed/process_group.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <thread>
#include <utility>
#include <vector>

#include <c10/util/Logging.h>
#include <ATen/ATen.h>
#include <torch/cuda.h>
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#if defined(LIBTORCH_HAS_CUDA) && __has_include(<nccl.h>) && __has_include(<cuda_runtime_api.h>)
#define DLSPEED_HAS_NCCL 1
#ifndef USE_C10D_NCCL
#define USE_C10D_NCCL 1  // ProcessGroupNCCL.hpp declares nothing without it
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/stop_signal.h"

namespace dlspeed {
namespace {

constexpr auto kHeartbeatPeriod = std::chrono::milliseconds(500);

std::string HeartbeatKey(int rank) { return absl::StrCat("dlspeed/heartbeat/", rank); }

// The first line of a c10d error, without its C++ stack trace.
std::string FirstLine(const std::exception& error) {
  std::string text = error.what();
  const size_t newline = text.find('\n');
  return newline == std::string::npos ? text : text.substr(0, newline);
}

std::shared_ptr<::gloo::transport::Device> GlooDevice(const RankEnv& env) {
  if (const char* interface = std::getenv("GLOO_SOCKET_IFNAME"); interface != nullptr && *interface != '\0') {
    return c10d::ProcessGroupGloo::createDeviceForInterface(interface);
  }
  // All ranks on one machine: loopback avoids depending on its hostname.
  if (env.local_world_size == env.world_size) {
    return c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1");
  }
  return c10d::ProcessGroupGloo::createDefaultDevice();
}

}  // namespace

StopAgreement::StopAgreement(ProcessGroup* group, c10::Device device, std::chrono::milliseconds interval,
                             int64_t max_period)
    : group_(group),
      interval_seconds_(std::chrono::duration<double>(interval).count()),
      max_period_(max_period < 1 ? 1 : max_period),
      since_(std::chrono::steady_clock::now()),
      flag_(at::zeros({2}, at::TensorOptions().dtype(at::kFloat).device(device))) {}

namespace {

// The smallest and largest of each of `values` across the ranks: one
// allreduce (MAX of the values and of their negatives) on `device`.
struct RankRange {
  std::vector<int64_t> min, max;
  bool agreed() const { return min == max; }
};

RankRange RangeAcrossRanks(c10d::Backend& backend, const std::vector<int64_t>& values, const c10::Device& device) {
  const at::Tensor local = at::tensor(values, at::kLong);
  std::vector<at::Tensor> tensors = {at::cat({local, -local}).to(device)};
  c10d::AllreduceOptions max;
  max.reduceOp = c10d::ReduceOp::MAX;
  backend.allreduce(tensors, max)->wait();
  const at::Tensor reduced = tensors[0].cpu();
  const int64_t n = static_cast<int64_t>(values.size());
  RankRange range;
  for (int64_t i = 0; i < n; ++i) {
    range.max.push_back(reduced[i].item<int64_t>());
    range.min.push_back(-reduced[n + i].item<int64_t>());
  }
  return range;
}

}  // namespace

absl::Status CheckSameResumePoint(c10d::Backend& backend, const c10::Device& device, const std::string& checkpoint,
                                  bool found, bool unreadable, int64_t epoch, int64_t step) {
  const RankRange range = RangeAcrossRanks(backend, {found ? 1 : 0, unreadable ? 1 : 0, epoch, step}, device);
  if (range.max[1] == 1) {
    return absl::FailedPreconditionError(
        absl::StrCat("--resume: ", range.min[1] == 1 ? "no rank could read " : "a rank could not read its copy of ", checkpoint,
                     " (its line says why)"));
  }
  if (range.agreed()) return absl::OkStatus();
  if (range.min[0] != range.max[0]) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--resume: ", checkpoint, " is there for some ranks and not for others; every rank must see the same "
        "checkpoint (a file system they share, or a copy on each machine)"));
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "--resume: the ranks read different checkpoints at ", checkpoint, " (epochs ", range.min[2] + 1, " to ",
      range.max[2] + 1, ", steps ", range.min[3], " to ", range.max[3],
      "); every rank must see the same checkpoint (a file system they share)"));
}

int StopAgreement::Check() {
  if (group_ == nullptr) return PendingStopSignal();
  if (++steps_ < period_) return 0;
  const auto now = std::chrono::steady_clock::now();
  const double step_seconds = std::chrono::duration<double>(now - since_).count() / static_cast<double>(steps_);
  // [the pending signal, this rank's mean step], both reduced with MAX.
  flag_.copy_(at::tensor({static_cast<float>(PendingStopSignal()), static_cast<float>(step_seconds)}));
  std::vector<at::Tensor> tensors = {flag_};
  c10d::AllreduceOptions max;
  max.reduceOp = c10d::ReduceOp::MAX;
  group_->backend().allreduce(tensors, max)->wait();
  const at::Tensor agreed = flag_.cpu();
  const double slowest = agreed[1].item<double>();
  // The same on every rank: computed from the same reduced value.
  period_ = slowest > 0 ? std::clamp<int64_t>(static_cast<int64_t>(interval_seconds_ / slowest), 1, max_period_)
                        : max_period_;
  steps_ = 0;
  since_ = std::chrono::steady_clock::now();
  return static_cast<int>(agreed[0].item<float>());
}

absl::Status ProcessGroup::AwaitRankZero(const std::string& name) {
  const std::string key = absl::StrCat("dlspeed/rank0/", name);
  try {
    if (env_.rank == 0) {
      store_->set(key, "1");
      return absl::OkStatus();
    }
    // Rank 0's heartbeat must move within this long while it works.
    constexpr auto kSilence = 20 * kHeartbeatPeriod;
    std::vector<uint8_t> last_beat;
    auto last_change = std::chrono::steady_clock::now();
    while (!store_->check({key})) {
      std::vector<uint8_t> beat =
          store_->check({HeartbeatKey(0)}) ? store_->get(HeartbeatKey(0)) : std::vector<uint8_t>();
      const auto now = std::chrono::steady_clock::now();
      if (beat != last_beat) {
        last_beat = std::move(beat);
        last_change = now;
      } else if (now - last_change > kSilence) {
        return absl::UnavailableError(absl::StrCat("rank 0 stopped responding while the others waited for it (",
                                                   name, ")"));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  } catch (const std::exception& error) {
    return absl::UnavailableError(absl::StrCat("rank 0 (host of the rendezvous store) is unreachable: ",
                                               ShortCollectiveError(error.what())));
  }
  return absl::OkStatus();
}

std::string ShortCollectiveError(const std::string& what) {
  std::string text = what.substr(0, what.find('\n'));
  if (!text.empty() && text[0] == '[') {
    const size_t end = text.find("] ");
    if (end != std::string::npos) text = text.substr(end + 2);
  }
  const size_t advice = text.find(". This is typically");
  if (advice != std::string::npos) text = text.substr(0, advice);
  return text;
}

bool BackendAvailable(const std::string& backend) {
  if (backend == "gloo") return true;
#if defined(DLSPEED_HAS_NCCL)
  if (backend == "nccl") return true;
#endif
  return false;
}

absl::Status CheckBackendName(const std::string& flag) {
  if (flag == "auto" || flag == "gloo" || flag == "nccl") return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("unknown backend '", flag, "' (choose auto, gloo or nccl)"));
}

absl::StatusOr<c10::Device> RankDevice(const RankEnv& env, bool on_gpus) {
  if (!on_gpus) return c10::Device(c10::kCPU);
  absl::StatusOr<int> index = OwnGpuIndex(env, static_cast<int>(torch::cuda::device_count()), std::getenv);
  if (!index.ok()) return index.status();
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(*index));
}

absl::StatusOr<std::string> ChooseBackend(const std::string& flag, bool on_gpus) {
  if (absl::Status s = CheckBackendName(flag); !s.ok()) return s;
  const std::string backend = flag == "auto" ? (on_gpus ? "nccl" : "gloo") : flag;
  if (backend == "nccl" && !on_gpus) return absl::FailedPreconditionError("--backend=nccl needs GPUs; use gloo on the CPU");
  if (!BackendAvailable(backend)) {
    return absl::FailedPreconditionError(
        absl::StrCat("backend '", backend, "' is not available in this LibTorch build (use --backend=gloo)"));
  }
  return backend;
}

absl::StatusOr<std::unique_ptr<ProcessGroup>> ProcessGroup::Create(const RankEnv& env,
                                                                   const ProcessGroupOptions& options) {
  if (options.backend != "gloo" && options.backend != "nccl") {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown backend '", options.backend, "' (choose gloo or nccl)"));
  }
  if (!BackendAvailable(options.backend)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "backend '", options.backend, "' is not available in this LibTorch build (use --backend=gloo)"));
  }
  const std::string where = absl::StrCat(env.master_addr, ":", env.master_port);
  c10::intrusive_ptr<c10d::Store> store;
  // c10d logs every connection retry, with a stack trace, to stderr; the
  // outcome is reported below in one line instead.
  const int log_level = FLAGS_caffe2_log_level;
  FLAGS_caffe2_log_level = 3;  // fatal only
  struct RestoreLogLevel {
    int level;
    ~RestoreLogLevel() { FLAGS_caffe2_log_level = level; }
  } restore{log_level};
  try {
    c10d::TCPStoreOptions store_options;
    store_options.port = static_cast<uint16_t>(env.master_port);
    store_options.isServer = env.rank == 0;
    store_options.numWorkers = env.world_size;
    store_options.waitWorkers = true;
    store_options.timeout = options.timeout;
    store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, store_options);
  } catch (const std::exception& error) {
    const std::string message = FirstLine(error);
    if (env.rank == 0 && (absl::StrContains(message, "in use") || absl::StrContains(message, "bind"))) {
      return absl::UnavailableError(absl::StrCat("rank 0 cannot listen on MASTER_PORT=", env.master_port,
                                                 ": the port is already in use (choose another MASTER_PORT)"));
    }
    if (env.rank == 0) {
      return absl::UnavailableError(absl::StrCat("rank 0: the rendezvous at ", where, " did not complete within ",
                                                 options.timeout.count() / 1000.0, " s (", env.world_size,
                                                 " ranks expected; are they all running?): ", message));
    }
    return absl::UnavailableError(absl::StrCat("rank ", env.rank, ": cannot reach the rendezvous at ", where,
                                               " within ", options.timeout.count() / 1000.0,
                                               " s (is rank 0 running, and are MASTER_ADDR and MASTER_PORT right?)"));
  }

  c10::intrusive_ptr<c10d::Backend> backend;
  try {
    auto prefixed = c10::make_intrusive<c10d::PrefixStore>(absl::StrCat("dlspeed/", options.backend), store);
    if (options.backend == "gloo") {
      auto gloo_options = c10d::ProcessGroupGloo::Options::create();
      gloo_options->timeout = options.timeout;
      gloo_options->devices.push_back(GlooDevice(env));
      backend = c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, env.rank, env.world_size, gloo_options);
    }
#if defined(DLSPEED_HAS_NCCL)
    if (options.backend == "nccl") {
      auto nccl_options = c10d::ProcessGroupNCCL::Options::create();
      nccl_options->timeout = options.timeout;
      backend = c10::make_intrusive<c10d::ProcessGroupNCCL>(prefixed, env.rank, env.world_size, nccl_options);
      // As init_process_group(device_id=...): the rank's device is known from
      // the start, so barrier() and the communicators need not guess it.
      backend->setBoundDeviceId(at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(options.device_index)));
    }
#endif
  } catch (const std::exception& error) {
    return absl::UnavailableError(
        absl::StrCat("rank ", env.rank, ": cannot create the ", options.backend, " process group: ", FirstLine(error)));
  }
  return std::unique_ptr<ProcessGroup>(new ProcessGroup(env, options.backend, std::move(store), std::move(backend)));
}

ProcessGroup::ProcessGroup(RankEnv env, std::string backend_name, c10::intrusive_ptr<c10d::Store> store,
                           c10::intrusive_ptr<c10d::Backend> backend)
    : env_(std::move(env)),
      backend_name_(std::move(backend_name)),
      store_(std::move(store)),
      backend_(std::move(backend)),
      heartbeat_([this] { Heartbeat(); }) {}

ProcessGroup::~ProcessGroup() {
  stop_ = true;
  heartbeat_.join();
  // As destroy_process_group(): NCCL finalises its communicators here instead
  // of aborting them in its destructor with a warning; Gloo has nothing to do.
  try {
    backend_->shutdown();
  } catch (const std::exception&) {
  }
}

void ProcessGroup::Heartbeat() {
  int64_t beat = 0;
  while (!stop_) {
    try {
      store_->set(HeartbeatKey(env_.rank), absl::StrCat(++beat));
    } catch (const std::exception&) {
      return;  // the store is gone; DescribeFailedPeers reports it
    }
    for (auto slept = std::chrono::milliseconds(0); slept < kHeartbeatPeriod && !stop_;
         slept += std::chrono::milliseconds(50)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
}

std::string ProcessGroup::DescribeFailedPeers() {
  auto read_beats = [&](std::vector<std::string>* beats) {
    beats->clear();
    for (int rank = 0; rank < env_.world_size; ++rank) {
      const std::string key = HeartbeatKey(rank);
      if (!store_->check({key})) {
        beats->push_back("");
        continue;
      }
      std::vector<uint8_t> value = store_->get(key);
      beats->emplace_back(value.begin(), value.end());
    }
  };
  std::vector<std::string> before, after;
  try {
    read_beats(&before);
    std::this_thread::sleep_for(3 * kHeartbeatPeriod);
    read_beats(&after);
  } catch (const std::exception&) {
    return env_.rank == 0 ? "the rendezvous store stopped answering"
                          : "rank 0 (host of the rendezvous store) is unreachable";
  }
  std::vector<std::string> stopped;
  for (int rank = 0; rank < env_.world_size; ++rank) {
    if (rank != env_.rank && before[rank] == after[rank]) stopped.push_back(absl::StrCat("rank ", rank));
  }
  if (stopped.empty()) return "every peer is still beating (the failure may be a timeout or a network error)";
  return absl::StrCat(absl::StrJoin(stopped, ", "), stopped.size() == 1 ? " stopped" : " stopped",
                      " responding");
}

}  // namespace dlspeed
