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

// Makes SIGINT and SIGTERM set the pending stop signal instead of ending the process.
void InstallStopSignalHandlers();

// The last SIGINT/SIGTERM received since InstallStopSignalHandlers, or 0.
int PendingStopSignal();

}  // namespace dlspeed

#endif  // DLSPEED_COMMON_STOP_SIGNAL_H_
