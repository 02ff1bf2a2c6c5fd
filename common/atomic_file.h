// Crash-safe file writes: the new contents go to a temporary file in the same
// directory, which is flushed to disk and renamed over the target, so readers
// see either the old file or the complete new one, never a torn write.
//
// Example:
//   absl::Status status = dlspeed::WriteFileAtomically("models/resnet18.pt", bytes);
//   if (!status.ok()) return status;  // "cannot write models/resnet18.pt: ..."
//   status = dlspeed::AppendLineAtomically("results.jsonl", record.dump());
#ifndef DLSPEED_COMMON_ATOMIC_FILE_H_
#define DLSPEED_COMMON_ATOMIC_FILE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace dlspeed {

// Replaces `path` with `contents` atomically, creating missing parent
// directories. A new file gets mode 0644, a replaced one keeps its mode. On
// failure the old file is intact, no temporary file is left, and the error
// names `path`. Note that Debian's absl::string_view does not convert from
// std::string_view: pass absl::string_view(data, size).
absl::Status WriteFileAtomically(const std::string& path, absl::string_view contents);

// Rewrites `path` atomically as its existing contents (if any) followed by
// `line` and '\n' (and a '\n' before, if the old contents lacked a final one).
// A symbolic link at `path` is followed (the file it names is rewritten).
// Concurrent appends from several processes on this machine each keep their
// line: they hold an flock on the folder in turn (where the file system has
// flock; NFS may not honour it across machines).
absl::Status AppendLineAtomically(const std::string& path, absl::string_view line);

// Whether AppendLineAtomically(path, ...) can succeed, checked before work
// whose result it will write: OK for a writable regular file, or a new file
// in a folder that exists (or can be made) and takes new files; else
// FailedPrecondition reading "PATH: why". Makes nothing.
absl::Status CheckCanAppendLine(const std::string& path);

}  // namespace dlspeed

#endif  // DLSPEED_COMMON_ATOMIC_FILE_H_
