// Running a command from an end-to-end test: its exit code and its output
// (stdout and stderr together). The command sees no GPU (CUDA_VISIBLE_DEVICES
// is emptied), so the end-to-end tests check the same CPU paths and the same
// "no GPU" errors on every host; tools/gpu_check.sh runs the binaries on GPUs.
//
//   dlspeed::CommandResult run = dlspeed::RunCommand("resnet/resnet_single --epochs=1");
//   EXPECT_EQ(run.exit_code, 0) << run.output;
//
//   // Ctrl-C once training has started, however long the start took:
//   run = dlspeed::RunAndSignalOnOutput("resnet/resnet_single", "Non-mixed,18", SIGINT);
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

// Runs `command`, a simple command (the shell execs it), in its own process group and sends
// `signal` to the whole group (as a terminal's Ctrl-C does) once its output
// contains `text`, then waits for it. A timed signal would race the start-up
// on a loaded machine. When `text` has not shown after `patience_s` seconds,
// the group is killed and exit_code is -1; a command killed by a signal (not
// exiting from a handler) also gives -1.
CommandResult RunAndSignalOnOutput(const std::string& command, const std::string& text, int signal,
                                   int patience_s = 300);

// Number of '\n' in `text`: the one-line-error checks use it.
int CountLines(const std::string& text);

}  // namespace dlspeed

#endif  // DLSPEED_TESTS_SUBPROCESS_H_
