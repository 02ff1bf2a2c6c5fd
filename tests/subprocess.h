// Running a command from an end-to-end test: its exit code and its output
// (stdout and stderr together).
//
//   dlspeed::CommandResult run = dlspeed::RunCommand("resnet/resnet_single --epochs=1");
//   EXPECT_EQ(run.exit_code, 0) << run.output;
#ifndef DLSPEED_TESTS_SUBPROCESS_H_
#define DLSPEED_TESTS_SUBPROCESS_H_

#include <string>

namespace dlspeed {

struct CommandResult {
  int exit_code;       // -1 when the command could not run or was killed
  std::string output;  // stdout and stderr, interleaved
};

// Runs `command` through the shell and waits for it.
CommandResult RunCommand(const std::string& command);

// Number of '\n' in `text`: the one-line-error checks use it.
int CountLines(const std::string& text);

}  // namespace dlspeed

#endif  // DLSPEED_TESTS_SUBPROCESS_H_
