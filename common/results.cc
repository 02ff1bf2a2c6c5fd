#include "common/results.h"

#include <unistd.h>

#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/atomic_file.h"
#include "common/device.h"

namespace dlspeed {
namespace {

constexpr double kRedrawSeconds = 0.25;

std::string FormatDuration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const int64_t total = static_cast<int64_t>(std::llround(seconds));
  if (total >= 3600) {
    return absl::StrFormat("%d:%02d:%02d", total / 3600, total / 60 % 60, total % 60);
  }
  return absl::StrFormat("%d:%02d", total / 60, total % 60);
}

}  // namespace

absl::Status AppendRecord(const std::string& path, const nlohmann::json& record) {
  if (!record.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot append to ", path, ": a record must be a JSON object"));
  }
  const std::string line =
      record.dump(/*indent=*/-1, /*indent_char=*/' ', /*ensure_ascii=*/false, nlohmann::json::error_handler_t::replace);
  absl::Status status = AppendLineAtomically(path, line);
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(status.message(), "; the record: ", line));
}

absl::Status CheckCanAppend(const std::string& flag, const std::string& path) {
  if (path.empty()) return absl::OkStatus();
  absl::Status status = CheckCanAppendLine(path);
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat("--", flag, "=", status.message()));
}

int64_t WholePercent(double fraction, int64_t total) {
  if (total <= 0) return 0;
  const int64_t correct = std::llround(fraction * static_cast<double>(total));
  return 100 * correct / total;
}

nlohmann::json NewRecord(absl::string_view binary, const c10::Device& device) {
  nlohmann::json record = DescribeRuntime(device);
  record["binary"] = std::string(binary);
  record["schema_version"] = 1;
  return record;
}

Progress::Progress(std::string label, int64_t total, std::FILE* out)
    : label_(std::move(label)),
      total_(total),
      out_(out),
      active_(out != nullptr && isatty(fileno(out))) {}

Progress::~Progress() { Finish(); }

void Progress::Update(int64_t step) {
  step_ = step;
  if (!active_) return;
  if (drawn_ && since_draw_.Seconds() < kRedrawSeconds && step < total_) return;
  Draw(step);
}

void Progress::Finish() {
  if (!active_) return;
  active_ = false;
  if (!drawn_) return;  // nothing shown, nothing to end
  Draw(step_);
  std::fputc('\n', out_);
  std::fflush(out_);
}

void Progress::Draw(int64_t step) {
  const double elapsed = since_start_.Seconds();
  const double rate = elapsed > 0 ? static_cast<double>(step) / elapsed : 0;
  std::string line = absl::StrFormat("\r%s %d/%d %.1f/s", label_, step, total_, rate);
  if (rate > 0 && step < total_) {
    absl::StrAppend(&line, " ETA ", FormatDuration(static_cast<double>(total_ - step) / rate));
  } else if (step >= total_) {
    absl::StrAppend(&line, " in ", FormatDuration(elapsed));
  }
  absl::StrAppend(&line, "\033[K");  // clear the rest of the old line
  std::fputs(line.c_str(), out_);
  std::fflush(out_);
  drawn_ = true;
  since_draw_.Restart();
}

}  // namespace dlspeed
