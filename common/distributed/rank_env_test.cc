#include "common/distributed/rank_env.h"

#include <map>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace dlspeed {
namespace {

using ::testing::HasSubstr;

EnvLookup Env(const std::map<std::string, std::string>& vars) {
  return [vars](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  };
}

TEST(RankEnvTest, NoLauncherVariablesMeansNotLaunched) {
  absl::StatusOr<std::optional<RankEnv>> env = RankEnvFromEnvironment(Env({{"HOME", "/root"}}));
  ASSERT_TRUE(env.ok());
  EXPECT_FALSE(env->has_value());
}

TEST(RankEnvTest, ReadsTorchrunVariables) {
  absl::StatusOr<std::optional<RankEnv>> env = RankEnvFromEnvironment(
      Env({{"RANK", "3"}, {"WORLD_SIZE", "8"}, {"LOCAL_RANK", "1"}, {"LOCAL_WORLD_SIZE", "2"},
           {"MASTER_ADDR", "10.0.0.5"}, {"MASTER_PORT", "29555"}}));
  ASSERT_TRUE(env.ok()) << env.status();
  ASSERT_TRUE(env->has_value());
  const RankEnv& e = **env;
  EXPECT_EQ(e.rank, 3);
  EXPECT_EQ(e.world_size, 8);
  EXPECT_EQ(e.local_rank, 1);
  EXPECT_EQ(e.local_world_size, 2);
  EXPECT_EQ(e.master_addr, "10.0.0.5");
  EXPECT_EQ(e.master_port, 29555);
  EXPECT_EQ(e.launcher, "torchrun");
}

TEST(RankEnvTest, NamesOurOwnLauncher) {
  absl::StatusOr<std::optional<RankEnv>> env =
      RankEnvFromEnvironment(Env({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"DLSPEED_LAUNCHER", "resnet_ddp"}}));
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ((*env)->launcher, "resnet_ddp");
}

TEST(RankEnvTest, TorchrunDefaultsLocalRankAndRendezvous) {
  absl::StatusOr<std::optional<RankEnv>> env = RankEnvFromEnvironment(Env({{"RANK", "1"}, {"WORLD_SIZE", "2"}}));
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ((*env)->local_rank, 1);
  EXPECT_EQ((*env)->master_addr, "127.0.0.1");
  EXPECT_EQ((*env)->master_port, 29500);
}

TEST(RankEnvTest, ReadsSlurmVariablesWithTheLaunchNodeAsMaster) {
  absl::StatusOr<std::optional<RankEnv>> env = RankEnvFromEnvironment(
      Env({{"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "8"}, {"SLURM_LOCALID", "1"}, {"SLURM_STEP_ID", "0"},
           {"SLURM_NTASKS_PER_NODE", "4"}, {"SLURM_LAUNCH_NODE_IPADDR", "192.168.1.2"}}));
  ASSERT_TRUE(env.ok()) << env.status();
  ASSERT_TRUE(env->has_value());
  EXPECT_EQ((*env)->launcher, "slurm");
  EXPECT_EQ((*env)->rank, 5);
  EXPECT_EQ((*env)->local_rank, 1);
  EXPECT_EQ((*env)->local_world_size, 4);
  EXPECT_EQ((*env)->master_addr, "192.168.1.2");
}

TEST(RankEnvTest, SlurmWithoutAStepOfSeveralTasksIsNoLauncher) {
  // An interactive `srun --pty bash`: a step of one task.
  absl::StatusOr<std::optional<RankEnv>> env = RankEnvFromEnvironment(
      Env({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "1"}, {"SLURM_LOCALID", "0"}, {"SLURM_STEP_ID", "0"}}));
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_FALSE(env->has_value());
  // A batch script of a 4-task job: not a step.
  env = RankEnvFromEnvironment(Env({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "4"}, {"SLURM_LOCALID", "0"}}));
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_FALSE(env->has_value());
  // SLURM_STEPID, the older name, counts as SLURM_STEP_ID.
  env = RankEnvFromEnvironment(Env({{"SLURM_PROCID", "1"}, {"SLURM_NTASKS", "2"}, {"SLURM_LOCALID", "1"},
                                    {"SLURM_STEPID", "3"}, {"MASTER_ADDR", "node1"}}));
  ASSERT_TRUE(env.ok()) << env.status();
  ASSERT_TRUE(env->has_value());
  EXPECT_EQ((*env)->rank, 1);
}

TEST(RankEnvTest, SlurmTasksOnThisNodeWithoutNtasksPerNode) {
  // 11 tasks: 4 on each of nodes 0 and 1, 3 on node 2.
  const std::map<std::string, std::string> job = {{"SLURM_NTASKS", "11"}, {"SLURM_STEP_ID", "0"},
                                                  {"SLURM_TASKS_PER_NODE", "4(x2),3"}, {"MASTER_ADDR", "node0"}};
  auto with = [&](std::map<std::string, std::string> more) {
    more.insert(job.begin(), job.end());
    return RankEnvFromEnvironment(Env(more));
  };
  absl::StatusOr<std::optional<RankEnv>> env = with({{"SLURM_PROCID", "9"}, {"SLURM_LOCALID", "1"},
                                                     {"SLURM_NODEID", "2"}});
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ((*env)->local_world_size, 3);
  env = with({{"SLURM_PROCID", "5"}, {"SLURM_LOCALID", "1"}, {"SLURM_NODEID", "1"}});
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ((*env)->local_world_size, 4);
  // The step's own list wins over the job's.
  env = with({{"SLURM_PROCID", "1"}, {"SLURM_LOCALID", "1"}, {"SLURM_NODEID", "0"},
              {"SLURM_STEP_TASKS_PER_NODE", "2(x4),3"}});
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ((*env)->local_world_size, 2);
  for (const char* bad : {"4(x2", "four", "0", "4(x0)"}) {
    env = with({{"SLURM_PROCID", "1"}, {"SLURM_LOCALID", "1"}, {"SLURM_STEP_TASKS_PER_NODE", bad}});
    ASSERT_FALSE(env.ok()) << bad;
    EXPECT_NE(env.status().message().find("SLURM_STEP_TASKS_PER_NODE"), std::string::npos) << env.status();
  }
  env = with({{"SLURM_PROCID", "1"}, {"SLURM_LOCALID", "1"}, {"SLURM_NODEID", "5"}});
  ASSERT_FALSE(env.ok());
  EXPECT_NE(env.status().message().find("no node 5"), std::string::npos) << env.status();
}

TEST(RankEnvTest, ReadsOpenMpiVariables) {
  absl::StatusOr<std::optional<RankEnv>> env = RankEnvFromEnvironment(
      Env({{"OMPI_COMM_WORLD_RANK", "2"}, {"OMPI_COMM_WORLD_SIZE", "4"}, {"OMPI_COMM_WORLD_LOCAL_RANK", "0"},
           {"MASTER_ADDR", "node1"}}));
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ((*env)->launcher, "mpi");
  EXPECT_EQ((*env)->rank, 2);
  EXPECT_EQ((*env)->world_size, 4);
  EXPECT_EQ((*env)->master_addr, "node1");
}

TEST(RankEnvTest, TorchrunWinsOverSlurm) {
  absl::StatusOr<std::optional<RankEnv>> env = RankEnvFromEnvironment(
      Env({{"RANK", "0"}, {"WORLD_SIZE", "1"}, {"SLURM_PROCID", "7"}, {"SLURM_NTASKS", "8"}}));
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ((*env)->launcher, "torchrun");
  EXPECT_EQ((*env)->rank, 0);
}

TEST(RankEnvTest, RejectsInconsistentOrMalformedValues) {
  struct Case {
    std::map<std::string, std::string> vars;
    std::string mentions;
  };
  const Case cases[] = {
      {{{"RANK", "2"}, {"WORLD_SIZE", "2"}}, "RANK=2"},
      {{{"RANK", "-1"}, {"WORLD_SIZE", "2"}}, "RANK=-1"},
      {{{"RANK", "x"}, {"WORLD_SIZE", "2"}}, "RANK='x'"},
      {{{"RANK", "0"}}, "WORLD_SIZE"},
      {{{"RANK", "0"}, {"WORLD_SIZE", "0"}}, "WORLD_SIZE=0"},
      {{{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "70000"}}, "MASTER_PORT=70000"},
      {{{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}, {"SLURM_STEP_ID", "0"}}, "MASTER_ADDR"},
      {{{"RANK", "1"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "2"}, {"LOCAL_WORLD_SIZE", "2"}}, "LOCAL_RANK=2"},
      {{{"RANK", "1"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "-1"}, {"LOCAL_WORLD_SIZE", "2"}}, "LOCAL_RANK=-1"},
      {{{"RANK", "1"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "0"}, {"LOCAL_WORLD_SIZE", "0"}}, "LOCAL_WORLD_SIZE=0"},
      {{{"RANK", "1"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "0"}, {"LOCAL_WORLD_SIZE", "8"}}, "LOCAL_WORLD_SIZE=8"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<std::optional<RankEnv>> env = RankEnvFromEnvironment(Env(c.vars));
    ASSERT_FALSE(env.ok()) << c.mentions;
    EXPECT_NE(env.status().message().find(c.mentions), std::string::npos) << env.status();
  }
}

TEST(RankEnvTest, OwnGpuIsLocalRanksUnlessSlurmGaveEachTaskItsOwn) {
  RankEnv env;
  env.local_rank = 2;
  env.local_world_size = 4;
  env.launcher = "torchrun";
  EXPECT_EQ(OwnGpuIndex(env, 4, Env({})).value(), 2);
  EXPECT_EQ(OwnGpuIndex(env, 8, Env({})).value(), 2);
  absl::StatusOr<int> few = OwnGpuIndex(env, 1, Env({{"SLURM_GPUS_PER_TASK", "1"}}));
  EXPECT_EQ(few.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(few.status().message()), HasSubstr("4 processes on this host need one GPU each"));
  env.launcher = "slurm";
  // srun --gpus-per-task=1: each task sees its own GPU only.
  EXPECT_EQ(OwnGpuIndex(env, 1, Env({{"SLURM_GPUS_PER_TASK", "1"}})).value(), 0);
  EXPECT_EQ(OwnGpuIndex(env, 4, Env({{"SLURM_GPUS_PER_TASK", "1"}})).value(), 2);  // --gpu-bind=none
  absl::StatusOr<int> shared = OwnGpuIndex(env, 1, Env({}));
  EXPECT_EQ(shared.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(shared.status().message()), HasSubstr("--gpus-per-task=1"));
  EXPECT_FALSE(OwnGpuIndex(env, 0, Env({{"SLURM_GPUS_PER_TASK", "1"}})).ok());
}

}  // namespace
}  // namespace dlspeed
