#include "common/results.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "common/testing/json_lines.h"
#include "common/testing/scratch_dir.h"

namespace dlspeed {
namespace {

namespace fs = std::filesystem;

TEST(ResultsTest, RecordsRoundTripAndAppendKeepsEarlierLines) {
  const fs::path path = fs::path(ScratchDir("results_test")) / "sub" / "results.jsonl";

  nlohmann::json first = NewRecord("results_test", c10::Device(c10::kCPU));
  EXPECT_EQ(first["binary"], "results_test");
  EXPECT_EQ(first["schema_version"], 1);
  EXPECT_EQ(first["device"], "cpu");
  EXPECT_TRUE(first.contains("libtorch_version"));
  EXPECT_TRUE(first.contains("git_revision"));
  first["epoch_seconds"] = {1.5, 1.25};
  ASSERT_TRUE(AppendRecord(path.string(), first).ok());

  nlohmann::json second = {{"binary", "other"}, {"note", "line\nbreak"}};
  ASSERT_TRUE(AppendRecord(path.string(), second).ok());

  const std::vector<nlohmann::json> records = ReadJsonLines(path.string());
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0], first);
  EXPECT_EQ(records[1], second);
}

TEST(ResultsTest, AFailedAppendCarriesTheRecordInItsMessage) {
  // /proc takes no new files, even from root.
  const absl::Status status = AppendRecord("/proc/self/results.jsonl", {{"binary", "x"}, {"seconds", 1.5}});
  ASSERT_FALSE(status.ok());
  EXPECT_NE(std::string(status.message()).find("cannot write /proc/self/results.jsonl"), std::string::npos) << status;
  EXPECT_NE(std::string(status.message()).find("; the record: {\"binary\":\"x\",\"seconds\":1.5}"), std::string::npos)
      << status;
}

TEST(ResultsTest, CheckCanAppendBeforeARun) {
  const fs::path dir = ScratchDir("results_check");
  EXPECT_TRUE(CheckCanAppend("results", "").ok());
  EXPECT_TRUE(CheckCanAppend("results", (dir / "new.jsonl").string()).ok());
  EXPECT_TRUE(CheckCanAppend("results", (dir / "missing" / "folders" / "new.jsonl").string()).ok());
  EXPECT_FALSE(fs::exists(dir / "missing")) << "the check makes nothing";
  ASSERT_TRUE(AppendRecord((dir / "old.jsonl").string(), {{"a", 1}}).ok());
  EXPECT_TRUE(CheckCanAppend("results", (dir / "old.jsonl").string()).ok());
  EXPECT_EQ(fs::directory_iterator(dir) == fs::directory_iterator(), false);
  for (const auto& entry : fs::directory_iterator(dir)) {
    EXPECT_EQ(entry.path().filename().string().find(".append-check"), std::string::npos) << "probe left behind";
  }

  fs::create_directories(dir / "a_folder");
  std::ofstream(dir / "a_file") << "x";
  const struct {
    std::string path, message;
  } refused[] = {
      {(dir / "a_folder").string(), "not a regular file"},
      {(dir / "a_file" / "r.jsonl").string(), "a_file is not a folder"},
      {"/proc/self/r.jsonl", "cannot write in /proc/self"},
  };
  for (const auto& c : refused) {
    const absl::Status status = CheckCanAppend("results", c.path);
    EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << c.path;
    EXPECT_NE(std::string(status.message()).find("--results=" + c.path + ": "), std::string::npos) << status;
    EXPECT_NE(std::string(status.message()).find(c.message), std::string::npos) << status;
  }
}

TEST(ResultsTest, WholePercentIsTheStudysIntegerDivision) {
  // int(100 * 0.57) is 56: the fraction 5700 / 10000 is a little under 0.57.
  EXPECT_EQ(static_cast<int>(100 * (5700.0 / 10000.0)), 56);
  EXPECT_EQ(WholePercent(5700.0 / 10000.0, 10000), 57);
  EXPECT_EQ(WholePercent(29.0 / 50.0, 50), 58);
  EXPECT_EQ(WholePercent(9999.0 / 10000.0, 10000), 99);  // floors, as 100 * correct // total
  EXPECT_EQ(WholePercent(1.0, 10000), 100);
  EXPECT_EQ(WholePercent(0.0, 10000), 0);
  EXPECT_EQ(WholePercent(0.0, 0), 0);
  for (int64_t total : {1, 7, 50, 640, 10000}) {
    for (int64_t correct = 0; correct <= total; ++correct) {
      ASSERT_EQ(WholePercent(static_cast<double>(correct) / static_cast<double>(total), total), 100 * correct / total)
          << correct << " of " << total;
    }
  }
}

TEST(ResultsTest, RejectsNonObjectsAndSurvivesBadUtf8) {
  const fs::path path = fs::path(testing::TempDir()) / "results_test_bad.jsonl";
  fs::remove(path);
  EXPECT_FALSE(AppendRecord(path.string(), nlohmann::json::array({1, 2})).ok());
  EXPECT_FALSE(fs::exists(path));
  ASSERT_TRUE(AppendRecord(path.string(), {{"name", "bad \xff byte"}}).ok());
  EXPECT_EQ(ReadJsonLines(path.string()).size(), 1u);
}

TEST(ResultsTest, ProgressIsQuietWhenNotATerminal) {
  std::FILE* file = std::tmpfile();
  ASSERT_NE(file, nullptr);
  {
    Progress progress("epoch 1", 100, file);
    EXPECT_FALSE(progress.active());
    for (int64_t step = 1; step <= 100; ++step) progress.Update(step);
    progress.Finish();
    progress.Finish();
  }
  EXPECT_EQ(std::ftell(file), 0);
  std::fclose(file);
  Progress on_stderr("stderr", 10);  // stderr is a file under bazel test
  on_stderr.Update(5);
}

TEST(ResultsTest, ProgressRewritesOneLineOnATerminal) {
  const int master = posix_openpt(O_RDWR | O_NOCTTY);
  if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0) {
    GTEST_SKIP() << "no pseudo-terminal here";
  }
  std::FILE* terminal = std::fopen(ptsname(master), "w");
  ASSERT_NE(terminal, nullptr);
  {
    Progress progress("train", 10, terminal);
    ASSERT_TRUE(progress.active());
    progress.Update(1);
    progress.Update(2);  // too soon: not drawn
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    progress.Update(3);
    progress.Finish();
  }
  std::fclose(terminal);
  std::string shown;
  char buffer[4096];
  fcntl(master, F_SETFL, O_NONBLOCK);
  ssize_t got;
  while ((got = read(master, buffer, sizeof(buffer))) > 0) shown.append(buffer, got);
  close(master);
  EXPECT_NE(shown.find("\rtrain 1/10"), std::string::npos) << shown;
  EXPECT_EQ(shown.find("train 2/10"), std::string::npos) << shown;
  EXPECT_NE(shown.find("\rtrain 3/10"), std::string::npos) << shown;
  EXPECT_NE(shown.find("ETA"), std::string::npos) << shown;
  EXPECT_EQ(shown.find('\n'), shown.size() - 1) << shown;  // only a final newline
}

}  // namespace
}  // namespace dlspeed
