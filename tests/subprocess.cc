#include "tests/subprocess.h"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

namespace dlspeed {
namespace {

// Hides the GPUs from the command (see subprocess.h).
constexpr char kWithoutGpus[] = "export CUDA_VISIBLE_DEVICES=; ";

}  // namespace

CommandResult RunCommand(const std::string& command) {
  CommandResult result{-1, ""};
  FILE* pipe = popen((kWithoutGpus + command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) result.output.append(buffer, n);
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

CommandResult RunAndSignalOnOutput(const std::string& command, const std::string& text, int signal,
                                   int patience_s) {
  CommandResult result{-1, ""};
  int fds[2];
  if (pipe(fds) != 0) return result;
  const pid_t child = fork();
  if (child < 0) return result;
  if (child == 0) {
    setpgid(0, 0);
    dup2(fds[1], STDOUT_FILENO);
    dup2(fds[1], STDERR_FILENO);
    close(fds[0]);
    close(fds[1]);
    const std::string replaced = kWithoutGpus + ("exec " + command);  // no shell in between to take the signal
    execl("/bin/sh", "sh", "-c", replaced.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  setpgid(child, child);  // also here, so that the group exists before any kill below
  close(fds[1]);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(patience_s);
  bool signalled = false;
  char buffer[4096];
  while (true) {
    pollfd readable{fds[0], POLLIN, 0};
    if (poll(&readable, 1, 1000) > 0) {
      const ssize_t n = read(fds[0], buffer, sizeof(buffer));
      if (n <= 0) break;  // end of output: the group has closed the pipe
      result.output.append(buffer, n);
    }
    if (!signalled && result.output.find(text) != std::string::npos) {
      kill(-child, signal);
      signalled = true;
    } else if (!signalled && std::chrono::steady_clock::now() > deadline) {
      kill(-child, SIGKILL);
      result.output += "\n[RunAndSignalOnOutput: '" + text + "' did not show in " + std::to_string(patience_s) + " s]\n";
      signalled = true;
    }
  }
  close(fds[0]);
  int status = 0;
  if (waitpid(child, &status, 0) != child) return result;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

int CountLines(const std::string& text) { return static_cast<int>(std::count(text.begin(), text.end(), '\n')); }

}  // namespace dlspeed
