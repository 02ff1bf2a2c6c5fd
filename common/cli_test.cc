#include "common/cli.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace dlspeed {
namespace {

std::string* helper_binary = nullptr;  // set by main() from argv[1]

struct Result {
  int exit_code = -1;
  std::string out, err;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

// Runs cli_test_main with `args`, capturing its exit code, stdout and stderr.
Result RunHelper(const std::vector<std::string>& args) {
  const std::string out_path = testing::TempDir() + "/cli_test.out";
  const std::string err_path = testing::TempDir() + "/cli_test.err";
  const pid_t pid = fork();
  if (pid == 0) {
    const int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(out, 1);
    dup2(err, 2);
    std::vector<char*> argv = {helper_binary->data()};
    for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  Result result;
  int status = 0;
  waitpid(pid, &status, 0);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.out = ReadFile(out_path);
  result.err = ReadFile(err_path);
  return result;
}

// Expects exit status 2 and exactly one stderr line naming `expected`.
void ExpectUsageError(const std::vector<std::string>& args, const std::string& expected) {
  const Result result = RunHelper(args);
  EXPECT_EQ(result.exit_code, 2) << result.err;
  EXPECT_EQ(result.out, "");
  EXPECT_EQ(result.err.rfind("cli_test_main: ", 0), 0u) << result.err;
  EXPECT_NE(result.err.find(expected), std::string::npos) << result.err;
  EXPECT_NE(result.err.find(" (see --help)\n"), std::string::npos) << result.err;
  EXPECT_EQ(result.err.find('\n'), result.err.size() - 1) << "not one line: " << result.err;
}

TEST(CliTest, GoodCommandLineReturnsPositionalArguments) {
  const Result result =
      RunHelper({"a", "--steps=5", "--name", "foo", "-verbose", "b", "--", "--not-a-flag"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, "steps=5 name=foo verbose=1 library_level=0\narg:a\narg:b\narg:--not-a-flag\n");
  EXPECT_EQ(result.err, "");
}

TEST(CliTest, NegativeAndExplicitBooleans) {
  EXPECT_EQ(RunHelper({"--verbose", "--noverbose"}).out, "steps=10 name=none verbose=0 library_level=0\n");
  EXPECT_EQ(RunHelper({"--verbose=true", "-steps", "7"}).out, "steps=7 name=none verbose=1 library_level=0\n");
}

TEST(CliTest, UnknownFlagExitsWithStatus2) {
  ExpectUsageError({"--bogus=1"}, "unknown flag '--bogus=1'");
  ExpectUsageError({"x", "-bogus"}, "unknown flag '-bogus'");
  ExpectUsageError({"--nosteps"}, "--nosteps");
}

TEST(CliTest, BadValueExitsWithStatus2) {
  ExpectUsageError({"--steps=abc"}, "invalid value 'abc' for --steps");
  ExpectUsageError({"--steps", "abc"}, "invalid value 'abc' for --steps");
  ExpectUsageError({"--verbose=maybe"}, "invalid value 'maybe' for --verbose");
  ExpectUsageError({"--noverbose=1"}, "--noverbose takes no value");
  ExpectUsageError({"--steps"}, "missing value for --steps");
}

TEST(CliTest, HelpKeepsAbseilBehaviour) {
  const Result result = RunHelper({"--help"});
  EXPECT_NE(result.exit_code, 2);
  EXPECT_NE(result.out.find("usage: cli_test_main"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("--steps"), std::string::npos) << result.out;
}

TEST(CliTest, HelpListsFlagsThatLibrariesDefine) {
  const Result result = RunHelper({"--help"});
  EXPECT_NE(result.out.find("--library_level"), std::string::npos) << result.out;
  // Abseil's own flags stay in --helpfull.
  EXPECT_EQ(result.out.find("--flagfile"), std::string::npos) << result.out;
  EXPECT_NE(RunHelper({"--library_level=3"}).out.find("library_level=3"), std::string::npos);
}

TEST(CliTest, IntChoicesFromPositionalArguments) {
  EXPECT_NE(RunHelper({"choice", "34"}).out.find("depth=34\n"), std::string::npos);
  ExpectUsageError({"choice", "33"}, "depth must be one of 18, 34, 50, not '33'");

  absl::StatusOr<int> gpus = ParseIntChoice("4", {1, 2, 4}, "gpus");
  ASSERT_TRUE(gpus.ok()) << gpus.status();
  EXPECT_EQ(*gpus, 4);
  EXPECT_FALSE(ParseIntChoice("four", {1, 2, 4}, "gpus").ok());
  EXPECT_FALSE(ParseIntChoice("", {1, 2, 4}, "gpus").ok());
  EXPECT_FALSE(ParseIntChoice("2x", {1, 2, 4}, "gpus").ok());
}

TEST(CliTest, ExitWithUsageErrorPrintsOneLine) {
  EXPECT_EXIT(ExitWithUsageError("bad\nthing"), testing::ExitedWithCode(2),
              ": bad thing \\(see --help\\)");
}

}  // namespace
}  // namespace dlspeed

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  if (argc < 2) {
    std::fprintf(stderr, "usage: cli_test <path to cli_test_main>\n");
    return 2;
  }
  dlspeed::helper_binary = new std::string(argv[1]);
  return RUN_ALL_TESTS();
}
