#include "common/timing.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

#include <torch/cuda.h>

namespace dlspeed {
namespace {

// numpy.percentile(..., method="linear") on sorted, non-empty samples.
double Percentile(const std::vector<double>& sorted, double percent) {
  const double position = percent / 100.0 * static_cast<double>(sorted.size() - 1);
  const size_t lower = static_cast<size_t>(std::floor(position));
  const size_t upper = std::min(lower + 1, sorted.size() - 1);
  const double fraction = position - static_cast<double>(lower);
  return sorted[lower] + (sorted[upper] - sorted[lower]) * fraction;
}

}  // namespace

void SynchronizeDevice(const c10::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index());
}

Summary Summarize(std::vector<double> samples) {
  Summary summary;
  if (samples.empty()) return summary;
  std::sort(samples.begin(), samples.end());
  summary.count = static_cast<int64_t>(samples.size());
  summary.total = std::accumulate(samples.begin(), samples.end(), 0.0);
  summary.mean = summary.total / static_cast<double>(samples.size());
  summary.median = Percentile(samples, 50);
  summary.p10 = Percentile(samples, 10);
  summary.p90 = Percentile(samples, 90);
  summary.min = samples.front();
  summary.max = samples.back();
  return summary;
}

nlohmann::json ToJson(const Summary& summary) {
  return {{"count", summary.count}, {"mean", summary.mean}, {"median", summary.median},
          {"p10", summary.p10},     {"p90", summary.p90},   {"min", summary.min},
          {"max", summary.max},     {"total", summary.total}};
}

void StepTimer::Start() {
  SynchronizeDevice(device_);
  stopwatch_.Restart();
  running_ = true;
}

void StepTimer::Stop(int64_t items) {
  if (!running_) throw std::logic_error("StepTimer::Stop() called without Start()");
  SynchronizeDevice(device_);
  Record(stopwatch_.Seconds(), items);
  running_ = false;
}

void StepTimer::Record(double seconds, int64_t items) {
  seconds_.push_back(seconds);
  items_.push_back(items);
}

void StepTimer::Reset() {
  seconds_.clear();
  items_.clear();
  running_ = false;
}

Summary StepTimer::StepSummary() const { return Summarize(seconds_); }

double StepTimer::Throughput() const {
  if (seconds_.empty()) return 0;
  const double median = StepSummary().median;
  if (median <= 0) return 0;
  const double items = std::accumulate(items_.begin(), items_.end(), 0.0);
  return items / static_cast<double>(items_.size()) / median;
}

nlohmann::json StepTimer::ToJson() const {
  nlohmann::json json = dlspeed::ToJson(StepSummary());
  json["items"] = std::accumulate(items_.begin(), items_.end(), int64_t{0});
  json["throughput"] = Throughput();
  return json;
}

}  // namespace dlspeed
