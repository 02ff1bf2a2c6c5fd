#include "common/stop_signal.h"

#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

#include <gtest/gtest.h>

namespace dlspeed {
namespace {

// In a child process of its own: the handlers change how signals end it.
TEST(StopSignalTest, ASignalIsRecordedAndASecondOneLaterEndsTheProcess) {
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(pipe_fds[0]);
    InstallStopSignalHandlers();
    if (PendingStopSignal() != 0) _exit(10);
    std::raise(SIGINT);
    if (PendingStopSignal() != SIGINT) _exit(11);
    // At once again, as a launcher passes the terminal's Ctrl-C on: the same request.
    std::raise(SIGTERM);
    if (PendingStopSignal() != SIGTERM) _exit(12);
    // 1.3 s after the first: still the same request (the window is measured
    // in tenths of a second, not in whole seconds of the clock).
    usleep(1300000);
    std::raise(SIGINT);
    if (PendingStopSignal() != SIGINT) _exit(15);
    if (write(pipe_fds[1], "a", 1) != 1) _exit(13);
    sleep(kStopAtOnceAfterSeconds);
    std::raise(SIGINT);  // later: ends the process
    _exit(14);
  }
  close(pipe_fds[1]);
  char got = 0;
  EXPECT_EQ(read(pipe_fds[0], &got, 1), 1);
  EXPECT_EQ(got, 'a') << "the first two signals ended the child";
  close(pipe_fds[0]);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status)) << "exit code " << (WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  EXPECT_EQ(WTERMSIG(status), SIGINT);
}

}  // namespace
}  // namespace dlspeed
