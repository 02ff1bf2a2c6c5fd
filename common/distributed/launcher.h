// Starts N copies of the running program on this machine, one per rank, the
// way `torchrun --standalone --nproc-per-node N` does, and waits for them.
//
//   if (!env.has_value()) {  // not started by torchrun, srun or mpirun
//     dlspeed::LaunchOptions options;
//     options.nproc = 4;
//     return dlspeed::LaunchLocalWorkers(argc, argv, options);
//   }
//
// Each worker gets RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE,
// MASTER_ADDR=127.0.0.1 and a free MASTER_PORT (and OMP_NUM_THREADS, cores
// divided by workers, unless set), so RankEnvFromEnvironment finds them, and
// DLSPEED_LAUNCHER=<name>, which it reports as the launcher. When a
// worker fails, one line names its rank and how it ended; the others get
// `shutdown_timeout` to stop on their own, then SIGTERM, then SIGKILL, so no
// process is left behind. Workers die with the launcher (PR_SET_PDEATHSIG),
// and SIGINT/SIGTERM sent to the launcher are passed on to them.
#ifndef DLSPEED_COMMON_DISTRIBUTED_LAUNCHER_H_
#define DLSPEED_COMMON_DISTRIBUTED_LAUNCHER_H_

#include <chrono>
#include <string>

#include "absl/status/statusor.h"

namespace dlspeed {

struct LaunchOptions {
  int nproc = 1;
  // How long the other workers get to stop on their own once one has failed.
  std::chrono::milliseconds shutdown_timeout = std::chrono::seconds(30);
  std::string name;  // prefix of the launcher's lines (default: argv[0]'s base name)
};

// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0 and
// released), or an error if no socket could be bound.
absl::StatusOr<int> FindFreePort();

// Runs options.nproc copies of /proc/self/exe with argv and waits for all.
// Returns 0 when every worker exits 0; otherwise the first failure's exit
// status (128 + signal for a worker killed by a signal), or 1 when the
// workers could not be started (after one line saying why).
int LaunchLocalWorkers(int argc, char** argv, const LaunchOptions& options);

}  // namespace dlspeed

#endif  // DLSPEED_COMMON_DISTRIBUTED_LAUNCHER_H_
