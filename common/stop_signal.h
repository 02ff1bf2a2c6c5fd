// Stopping a training run cleanly on SIGINT/SIGTERM: the handlers only record
// the signal; the training loop checks it at step boundaries, saves a
// checkpoint and exits with 128 + the signal.
//
//   dlspeed::InstallStopSignalHandlers();
//   ... after each step:
//   if (int signal = dlspeed::PendingStopSignal()) { SaveCheckpoint(); std::_Exit(128 + signal); }
//
// Multi-process runs agree on the step to stop at with StopAgreement
// (common/distributed/process_group.h).
#ifndef DLSPEED_COMMON_STOP_SIGNAL_H_
#define DLSPEED_COMMON_STOP_SIGNAL_H_

namespace dlspeed {

// A second SIGINT/SIGTERM this many seconds or more after the first ends the
// process at once (as without the handlers), for a run that is not at a step
// boundary: evaluating, saving, or waiting on other ranks. One sooner counts as
// the same request (a terminal's Ctrl-C and a launcher's copy of it).
inline constexpr int kStopAtOnceAfterSeconds = 2;

// Makes SIGINT and SIGTERM set the pending stop signal instead of ending the
// process (until a second one, kStopAtOnceAfterSeconds later).
void InstallStopSignalHandlers();

// The last SIGINT/SIGTERM received since InstallStopSignalHandlers, or 0.
int PendingStopSignal();

}  // namespace dlspeed

#endif  // DLSPEED_COMMON_STOP_SIGNAL_H_
