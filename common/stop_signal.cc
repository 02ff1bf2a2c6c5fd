#include "common/stop_signal.h"

#include <time.h>

#include <csignal>

namespace dlspeed {
namespace {

volatile std::sig_atomic_t g_stop_signal = 0;
volatile std::sig_atomic_t g_first_second = 0;  // CLOCK_MONOTONIC's second of the first signal

// Only async-signal-safe calls here: clock_gettime, signal, raise.
void RecordStopSignal(int signal) {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  const auto second = static_cast<std::sig_atomic_t>(now.tv_sec);
  if (g_stop_signal != 0 && second - g_first_second >= kStopAtOnceAfterSeconds) {
    // Asked again, later: the process ends now, as without a handler.
    std::signal(signal, SIG_DFL);
    std::raise(signal);
    return;
  }
  // A signal within a second or two of the first is the same request: a
  // terminal's Ctrl-C reaches every process of the group, and a launcher
  // passes it on once more.
  if (g_stop_signal == 0) g_first_second = second;
  g_stop_signal = signal;
}

}  // namespace

void InstallStopSignalHandlers() {
  std::signal(SIGINT, RecordStopSignal);
  std::signal(SIGTERM, RecordStopSignal);
}

int PendingStopSignal() { return g_stop_signal; }

}  // namespace dlspeed
