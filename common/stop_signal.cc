#include "common/stop_signal.h"

#include <time.h>

#include <csignal>
#include <cstdint>

namespace dlspeed {
namespace {

volatile std::sig_atomic_t g_stop_signal = 0;
timespec g_installed{};  // CLOCK_MONOTONIC when the handlers were installed: set before any signal
volatile std::sig_atomic_t g_first_tenth = 0;  // the first signal's tenth of a second since then

// Only async-signal-safe calls here: clock_gettime, signal, raise.
void RecordStopSignal(int signal) {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  const int64_t nanoseconds = (static_cast<int64_t>(now.tv_sec) - g_installed.tv_sec) * 1000000000 +
                              (now.tv_nsec - g_installed.tv_nsec);
  const auto tenth = static_cast<std::sig_atomic_t>(nanoseconds / 100000000);
  if (g_stop_signal != 0 && tenth - g_first_tenth >= 10 * kStopAtOnceAfterSeconds) {
    // Asked again, later: the process ends now, as without a handler.
    std::signal(signal, SIG_DFL);
    std::raise(signal);
    return;
  }
  // A signal within a second or two of the first is the same request: a
  // terminal's Ctrl-C reaches every process of the group, and a launcher
  // passes it on once more.
  if (g_stop_signal == 0) g_first_tenth = tenth;
  g_stop_signal = signal;
}

}  // namespace

void InstallStopSignalHandlers() {
  clock_gettime(CLOCK_MONOTONIC, &g_installed);
  std::signal(SIGINT, RecordStopSignal);
  std::signal(SIGTERM, RecordStopSignal);
}

int PendingStopSignal() { return g_stop_signal; }

}  // namespace dlspeed
