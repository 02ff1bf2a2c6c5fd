#include "common/distributed/launcher.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"

namespace dlspeed {
namespace {

volatile sig_atomic_t g_forward_signal = 0;

void RecordSignal(int signal) { g_forward_signal = signal; }

std::string BaseName(const char* path) {
  const char* slash = std::strrchr(path, '/');
  return slash != nullptr ? slash + 1 : path;
}

std::string DescribeExit(int status) {
  if (WIFSIGNALED(status)) {
    return absl::StrCat("was killed by signal ", WTERMSIG(status), " (", strsignal(WTERMSIG(status)), ")");
  }
  return absl::StrCat("exited with status ", WEXITSTATUS(status));
}

int ExitCodeOf(int status) { return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status); }

struct Worker {
  int rank;
  pid_t pid;
  bool running = true;
};

void SignalRunning(std::vector<Worker>& workers, int signal) {
  for (Worker& worker : workers) {
    if (worker.running) kill(worker.pid, signal);
  }
}

bool AnyRunning(const std::vector<Worker>& workers) {
  for (const Worker& worker : workers) {
    if (worker.running) return true;
  }
  return false;
}

}  // namespace

absl::StatusOr<int> FindFreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    const std::string error = std::strerror(errno);
    close(fd);
    return absl::InternalError(absl::StrCat("cannot find a free port on 127.0.0.1: ", error));
  }
  close(fd);
  return static_cast<int>(ntohs(address.sin_port));
}

int LaunchLocalWorkers(int argc, char** argv, const LaunchOptions& options) {
  const std::string name = options.name.empty() ? BaseName(argv[0]) : options.name;
  absl::StatusOr<int> port = FindFreePort();
  if (!port.ok()) {
    std::cerr << name << ": " << port.status().message() << std::endl;
    return 1;
  }
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const std::string threads = absl::StrCat(std::max(1u, cores / static_cast<unsigned>(options.nproc)));
  const bool set_threads = std::getenv("OMP_NUM_THREADS") == nullptr;

  std::vector<char*> args(argv, argv + argc);
  args.push_back(nullptr);
  struct sigaction forward {};
  forward.sa_handler = RecordSignal;
  sigemptyset(&forward.sa_mask);
  struct sigaction old_int {}, old_term {};
  sigaction(SIGINT, &forward, &old_int);
  sigaction(SIGTERM, &forward, &old_term);

  const pid_t launcher_pid = getpid();
  std::vector<Worker> workers;
  for (int rank = 0; rank < options.nproc; ++rank) {
    const pid_t pid = fork();
    if (pid < 0) {
      std::cerr << name << ": cannot start rank " << rank << ": " << std::strerror(errno) << std::endl;
      SignalRunning(workers, SIGKILL);
      for (Worker& worker : workers) waitpid(worker.pid, nullptr, 0);
      return 1;
    }
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != launcher_pid) _exit(1);  // the launcher is already gone
      sigaction(SIGINT, &old_int, nullptr);
      sigaction(SIGTERM, &old_term, nullptr);
      setenv("RANK", absl::StrCat(rank).c_str(), 1);
      setenv("LOCAL_RANK", absl::StrCat(rank).c_str(), 1);
      setenv("WORLD_SIZE", absl::StrCat(options.nproc).c_str(), 1);
      setenv("LOCAL_WORLD_SIZE", absl::StrCat(options.nproc).c_str(), 1);
      setenv("MASTER_ADDR", "127.0.0.1", 1);
      setenv("MASTER_PORT", absl::StrCat(*port).c_str(), 1);
      setenv("DLSPEED_LAUNCHER", name.c_str(), 1);  // so the workers can say who started them
      if (set_threads) setenv("OMP_NUM_THREADS", threads.c_str(), 1);
      execv("/proc/self/exe", args.data());
      std::cerr << name << ": cannot run /proc/self/exe: " << std::strerror(errno) << std::endl;
      _exit(127);
    }
    workers.push_back({rank, pid});
  }

  int exit_code = 0;
  bool failed = false;
  std::chrono::steady_clock::time_point terminate_at, kill_at;
  bool terminated = false, killed = false;
  while (AnyRunning(workers)) {
    if (g_forward_signal != 0) {
      SignalRunning(workers, g_forward_signal);
      if (!failed) {
        failed = true;
        exit_code = 128 + g_forward_signal;
        terminate_at = std::chrono::steady_clock::now() + options.shutdown_timeout;
        kill_at = terminate_at + std::chrono::seconds(5);
      }
      g_forward_signal = 0;
    }
    int status = 0;
    const pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid > 0) {
      for (Worker& worker : workers) {
        if (worker.pid != pid) continue;
        worker.running = false;
        const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        if (!ok && !failed) {
          failed = true;
          exit_code = ExitCodeOf(status);
          std::cerr << name << ": rank " << worker.rank << " (pid " << pid << ") " << DescribeExit(status)
                    << "; stopping the other ranks" << std::endl;
          terminate_at = std::chrono::steady_clock::now() + options.shutdown_timeout;
          kill_at = terminate_at + std::chrono::seconds(5);
        }
      }
      continue;
    }
    if (pid < 0 && errno != EINTR) break;
    const auto now = std::chrono::steady_clock::now();
    if (failed && !terminated && now >= terminate_at) {
      std::cerr << name << ": ranks still running after the failure; sending SIGTERM" << std::endl;
      SignalRunning(workers, SIGTERM);
      terminated = true;
    }
    if (failed && !killed && now >= kill_at) {
      SignalRunning(workers, SIGKILL);
      killed = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  return exit_code;
}

}  // namespace dlspeed
