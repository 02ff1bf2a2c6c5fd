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
#include <iostream>
#include <system_error>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace dlspeed {
namespace {

// absl::ErrnoToStatus appends ": " and strerror(error) to the message.
absl::Status Error(const std::string& path, absl::string_view what, int error) {
  return absl::ErrnoToStatus(error, absl::StrCat("cannot write ", path, ": ", what));
}

namespace fs = std::filesystem;

// Whether `path` ends in a file name: "newdir/", ".", ".." and "" do not.
bool HasFileName(const fs::path& path) {
  const fs::path name = path.filename();
  return !name.empty() && name != "." && name != "..";
}

// The folder `target` is in ("." for a bare file name).
fs::path FolderOf(const fs::path& target) {
  return target.parent_path().empty() ? fs::path(".") : target.parent_path();
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
  const fs::path target(path);
  if (!HasFileName(target)) {
    return absl::InvalidArgumentError(absl::StrCat("cannot write '", path, "': not a file name"));
  }
  const fs::path parent = FolderOf(target);
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

// How many symbolic links a path may go through, as Linux allows (ELOOP).
constexpr int kMaxSymbolicLinks = 40;

// The file an append to `path` rewrites: the file a chain of symbolic links
// there names, followed by hand so that a link whose target does not exist
// yet still counts (std::filesystem::weakly_canonical leaves it, and the
// rename would replace the link); else `path` itself. A relative link target
// is taken from the link's folder; the result is not normalised, so that ".."
// after a linked folder means what it means to the kernel. An error's message
// is the reason alone: InvalidArgument for a link to a name that is no file,
// FailedPrecondition otherwise.
absl::StatusOr<fs::path> AppendTarget(const std::string& path) {
  fs::path current(path);
  for (int hops = 0;; ++hops) {
    struct stat info;
    // A missing file (or one that cannot be looked at) is not a link; the
    // write reports what is wrong with it.
    if (lstat(current.c_str(), &info) != 0 || !S_ISLNK(info.st_mode)) break;
    if (hops == kMaxSymbolicLinks) {
      return absl::FailedPreconditionError("too many levels of symbolic links");
    }
    std::error_code error;
    const fs::path next = fs::read_symlink(current, error);
    if (error) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot read the symbolic link ", current.string(), ": ", error.message()));
    }
    current = next.is_absolute() ? next : current.parent_path() / next;
  }
  if (!HasFileName(current)) {
    return absl::InvalidArgumentError(absl::StrCat("the symbolic link names '", current.string(), "', not a file"));
  }
  return current;
}

// The lock file of appends to `target`: ".NAME.lock" in the same folder.
fs::path LockFilePath(const fs::path& target) {
  return target.parent_path() / ("." + target.filename().string() + ".lock");
}

// An exclusive flock on the lock file beside a file, held while alive, so that
// appends from several processes take turns. The file itself cannot be locked:
// each append replaces it by a rename, and a later one would lock the new file
// while an earlier one still holds the old. The lock file is opened for
// writing because NFS emulates flock with fcntl locks, which need that.
class AppendLock {
 public:
  AppendLock() = default;
  ~AppendLock() {
    if (fd_ >= 0) close(fd_);  // releases the lock
  }
  AppendLock(const AppendLock&) = delete;
  AppendLock& operator=(const AppendLock&) = delete;

  // Waits for the lock of appends to `target`. Where it cannot be had
  // (another user's lock file that this user may not write, under NFS; a
  // folder that takes no new file, where the write fails anyway), the append
  // goes on without it, as appends did before there was a lock: a record is
  // worth more than the turn-taking. Says so on stderr, naming `path`, unless
  // the lock file is merely missing from a folder that takes no new file.
  void Acquire(const fs::path& target, const std::string& path) {
    const fs::path lock_path = LockFilePath(target);
    fd_ = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd_ >= 0) {
      // Whoever made it lets every user who may write the folder take turns
      // (the umask would keep others out, and an append would go unlocked).
      struct stat info;
      if (fstat(fd_, &info) == 0 && info.st_uid == geteuid() && (info.st_mode & 0777) != 0666) fchmod(fd_, 0666);
    } else if (errno == EACCES || errno == EPERM || errno == EROFS) {
      // A read-only descriptor still takes an flock on a local file system.
      fd_ = open(lock_path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd_ < 0 && errno == ENOENT) return;
    }
    const char* failed = fd_ < 0 ? "open" : nullptr;
    int error = fd_ < 0 ? errno : 0;
    while (fd_ >= 0 && flock(fd_, LOCK_EX) != 0) {
      if (errno != EINTR) {
        failed = "lock";
        error = errno;
        break;
      }
    }
    if (failed != nullptr) {
      std::cerr << "warning: appending to " << path << " without its lock (cannot " << failed << " "
                << lock_path.string() << ": " << std::strerror(error) << ")" << std::endl;
    }
  }

 private:
  int fd_ = -1;
};

}  // namespace

absl::Status AppendLineAtomically(const std::string& link_or_path, absl::string_view line) {
  if (!HasFileName(link_or_path)) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot write '", link_or_path, "': needs a file name, not only a folder"));
  }
  const absl::StatusOr<fs::path> target = AppendTarget(link_or_path);
  if (!target.ok()) {
    return absl::Status(target.status().code(),
                        absl::StrCat("cannot write ", link_or_path, ": ", target.status().message()));
  }
  const std::string path = target->string();
  // Appends from several processes (two binaries writing the same results
  // file) take turns: each reads the file, adds its line and renames its copy
  // over it while holding the lock, so none loses another's line.
  const fs::path parent = FolderOf(*target);
  std::error_code error;
  fs::create_directories(parent, error);
  if (error) return Error(path, absl::StrCat("cannot create directory ", parent.string()), error.value());
  AppendLock lock;
  lock.Acquire(*target, path);
  std::string contents;
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
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
  auto refuse = [&](absl::string_view why) {
    return absl::FailedPreconditionError(absl::StrCat(path, ": ", why));
  };
  if (!HasFileName(path)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": needs a file name, not only a folder"));
  }
  const absl::StatusOr<fs::path> followed = AppendTarget(path);
  if (!followed.ok()) {
    return absl::Status(followed.status().code(), absl::StrCat(path, ": ", followed.status().message()));
  }
  const fs::path& target = *followed;
  std::error_code error;
  const fs::file_status status = fs::status(target, error);
  const bool exists = fs::exists(status);
  if (exists && !fs::is_regular_file(status)) return refuse("not a regular file");
  const fs::path parent = FolderOf(target);
  // In a sticky folder (mode 1777, like /tmp) only the owner of a file, the
  // owner of the folder or root may rename over it.
  struct stat file_info, folder_info;
  if (exists && geteuid() != 0 && stat(target.c_str(), &file_info) == 0 &&
      stat(parent.c_str(), &folder_info) == 0 && (folder_info.st_mode & S_ISVTX) != 0 &&
      file_info.st_uid != geteuid() && folder_info.st_uid != geteuid()) {
    const std::string file = target.string() == path ? "" : absl::StrCat(target.string(), " is ");
    return absl::PermissionDeniedError(absl::StrCat(
        path, ": ", file, "owned by another user in a sticky folder: the record could not replace it"));
  }
  // An append writes a new copy beside the file and renames it over the old,
  // so the folder must take a new file; missing folders are made, so the
  // nearest existing one must. Trying it is the only sure test (permission
  // bits do not show a read-only file system, nor stop root). The walk stays
  // on the path as given, as the write does (a relative one from here).
  fs::path folder = parent;
  while (!fs::exists(folder, error)) {
    fs::path up = folder.parent_path();
    if (up.empty()) up = ".";
    if (up == folder) break;  // "/" or "."
    folder = up;
  }
  if (!fs::is_directory(folder, error)) return refuse(absl::StrCat(folder.string(), " is not a folder"));
  std::string probe = (folder / ".append-check.XXXXXX").string();
  const int fd = mkstemp(probe.data());
  if (fd < 0) return refuse(absl::StrCat("cannot write in ", folder.string(), ": ", std::strerror(errno)));
  close(fd);
  unlink(probe.c_str());
  return absl::OkStatus();
}

}  // namespace dlspeed
