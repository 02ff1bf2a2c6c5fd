// Result records (JSON Lines, one object per measurement) and a terminal
// progress line for long loops.
//
// Example:
//   nlohmann::json record = dlspeed::NewRecord("resnet_single", device);
//   record["model"] = "resnet18";
//   dlspeed::Progress progress("epoch 1", steps_per_epoch);
//   for (int64_t step = 1; step <= steps_per_epoch; ++step) {
//     TrainStep();
//     progress.Update(step);
//   }
//   progress.Finish();
//   record["epoch_seconds"] = epoch_seconds;
//   absl::Status status = dlspeed::AppendRecord("results.jsonl", record);
#ifndef DLSPEED_COMMON_RESULTS_H_
#define DLSPEED_COMMON_RESULTS_H_

#include <cstdint>
#include <cstdio>
#include <string>

#include <c10/core/Device.h>
#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/timing.h"

namespace dlspeed {

// Appends `record` (a JSON object) as one line to the JSON Lines file `path`,
// atomically (see AppendLineAtomically). Invalid UTF-8 in strings is replaced.
// When the file cannot be written (a full disk), the error's message ends with
// the record itself, so that printing it loses no measurement.
absl::Status AppendRecord(const std::string& path, const nlohmann::json& record);

// Whether records can be appended to `path`, checked before a run spends its
// time: OK for an empty path (no records), a writable regular file, or a new
// file in a folder that exists (or can be made) and is writable; else
// FailedPrecondition naming `flag` and the path.
absl::Status CheckCanAppend(const std::string& flag, const std::string& path);

// The study's whole percentage, 100 * correct // total, from the fraction
// correct / total (0 when total is 0): 5700 of 10000 is 57, where
// int(100 * 0.57) would be 56.
int64_t WholePercent(double fraction, int64_t total);

// DescribeRuntime(device) plus "binary" and "schema_version" (1): the start
// of every record.
nlohmann::json NewRecord(absl::string_view binary, const c10::Device& device);

// Shows "label step/total rate/s ETA m:ss" on one rewritten line of `out`
// (stderr by default), at most about 4 times a second, only when `out` is a
// terminal; otherwise does nothing.
class Progress {
 public:
  Progress(std::string label, int64_t total, std::FILE* out = stderr);
  ~Progress();  // calls Finish()
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // Reports that `step` of `total` steps are done.
  void Update(int64_t step);
  // Draws the last state and ends the line; later calls do nothing.
  void Finish();
  // Whether output goes to a terminal.
  bool active() const { return active_; }

 private:
  void Draw(int64_t step);

  std::string label_;
  int64_t total_;
  std::FILE* out_;
  bool active_;
  bool drawn_ = false;
  int64_t step_ = 0;
  Stopwatch since_start_;
  Stopwatch since_draw_;
};

}  // namespace dlspeed

#endif  // DLSPEED_COMMON_RESULTS_H_
