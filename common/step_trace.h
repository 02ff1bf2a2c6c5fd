// Chrome traces of a few training steps through PyTorch's Kineto profiler:
// the operators the host runs (backward's thread included) and, on a GPU,
// the kernels and copies it runs, in the format torch.profiler's
// export_chrome_trace writes (chrome://tracing and ui.perfetto.dev open it).
// The training binaries take --trace, --trace_after_steps and --trace_steps.
//
//   absl::StatusOr<dlspeed::StepTrace> trace = dlspeed::StepTraceFromFlags(device);
//   if (!trace.ok()) dlspeed::ExitWithUsageError(trace.status().message());
//   ... after each training step:
//   if (absl::Status s = trace->AfterStep(); !s.ok()) std::cerr << s.message() << "\n";
#ifndef DLSPEED_COMMON_STEP_TRACE_H_
#define DLSPEED_COMMON_STEP_TRACE_H_

#include <cstdint>
#include <string>

#include <c10/core/Device.h>

#include "absl/flags/declare.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

ABSL_DECLARE_FLAG(std::string, trace);
ABSL_DECLARE_FLAG(int64_t, trace_after_steps);
ABSL_DECLARE_FLAG(int64_t, trace_steps);

namespace dlspeed {

class StepTrace {
 public:
  // Traces `steps` steps that follow the first `after_steps` (1 or more) and
  // writes them to `path`; an empty path traces nothing. Traced steps run slower:
  // keep them out of the timed ones (the binaries time the epochs after the
  // first).
  StepTrace(std::string path, int64_t after_steps, int64_t steps, c10::Device device);
  StepTrace(StepTrace&& other) noexcept;
  StepTrace& operator=(StepTrace&& other) noexcept;
  StepTrace(const StepTrace&) = delete;
  StepTrace& operator=(const StepTrace&) = delete;
  ~StepTrace();  // stops a trace still running, writing nothing

  // Counts one finished step: starts the profiler after the after_steps'th,
  // stops it and writes the file after the last traced one. An error (the
  // profiler would not start, the file could not be written) is returned
  // once, naming the file; training can go on.
  absl::Status AfterStep();

  // Call when the run ends: FailedPrecondition, naming the file, when a trace
  // was asked for but the run ended before its last traced step (nothing is
  // written then); OK otherwise, and from then on.
  absl::Status Finish();

  bool enabled() const { return !path_.empty(); }
  bool running() const { return running_; }

 private:
  std::string path_;
  int64_t after_steps_ = 0;
  int64_t steps_ = 0;
  c10::Device device_;
  int64_t steps_done_ = 0;
  bool running_ = false;

  void Abandon();  // stops a running trace without writing it
};

// The trace the flags ask for; an error names the flag when --trace's folder
// does not exist or cannot be written, or the step counts are negative.
absl::StatusOr<StepTrace> StepTraceFromFlags(const c10::Device& device);

}  // namespace dlspeed

#endif  // DLSPEED_COMMON_STEP_TRACE_H_
