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
// `path` must end in a file name ("newdir/" is InvalidArgument). A symbolic
// link at `path` is followed, through at most 40 links, even where its target
// does not exist yet: the file it names is written (and its folders made), the
// link stays. Concurrent appends from several processes each keep their line:
// they take turns holding an flock on the lock file ".NAME.lock" beside the
// file (NAME is the file's name), which is made on first use (writable by
// all) and left there. Where that lock cannot be had (another user's lock
// file on NFS, say) the append goes on without it and says so on stderr.
// An error names `path`.
absl::Status AppendLineAtomically(const std::string& path, absl::string_view line);

// Whether AppendLineAtomically(path, ...) can succeed, checked before work
// whose result it will write: OK for a regular file, or a new file in a
// folder that exists (or can be made) and takes new files, symbolic links
// followed as the append does. Else an error reading "PATH: why":
// InvalidArgument for a path with no file name ("newdir/"), PermissionDenied
// for another user's file in a sticky folder (mode 1777, like /tmp), which
// the append could not rename over, and FailedPrecondition otherwise.
// Makes nothing.
absl::Status CheckCanAppendLine(const std::string& path);

}  // namespace dlspeed

#endif  // DLSPEED_COMMON_ATOMIC_FILE_H_
