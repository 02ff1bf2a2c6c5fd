// Where this process sits in a multi-process job: its rank, the world size and
// the rendezvous address, read from the variables that torchrun, SLURM's srun
// or mpirun set, or chosen by our own launcher (launcher.h).
//
//   absl::StatusOr<std::optional<dlspeed::RankEnv>> env =
//       dlspeed::RankEnvFromEnvironment(getenv);
//   if (!env.ok()) return dlspeed::ReportError(env.status().message());
//   if (!env->has_value()) { /* not started by a launcher: start workers */ }
//
// Precedence: torchrun's RANK/WORLD_SIZE (also set by our launcher), then
// SLURM (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID; the tasks on this node from
// SLURM_NTASKS_PER_NODE or SLURM_[STEP_]TASKS_PER_NODE), then Open MPI
// (OMPI_COMM_WORLD_RANK, ...) and MPICH/Intel MPI (PMI_RANK, PMI_SIZE).
// SLURM's variables count only in a job step of several tasks (srun -n N with
// N > 1): an interactive `srun --pty bash` (one task) or a batch script (no
// step) sets SLURM_PROCID too, and a program started there launches its own.
// Under SLURM and MPI, MASTER_ADDR and MASTER_PORT still name the rendezvous;
// SLURM_LAUNCH_NODE_IPADDR stands in for MASTER_ADDR and 29500 for the port.
#ifndef DLSPEED_COMMON_DISTRIBUTED_RANK_ENV_H_
#define DLSPEED_COMMON_DISTRIBUTED_RANK_ENV_H_

#include <functional>
#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace dlspeed {

struct RankEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;         // index of this process on its machine (its GPU)
  int local_world_size = 1;   // processes on this machine
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  std::string launcher;       // "torchrun", "slurm", "mpi", or our launcher's name
};

// Reads a variable; returns nullptr when it is not set (getenv's contract).
using EnvLookup = std::function<const char*(const char*)>;

// The rank environment set by a launcher, nullopt when none is set, or
// InvalidArgument naming the variable that is malformed or inconsistent
// (a rank outside [0, world size), a local rank outside [0, local world
// size), a port outside 1..65535, ...).
absl::StatusOr<std::optional<RankEnv>> RankEnvFromEnvironment(const EnvLookup& lookup);

// Which of the `visible_gpus` GPUs this process sees is its own: LOCAL_RANK's
// when it sees one for each process on its machine; the first when SLURM gave
// each task its own GPUs and hid the others (srun --gpus-per-task, which sets
// SLURM_GPUS_PER_TASK). FailedPrecondition when it sees too few.
absl::StatusOr<int> OwnGpuIndex(const RankEnv& env, int visible_gpus, const EnvLookup& lookup);

}  // namespace dlspeed

#endif  // DLSPEED_COMMON_DISTRIBUTED_RANK_ENV_H_
