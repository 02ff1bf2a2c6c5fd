#include "common/step_trace.h"

#include <sys/stat.h>
#include <unistd.h>

#include <exception>
#include <filesystem>
#include <memory>
#include <set>
#include <utility>

#include <torch/csrc/autograd/profiler_kineto.h>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "common/exception_text.h"

ABSL_FLAG(std::string, trace, "",
          "write a Chrome trace of a few training steps to this file (PyTorch's Kineto profiler: host operators "
          "and, on a GPU, kernels); empty: no trace");
ABSL_FLAG(int64_t, trace_after_steps, 20,
          "training steps before the trace starts, 1 or more (traced steps run slower: keep them in the first, "
          "untimed epoch)");
ABSL_FLAG(int64_t, trace_steps, 5, "how many training steps the trace covers");

namespace dlspeed {
namespace {

namespace profiler = torch::autograd::profiler;
using torch::profiler::impl::ActivityType;
using torch::profiler::impl::ProfilerConfig;
using torch::profiler::impl::ProfilerState;

std::set<ActivityType> Activities(const c10::Device& device) {
  std::set<ActivityType> activities = {ActivityType::CPU};
  if (device.is_cuda()) activities.insert(ActivityType::CUDA);
  return activities;
}

}  // namespace

StepTrace::StepTrace(std::string path, int64_t after_steps, int64_t steps, c10::Device device)
    : path_(std::move(path)), after_steps_(after_steps), steps_(steps), device_(device) {
  if (steps_ <= 0) path_.clear();
}

StepTrace::StepTrace(StepTrace&& other) noexcept : device_(other.device_) { *this = std::move(other); }

StepTrace& StepTrace::operator=(StepTrace&& other) noexcept {
  if (this == &other) return *this;
  Abandon();
  path_ = std::move(other.path_);
  after_steps_ = other.after_steps_;
  steps_ = other.steps_;
  device_ = other.device_;
  steps_done_ = other.steps_done_;
  running_ = other.running_;
  other.path_.clear();
  other.running_ = false;
  return *this;
}

StepTrace::~StepTrace() { Abandon(); }

absl::Status StepTrace::Finish() {
  if (!enabled()) return absl::OkStatus();
  Abandon();
  const std::string path = path_;
  path_.clear();
  return absl::FailedPreconditionError(absl::StrCat(
      "--trace=", path, ": the run ended after ", steps_done_, " steps, before the last of the steps ",
      after_steps_ + 1, " to ", after_steps_ + steps_, " that --trace_after_steps and --trace_steps ask for: no trace "
      "written"));
}

void StepTrace::Abandon() {
  if (!running_) return;
  running_ = false;
  try {
    profiler::disableProfiler();
  } catch (const std::exception&) {
  }
}

absl::Status StepTrace::AfterStep() {
  if (!enabled()) return absl::OkStatus();
  ++steps_done_;
  if (steps_done_ == after_steps_ && !running_) {
    try {
      const ProfilerConfig config(ProfilerState::KINETO);
      profiler::prepareProfiler(config, Activities(device_));
      profiler::enableProfiler(config, Activities(device_));
      running_ = true;
    } catch (const std::exception& e) {
      const std::string path = path_;
      path_.clear();
      return absl::InternalError(absl::StrCat("--trace=", path, ": the profiler would not start: ", ExceptionText(e)));
    }
    return absl::OkStatus();
  }
  if (!running_ || steps_done_ < after_steps_ + steps_) return absl::OkStatus();
  running_ = false;
  const std::string path = path_;
  path_.clear();  // one trace a run
  try {
    std::unique_ptr<profiler::ProfilerResult> result = profiler::disableProfiler();
    if (result == nullptr) return absl::InternalError(absl::StrCat("--trace=", path, ": the profiler returned nothing"));
    result->save(path);
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("--trace=", path, ": cannot write the trace: ", ExceptionText(e)));
  }
  std::error_code error;
  if (std::filesystem::file_size(path, error) == 0 || error) {
    return absl::InternalError(absl::StrCat("--trace=", path, ": the profiler wrote no trace there"));
  }
  return absl::OkStatus();
}

absl::StatusOr<StepTrace> StepTraceFromFlags(const c10::Device& device) {
  const std::string path = absl::GetFlag(FLAGS_trace);
  const int64_t after_steps = absl::GetFlag(FLAGS_trace_after_steps);
  const int64_t steps = absl::GetFlag(FLAGS_trace_steps);
  if (after_steps < 1) return absl::InvalidArgumentError("--trace_after_steps must be 1 or more");
  if (steps < 1) return absl::InvalidArgumentError("--trace_steps must be 1 or more");
  if (!path.empty()) {
    const std::filesystem::path parent = std::filesystem::absolute(path).parent_path();
    struct stat info;
    if (stat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode)) {
      return absl::InvalidArgumentError(absl::StrCat("--trace=", path, ": is a directory, not a file"));
    }
    if (stat(parent.c_str(), &info) != 0 || !S_ISDIR(info.st_mode) || access(parent.c_str(), W_OK) != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--trace=", path, ": its folder ", parent.string(), " does not exist or cannot be written"));
    }
  }
  return StepTrace(path, after_steps, steps, device);
}

}  // namespace dlspeed
