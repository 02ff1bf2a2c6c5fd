#include "common/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
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

namespace {

// An exclusive flock on a directory, held while alive; none (and no error)
// where the file system does not support it.
class DirectoryLock {
 public:
  explicit DirectoryLock(const std::filesystem::path& dir) : fd_(open(dir.c_str(), O_RDONLY | O_DIRECTORY)) {
    if (fd_ < 0) return;
    while (flock(fd_, LOCK_EX) != 0 && errno == EINTR) {
    }
  }
  ~DirectoryLock() {
    if (fd_ >= 0) close(fd_);  // releases the lock
  }
  DirectoryLock(const DirectoryLock&) = delete;
  DirectoryLock& operator=(const DirectoryLock&) = delete;

 private:
  int fd_;
};

// The file an append to `path` rewrites: the one a symbolic link there names
// (the link stays), else `path`. Sets `error` when the link cannot be followed.
std::filesystem::path AppendTarget(const std::string& path, std::error_code& error) {
  error.clear();
  if (!std::filesystem::is_symlink(path, error)) {
    error.clear();  // a missing file is not an error here
    return path;
  }
  return std::filesystem::weakly_canonical(path, error);
}

}  // namespace

absl::Status AppendLineAtomically(const std::string& link_or_path, absl::string_view line) {
  namespace fs = std::filesystem;
  std::error_code error;
  const std::string path = AppendTarget(link_or_path, error).string();
  if (error) return Error(link_or_path, "cannot follow the symbolic link", error.value());
  // Appends from several processes (two binaries writing the same results
  // file) take turns: each reads the file, adds its line and renames its copy
  // over it while holding a lock on the folder, so none loses another's line.
  const fs::path parent = fs::path(path).parent_path().empty() ? fs::path(".") : fs::path(path).parent_path();
  fs::create_directories(parent, error);
  if (error) return Error(path, absl::StrCat("cannot create directory ", parent.string()), error.value());
  DirectoryLock lock(parent);
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

absl::Status CheckCanAppendLine(const std::string& path) {
  namespace fs = std::filesystem;
  auto refuse = [&](absl::string_view why) {
    return absl::FailedPreconditionError(absl::StrCat(path, ": ", why));
  };
  std::error_code error;
  const fs::path followed = AppendTarget(path, error);
  if (error) return refuse(absl::StrCat("cannot follow the symbolic link: ", error.message()));
  const fs::path target = fs::absolute(followed, error);
  if (error) return refuse(error.message());
  const fs::file_status status = fs::status(target, error);
  if (fs::exists(status) && !fs::is_regular_file(status)) return refuse("not a regular file");
  // An append writes a new copy beside the file and renames it over the old,
  // so the folder must take a new file; missing folders are made, so the
  // nearest existing one must. Trying it is the only sure test (permission
  // bits do not show a read-only file system, nor stop root).
  fs::path folder = target.parent_path();
  while (folder != folder.root_path() && !fs::exists(folder, error)) folder = folder.parent_path();
  if (!fs::is_directory(folder, error)) return refuse(absl::StrCat(folder.string(), " is not a folder"));
  std::string probe = (folder / ".append-check.XXXXXX").string();
  const int fd = mkstemp(probe.data());
  if (fd < 0) return refuse(absl::StrCat("cannot write in ", folder.string(), ": ", std::strerror(errno)));
  close(fd);
  unlink(probe.c_str());
  return absl::OkStatus();
}

}  // namespace dlspeed
