#include "common/stop_signal.h"

#include <csignal>

namespace dlspeed {
namespace {

volatile std::sig_atomic_t g_stop_signal = 0;

void RecordStopSignal(int signal) { g_stop_signal = signal; }

}  // namespace

void InstallStopSignalHandlers() {
  std::signal(SIGINT, RecordStopSignal);
  std::signal(SIGTERM, RecordStopSignal);
}

int PendingStopSignal() { return g_stop_signal; }

}  // namespace dlspeed
