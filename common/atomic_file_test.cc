#include "common/atomic_file.h"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "common/testing/scratch_dir.h"

namespace dlspeed {
namespace {

namespace fs = std::filesystem;

// A fresh, empty directory for one test.
fs::path FreshDir(const std::string& name) {
  return ScratchDir("atomic_file_test_" + name);
}

std::string Read(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

std::vector<std::string> Names(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename());
  return names;
}

TEST(AtomicFileTest, WritesNewFileAndCreatesParents) {
  const fs::path dir = FreshDir("new");
  const fs::path path = dir / "a" / "b" / "out.bin";
  const std::string contents("binary\0data\n", 12);
  ASSERT_TRUE(WriteFileAtomically(path.string(), contents).ok());
  EXPECT_EQ(Read(path), contents);
  EXPECT_EQ(Names(path.parent_path()), std::vector<std::string>{"out.bin"});  // no temp left
  EXPECT_EQ(fs::status(path).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                fs::perms::others_read);
}

TEST(AtomicFileTest, ReplacesExistingFileKeepingItsMode) {
  const fs::path path = FreshDir("replace") / "out.txt";
  ASSERT_TRUE(WriteFileAtomically(path.string(), "a much longer old contents").ok());
  ASSERT_EQ(chmod(path.c_str(), 0600), 0);
  ASSERT_TRUE(WriteFileAtomically(path.string(), "new").ok());
  EXPECT_EQ(Read(path), "new");
  EXPECT_EQ(fs::status(path).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  ASSERT_TRUE(WriteFileAtomically(path.string(), "").ok());
  EXPECT_EQ(Read(path), "");
}

TEST(AtomicFileTest, FailsNamingPathWhenParentCannotBeCreated) {
  const fs::path dir = FreshDir("noparent");
  ASSERT_TRUE(WriteFileAtomically((dir / "file").string(), "x").ok());
  const std::string path = (dir / "file" / "sub" / "out.txt").string();  // under a regular file
  const absl::Status status = WriteFileAtomically(path, "contents");
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find(path), std::string::npos) << status;
  EXPECT_EQ(Read(dir / "file"), "x");
  EXPECT_FALSE(WriteFileAtomically("", "x").ok());
}

TEST(AtomicFileTest, FailedRenameRemovesTemporaryFile) {
  const fs::path dir = FreshDir("rename");
  const fs::path target = dir / "target";
  fs::create_directories(target / "inside");  // a non-empty directory cannot be replaced
  const absl::Status status = WriteFileAtomically(target.string(), "contents");
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find(target.string()), std::string::npos) << status;
  EXPECT_EQ(Names(dir), std::vector<std::string>{"target"});
  EXPECT_TRUE(fs::is_directory(target / "inside"));
}

TEST(AtomicFileTest, FailedWriteKeepsOldFileAndRemovesTemporary) {
  const fs::path dir = FreshDir("full");
  const fs::path path = dir / "out.txt";
  ASSERT_TRUE(WriteFileAtomically(path.string(), "old").ok());
  // Limit file sizes to 16 bytes so that writing 1000 fails with EFBIG.
  struct rlimit saved;
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &saved), 0);
  struct rlimit small = saved;
  small.rlim_cur = 16;
  sighandler_t old_handler = signal(SIGXFSZ, SIG_IGN);
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  const absl::Status status = WriteFileAtomically(path.string(), std::string(1000, 'x'));
  setrlimit(RLIMIT_FSIZE, &saved);
  signal(SIGXFSZ, old_handler);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find(path.string()), std::string::npos) << status;
  EXPECT_EQ(Read(path), "old");
  EXPECT_EQ(Names(dir), std::vector<std::string>{"out.txt"});
}

// A writer SIGKILLed while its temporary file exists (the write or fsync of
// 64 MB takes a while) leaves the old file whole; only the temporary remains.
TEST(AtomicFileTest, WriterKilledMidWriteLeavesTheOldFile) {
  const fs::path dir = FreshDir("killed");
  const fs::path path = dir / "model.pth";
  const std::string big(64 << 20, 'n');
  int killed_mid_write = 0;
  for (int attempt = 0; attempt < 10 && killed_mid_write == 0; ++attempt) {
    ASSERT_TRUE(WriteFileAtomically(path.string(), "old").ok());
    for (const std::string& name : Names(dir)) {
      if (name != "model.pth") fs::remove(dir / name);
    }
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) _exit(WriteFileAtomically(path.string(), big).ok() ? 0 : 1);
    bool temp_seen = false;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!temp_seen && std::chrono::steady_clock::now() < deadline) {
      temp_seen = Names(dir).size() > 1;
      if (!temp_seen) std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    kill(child, SIGKILL);
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    const std::string now = Read(path);
    ASSERT_TRUE(now == "old" || now == big) << "torn file of " << now.size() << " bytes";
    if (temp_seen && WIFSIGNALED(status) && now == "old") ++killed_mid_write;
  }
  EXPECT_GT(killed_mid_write, 0) << "no attempt caught the writer before its rename";
}

TEST(AtomicFileTest, AppendLineKeepsEarlierLines) {
  const fs::path path = FreshDir("append") / "sub" / "log.jsonl";
  ASSERT_TRUE(AppendLineAtomically(path.string(), "first").ok());
  ASSERT_TRUE(AppendLineAtomically(path.string(), "second").ok());
  EXPECT_EQ(Read(path), "first\nsecond\n");
  ASSERT_TRUE(WriteFileAtomically(path.string(), "no newline").ok());
  ASSERT_TRUE(AppendLineAtomically(path.string(), "third").ok());
  EXPECT_EQ(Read(path), "no newline\nthird\n");
}

TEST(AtomicFileTest, AppendFollowsASymbolicLink) {
  const fs::path dir = FreshDir("append_link");
  fs::create_directories(dir / "shared");
  ASSERT_TRUE(AppendLineAtomically((dir / "shared" / "all.jsonl").string(), "first").ok());
  fs::create_symlink(fs::path("shared") / "all.jsonl", dir / "results.jsonl");
  ASSERT_TRUE(AppendLineAtomically((dir / "results.jsonl").string(), "second").ok());
  EXPECT_TRUE(fs::is_symlink(dir / "results.jsonl"));
  EXPECT_EQ(Read(dir / "shared" / "all.jsonl"), "first\nsecond\n");
}

// `ln -s shared/all.jsonl results.jsonl` before shared/ exists: the first
// append makes the link's target (and its folder) and leaves the link.
TEST(AtomicFileTest, AppendCreatesTheTargetOfADanglingLink) {
  const fs::path dir = FreshDir("append_dangling");
  const fs::path link = dir / "results.jsonl";
  fs::create_symlink(fs::path("shared") / "all.jsonl", link);
  EXPECT_TRUE(CheckCanAppendLine(link.string()).ok()) << CheckCanAppendLine(link.string());
  EXPECT_FALSE(fs::exists(dir / "shared")) << "the check makes nothing";
  ASSERT_TRUE(AppendLineAtomically(link.string(), "first").ok());
  ASSERT_TRUE(AppendLineAtomically(link.string(), "second").ok());
  EXPECT_TRUE(fs::is_symlink(link));
  EXPECT_EQ(fs::read_symlink(link), fs::path("shared") / "all.jsonl");
  EXPECT_EQ(Read(dir / "shared" / "all.jsonl"), "first\nsecond\n");
  // The lock file lies beside the target, not beside the link.
  EXPECT_TRUE(fs::exists(dir / "shared" / ".all.jsonl.lock"));
  EXPECT_FALSE(fs::exists(dir / ".results.jsonl.lock"));
}

TEST(AtomicFileTest, AppendFollowsFortyLinksButNoMore) {
  const fs::path dir = FreshDir("append_link_chain");
  // link0 -> link1 -> ... -> link40 -> target.jsonl: 41 links in all.
  constexpr int kLinks = 41;
  for (int i = 0; i < kLinks; ++i) {
    const std::string next = i + 1 < kLinks ? "link" + std::to_string(i + 1) : "target.jsonl";
    fs::create_symlink(next, dir / ("link" + std::to_string(i)));
  }
  const std::string forty = (dir / "link1").string();  // 40 links to the target
  ASSERT_TRUE(CheckCanAppendLine(forty).ok()) << CheckCanAppendLine(forty);
  ASSERT_TRUE(AppendLineAtomically(forty, "kept").ok());
  EXPECT_EQ(Read(dir / "target.jsonl"), "kept\n");
  const std::string too_many = (dir / "link0").string();
  for (const absl::Status& status : {AppendLineAtomically(too_many, "x"), CheckCanAppendLine(too_many)}) {
    ASSERT_FALSE(status.ok());
    EXPECT_NE(status.message().find(too_many + ": too many levels of symbolic links"), std::string::npos) << status;
  }
  fs::create_symlink("loop_b", dir / "loop_a");
  fs::create_symlink("loop_a", dir / "loop_b");
  const absl::Status loop = AppendLineAtomically((dir / "loop_a").string(), "x");
  EXPECT_NE(loop.message().find("too many levels of symbolic links"), std::string::npos) << loop;
  EXPECT_TRUE(fs::is_symlink(dir / "loop_a"));
  EXPECT_EQ(Read(dir / "target.jsonl"), "kept\n");
}

TEST(AtomicFileTest, APathWithoutAFileNameIsRefused) {
  const fs::path dir = FreshDir("no_file_name");
  fs::create_directories(dir / "existing");
  for (const std::string& path : {(dir / "newdir").string() + "/", (dir / "existing").string() + "/", std::string()}) {
    const absl::Status check = CheckCanAppendLine(path);
    EXPECT_EQ(check.code(), absl::StatusCode::kInvalidArgument) << path << ": " << check;
    EXPECT_NE(check.message().find(path + ": needs a file name"), std::string::npos) << check;
    const absl::Status append = AppendLineAtomically(path, "x");
    EXPECT_EQ(append.code(), absl::StatusCode::kInvalidArgument) << path << ": " << append;
    EXPECT_NE(append.message().find("'" + path + "': needs a file name"), std::string::npos) << append;
  }
  EXPECT_FALSE(fs::exists(dir / "newdir"));
  EXPECT_TRUE(fs::is_empty(dir / "existing"));
}

// The lock is the lock file beside the target: while another process holds
// it, an append waits.
TEST(AtomicFileTest, AppendWaitsForTheLockFile) {
  const fs::path dir = FreshDir("append_lock");
  const fs::path path = dir / "log.jsonl";
  ASSERT_TRUE(AppendLineAtomically(path.string(), "first").ok());
  const int lock = open((dir / ".log.jsonl.lock").c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(lock, 0);
  ASSERT_EQ(flock(lock, LOCK_EX), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(lock);  // its copy would keep the parent's lock held (flock goes with the open file)
    _exit(AppendLineAtomically(path.string(), "second").ok() ? 0 : 1);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(Read(path), "first\n") << "the append did not wait for the lock";
  close(lock);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(Read(path), "first\nsecond\n");
}

// A lock that cannot be taken is an error naming the path, not an append
// made without it.
// A lock that cannot be had (here a folder in the lock file's place; another
// user's lock file under NFS) costs the turn-taking, not the record.
TEST(AtomicFileTest, AppendGoesOnWithAWarningWhenTheLockFileCannotBeOpened) {
  const fs::path dir = FreshDir("append_bad_lock");
  const fs::path path = dir / "log.jsonl";
  ASSERT_TRUE(WriteFileAtomically(path.string(), "old\n").ok());
  fs::create_directories(dir / ".log.jsonl.lock");  // a folder cannot be opened for writing
  ::testing::internal::CaptureStderr();
  const absl::Status status = AppendLineAtomically(path.string(), "new");
  const std::string warning = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(Read(path), "old\nnew\n");
  EXPECT_NE(warning.find("warning: appending to " + path.string() + " without its lock (cannot open"),
            std::string::npos)
      << warning;
}

// Every user who may write the folder can take the lock, whatever the umask
// of the one who made it.
TEST(AtomicFileTest, TheLockFileIsWritableByAll) {
  const fs::path dir = FreshDir("lock_mode");
  const mode_t old_umask = umask(077);
  const absl::Status status = AppendLineAtomically((dir / "r.jsonl").string(), "x");
  umask(old_umask);
  ASSERT_TRUE(status.ok()) << status;
  struct stat info;
  ASSERT_EQ(stat((dir / ".r.jsonl.lock").c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0666);
}

// Only the owner of a file, the owner of its folder and root may rename over
// it in a sticky folder (mode 1777, like /tmp). The tests run as root, which
// the rule does not stop, so a child process becomes nobody (uid 65534) to
// check; skipped where the tests do not run as root (no file of another user
// can be made) or the child cannot change its user.
TEST(AtomicFileTest, CheckRefusesAnotherUsersFileInAStickyFolder) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to make a file owned by another user";
  const fs::path dir = FreshDir("sticky");
  const fs::path sticky = dir / "sticky";
  fs::create_directories(sticky);
  ASSERT_EQ(chmod(sticky.c_str(), 01777), 0);
  ASSERT_TRUE(AppendLineAtomically((sticky / "roots.jsonl").string(), "root's").ok());
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The scratch folder's parents may not let nobody in: the paths are taken
    // from inside it.
    close(pipe_fds[0]);
    if (chdir(dir.c_str()) != 0 || setgroups(0, nullptr) != 0 || setgid(65534) != 0 || setuid(65534) != 0) _exit(77);
    const absl::Status theirs = CheckCanAppendLine("sticky/roots.jsonl");
    const absl::Status append = AppendLineAtomically("sticky/roots.jsonl", "nobody's");
    const absl::Status mine = CheckCanAppendLine("sticky/nobodys.jsonl");
    const absl::Status mine_append = AppendLineAtomically("sticky/nobodys.jsonl", "nobody's");
    const std::string report = absl::StatusCodeToString(theirs.code()) + "\n" + std::string(theirs.message()) +
                               "\n" + (append.ok() ? "1" : "0") + (mine.ok() ? "1" : "0") +
                               (mine_append.ok() ? "1" : "0") + "\n";
    _exit(write(pipe_fds[1], report.data(), report.size()) == static_cast<ssize_t>(report.size()) ? 0 : 1);
  }
  close(pipe_fds[1]);
  std::string report;
  char buffer[4096];
  for (ssize_t got; (got = read(pipe_fds[0], buffer, sizeof(buffer))) > 0;) report.append(buffer, got);
  close(pipe_fds[0]);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  if (WEXITSTATUS(status) == 77) GTEST_SKIP() << "cannot become nobody here";
  ASSERT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(report,
            "PERMISSION_DENIED\n"
            "sticky/roots.jsonl: owned by another user in a sticky folder: the record could not replace it\n"
            "011\n")  // the append over root's file fails; nobody's own file is fine
      << report;
  EXPECT_EQ(Read(sticky / "roots.jsonl"), "root's\n");
}

TEST(AtomicFileTest, ConcurrentAppendsFromSeveralProcessesKeepEveryLine) {
  const fs::path path = FreshDir("append_concurrent") / "log.jsonl";
  constexpr int kProcesses = 4, kLines = 25;
  std::vector<pid_t> children;
  for (int p = 0; p < kProcesses; ++p) {
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      for (int i = 0; i < kLines; ++i) {
        if (!AppendLineAtomically(path.string(), std::to_string(p) + ":" + std::to_string(i)).ok()) _exit(1);
      }
      _exit(0);
    }
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  std::istringstream lines(Read(path));
  std::set<std::string> seen;
  for (std::string line; std::getline(lines, line);) seen.insert(line);
  EXPECT_EQ(seen.size(), static_cast<size_t>(kProcesses * kLines)) << "appends were lost";
}

}  // namespace
}  // namespace dlspeed
