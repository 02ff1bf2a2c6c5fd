#include "common/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"

namespace dlspeed {
namespace {

// absl::ErrnoToStatus appends ": " and strerror(error) to the message.
absl::Status Error(const std::string& path, absl::string_view what, int error) {
  return absl::ErrnoToStatus(error, absl::StrCat("cannot write ", path, ": ", what));
}

// Writes all of `contents` to `fd`, retrying short writes; returns errno or 0.
int WriteAll(int fd, absl::string_view contents) {
  while (!contents.empty()) {
    const ssize_t written = write(fd, contents.data(), contents.size());
    if (written < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    contents.remove_prefix(static_cast<size_t>(written));
  }
  return 0;
}

}  // namespace

absl::Status WriteFileAtomically(const std::string& path, absl::string_view contents) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  if (path.empty() || !target.has_filename()) {
    return absl::InvalidArgumentError(absl::StrCat("cannot write '", path, "': not a file name"));
  }
  const fs::path parent = target.parent_path().empty() ? fs::path(".") : target.parent_path();
  std::error_code error;
  fs::create_directories(parent, error);
  if (error) {
    return Error(path, absl::StrCat("cannot create directory ", parent.string()), error.value());
  }

  std::string temp = (parent / ("." + target.filename().string() + ".tmp.XXXXXX")).string();
  const int fd = mkstemp(temp.data());
  if (fd < 0) return Error(path, "cannot create a temporary file", errno);
  struct stat old_stat;
  const mode_t mode = stat(path.c_str(), &old_stat) == 0 ? (old_stat.st_mode & 07777) : 0644;

  int failure = WriteAll(fd, contents);
  absl::string_view step = "write failed";
  if (failure == 0 && fchmod(fd, mode) != 0) failure = errno, step = "chmod failed";
  if (failure == 0 && fsync(fd) != 0) failure = errno, step = "fsync failed";
  if (close(fd) != 0 && failure == 0) failure = errno, step = "close failed";
  if (failure == 0 && std::rename(temp.c_str(), path.c_str()) != 0) {
    failure = errno, step = "rename failed";
  }
  if (failure != 0) {
    unlink(temp.c_str());
    return Error(path, step, failure);
  }
  // Make the rename itself durable.
  const int dir = open(parent.c_str(), O_RDONLY | O_DIRECTORY);
  if (dir >= 0) {
    fsync(dir);
    close(dir);
  }
  return absl::OkStatus();
}

absl::Status AppendLineAtomically(const std::string& path, absl::string_view line) {
  std::string contents;
  const int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0 && errno != ENOENT) return Error(path, "cannot read the existing file", errno);
  if (fd >= 0) {
    char buffer[1 << 16];
    ssize_t got;
    while ((got = read(fd, buffer, sizeof(buffer))) != 0) {
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) {
        const int error = errno;
        close(fd);
        return Error(path, "cannot read the existing file", error);
      }
      contents.append(buffer, static_cast<size_t>(got));
    }
    close(fd);
  }
  if (!contents.empty() && contents.back() != '\n') contents += '\n';
  absl::StrAppend(&contents, line, "\n");
  return WriteFileAtomically(path, contents);
}

}  // namespace dlspeed
