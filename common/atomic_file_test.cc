#include "common/atomic_file.h"

#include <signal.h>
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
