#include "common/distributed/rank_env.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace dlspeed {
namespace {

// Reads an integer variable; nullopt when unset, an error when malformed.
absl::StatusOr<std::optional<int>> ReadInt(const EnvLookup& lookup, const char* name) {
  const char* text = lookup(name);
  if (text == nullptr || *text == '\0') return std::optional<int>();
  int value = 0;
  if (!absl::SimpleAtoi(text, &value)) {
    return absl::InvalidArgumentError(absl::StrCat(name, "='", text, "' is not an integer"));
  }
  return std::optional<int>(value);
}

struct Names {
  const char* launcher;
  const char* rank;
  const char* world_size;
  const char* local_rank;
  const char* local_world_size;
};

constexpr Names kLaunchers[] = {
    {"torchrun", "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"},
    {"slurm", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", "SLURM_NTASKS_PER_NODE"},
    {"mpi", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK",
     "OMPI_COMM_WORLD_LOCAL_SIZE"},
    {"mpi", "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID", "MPI_LOCALNRANKS"},
};

// Whether SLURM's variables describe a job step of several tasks that this
// process is one of. An interactive shell (`srun --pty bash`) is a step of
// one task, and a batch script is not a step at all, yet both carry
// SLURM_PROCID=0: a program started from them is not one of several.
bool InSlurmStepOfSeveralTasks(const EnvLookup& lookup) {
  const char* step = lookup("SLURM_STEP_ID");
  if (step == nullptr || *step == '\0') step = lookup("SLURM_STEPID");
  const char* tasks = lookup("SLURM_NTASKS");
  int count = 0;
  return step != nullptr && *step != '\0' && tasks != nullptr && absl::SimpleAtoi(tasks, &count) && count > 1;
}

// The tasks SLURM placed on node `node` (SLURM_NODEID), from a list such as
// SLURM_TASKS_PER_NODE's "4(x2),3": 4 on each of the first two nodes, then 3.
absl::StatusOr<std::optional<int>> SlurmTasksOnNode(const EnvLookup& lookup, int node) {
  for (const char* name : {"SLURM_STEP_TASKS_PER_NODE", "SLURM_TASKS_PER_NODE"}) {
    const char* text = lookup(name);
    if (text == nullptr || *text == '\0') continue;
    int first_node = 0;
    for (absl::string_view item : absl::StrSplit(text, ',')) {
      int tasks = 0, repeat = 1;
      const size_t open = item.find("(x");
      const bool parsed = open == absl::string_view::npos
                              ? absl::SimpleAtoi(item, &tasks)
                              : absl::EndsWith(item, ")") && absl::SimpleAtoi(item.substr(0, open), &tasks) &&
                                    absl::SimpleAtoi(item.substr(open + 2, item.size() - open - 3), &repeat);
      if (!parsed || tasks < 1 || repeat < 1) {
        return absl::InvalidArgumentError(absl::StrCat(name, "='", text, "' is not a list such as 4(x2),3"));
      }
      if (node < first_node + repeat) return std::optional<int>(tasks);
      first_node += repeat;
    }
    return absl::InvalidArgumentError(absl::StrCat(name, "='", text, "' lists no node ", node, " (SLURM_NODEID)"));
  }
  return std::optional<int>();
}

}  // namespace

absl::StatusOr<std::optional<RankEnv>> RankEnvFromEnvironment(const EnvLookup& lookup) {
  for (const Names& names : kLaunchers) {
    const bool slurm = std::string(names.launcher) == "slurm";
    if (slurm && !InSlurmStepOfSeveralTasks(lookup)) continue;
    absl::StatusOr<std::optional<int>> rank = ReadInt(lookup, names.rank);
    if (!rank.ok()) return rank.status();
    if (!rank->has_value()) continue;
    absl::StatusOr<std::optional<int>> world_size = ReadInt(lookup, names.world_size);
    if (!world_size.ok()) return world_size.status();
    if (!world_size->has_value()) {
      return absl::InvalidArgumentError(absl::StrCat(names.rank, " is set but ", names.world_size, " is not"));
    }
    RankEnv env;
    env.launcher = names.launcher;
    if (const char* ours = lookup("DLSPEED_LAUNCHER"); ours != nullptr && *ours != '\0' && env.launcher == "torchrun") {
      env.launcher = ours;
    }
    env.rank = **rank;
    env.world_size = **world_size;
    if (env.world_size < 1) {
      return absl::InvalidArgumentError(absl::StrCat(names.world_size, "=", env.world_size, " must be at least 1"));
    }
    if (env.rank < 0 || env.rank >= env.world_size) {
      return absl::InvalidArgumentError(absl::StrCat(names.rank, "=", env.rank, " is outside [0, ",
                                                     names.world_size, "=", env.world_size, ")"));
    }
    absl::StatusOr<std::optional<int>> local_rank = ReadInt(lookup, names.local_rank);
    if (!local_rank.ok()) return local_rank.status();
    absl::StatusOr<std::optional<int>> local_world_size = ReadInt(lookup, names.local_world_size);
    if (!local_world_size.ok()) return local_world_size.status();
    if (slurm && !local_world_size->has_value()) {  // SLURM_NTASKS_PER_NODE needs --ntasks-per-node
      absl::StatusOr<std::optional<int>> node = ReadInt(lookup, "SLURM_NODEID");
      if (!node.ok()) return node.status();
      local_world_size = SlurmTasksOnNode(lookup, node->value_or(0));
      if (!local_world_size.ok()) return local_world_size.status();
    }
    env.local_rank = local_rank->value_or(env.rank);
    env.local_world_size = local_world_size->value_or(env.world_size);
    if (env.local_world_size < 1 || env.local_world_size > env.world_size) {
      return absl::InvalidArgumentError(absl::StrCat(names.local_world_size, "=", env.local_world_size,
                                                     " is outside 1..", names.world_size, "=", env.world_size));
    }
    if (env.local_rank < 0 || env.local_rank >= env.local_world_size) {
      return absl::InvalidArgumentError(absl::StrCat(names.local_rank, "=", env.local_rank, " is outside [0, ",
                                                     env.local_world_size, ") (the processes on this machine)"));
    }

    if (const char* addr = lookup("MASTER_ADDR"); addr != nullptr && *addr != '\0') {
      env.master_addr = addr;
    } else if (const char* slurm_addr = lookup("SLURM_LAUNCH_NODE_IPADDR");
               env.launcher == "slurm" && slurm_addr != nullptr && *slurm_addr != '\0') {
      env.master_addr = slurm_addr;
    } else if (env.world_size > 1 && std::string(names.launcher) != "torchrun") {
      return absl::InvalidArgumentError(
          absl::StrCat("started by ", env.launcher, " with ", env.world_size,
                       " processes but MASTER_ADDR is not set (export the address of rank 0's host)"));
    }
    absl::StatusOr<std::optional<int>> port = ReadInt(lookup, "MASTER_PORT");
    if (!port.ok()) return port.status();
    env.master_port = port->value_or(29500);
    if (env.master_port < 1 || env.master_port > 65535) {
      return absl::InvalidArgumentError(absl::StrCat("MASTER_PORT=", env.master_port, " is outside 1..65535"));
    }
    return std::optional<RankEnv>(env);
  }
  return std::optional<RankEnv>();
}

absl::StatusOr<int> OwnGpuIndex(const RankEnv& env, int visible_gpus, const EnvLookup& lookup) {
  if (visible_gpus >= env.local_world_size) return env.local_rank;
  const char* per_task = lookup("SLURM_GPUS_PER_TASK");
  if (env.launcher == "slurm" && visible_gpus >= 1 && per_task != nullptr && *per_task != '\0') return 0;
  return absl::FailedPreconditionError(absl::StrCat(
      env.local_world_size, " processes on this host need one GPU each, but each sees ", visible_gpus,
      env.launcher == "slurm" ? " (srun --gpus-per-task=1 gives each task its own)" : " (use fewer processes)"));
}

}  // namespace dlspeed
