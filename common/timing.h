// Timing helpers for benchmarks: a steady-clock stopwatch, device
// synchronisation, robust summaries (median, percentiles) and a per-step timer
// that reports throughput.
//
// Example:
//   dlspeed::StepTimer timer(device);
//   for (int step = 0; step < steps; ++step) {
//     timer.Start();
//     TrainStep(batch);
//     timer.Stop(/*items=*/batch_size);
//   }
//   record["train"] = timer.ToJson();  // summary + "throughput" items/s
#ifndef DLSPEED_COMMON_TIMING_H_
#define DLSPEED_COMMON_TIMING_H_

#include <chrono>
#include <cstdint>
#include <vector>

#include <c10/core/Device.h>
#include <nlohmann/json.hpp>

namespace dlspeed {

// Measures wall time on the steady clock since construction or Restart().
class Stopwatch {
 public:
  Stopwatch() { Restart(); }
  void Restart() { start_ = std::chrono::steady_clock::now(); }
  // Seconds elapsed since construction or the last Restart().
  double Seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::chrono::steady_clock::time_point start_;
};

// Waits for all queued work on `device` to finish (CUDA); a no-op elsewhere.
void SynchronizeDevice(const c10::Device& device);

// Order statistics of a set of samples (usually seconds).
struct Summary {
  int64_t count = 0;
  double mean = 0, median = 0, p10 = 0, p90 = 0, min = 0, max = 0, total = 0;
};

// Summarises `samples`; percentiles interpolate linearly between order
// statistics like numpy.percentile's default. Empty input gives all zeros.
Summary Summarize(std::vector<double> samples);

// {"count", "mean", "median", "p10", "p90", "min", "max", "total"}.
nlohmann::json ToJson(const Summary& summary);

// Times steps one at a time, synchronising `device` before each clock reading
// so that asynchronous GPU work is counted in the step that queued it.
class StepTimer {
 public:
  explicit StepTimer(c10::Device device = c10::Device(c10::kCPU)) : device_(device) {}

  // Synchronises the device, then starts timing one step.
  void Start();
  // Synchronises the device, then records the step begun by Start() as
  // processing `items` items (images, samples...). Requires a prior Start().
  void Stop(int64_t items);
  // Records a step measured elsewhere.
  void Record(double seconds, int64_t items);
  // Forgets all recorded steps (e.g. after warm-up).
  void Reset();

  int64_t steps() const { return static_cast<int64_t>(seconds_.size()); }
  const std::vector<double>& step_seconds() const { return seconds_; }
  // Summary of the per-step seconds.
  Summary StepSummary() const;
  // Mean items per step divided by the median step time; 0 without steps.
  double Throughput() const;
  // ToJson(StepSummary()) plus "items" (total) and "throughput" (items/s).
  nlohmann::json ToJson() const;

 private:
  c10::Device device_;
  Stopwatch stopwatch_;
  bool running_ = false;
  std::vector<double> seconds_;
  std::vector<int64_t> items_;
};

}  // namespace dlspeed

#endif  // DLSPEED_COMMON_TIMING_H_
