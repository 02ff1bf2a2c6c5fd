// Runs resnet_ddp end to end in real processes on Gloo: DDP on two ranks ends
// with the parameters one process gets on the union of their batches; it
// joins when started torchrun-style; a killed rank stops the job with a line
// naming it and leaves no process behind; rendezvous and usage errors are one
// line each.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "common/serialize/torch_save_reader.h"
#include "tests/subprocess.h"
#include "common/testing/scratch_dir.h"

namespace dlspeed {
namespace {

const char kDdp[] = "resnet/resnet_ddp ";
const char kSingle[] = "resnet/resnet_single ";

// Few steps at a small learning rate: ResNet training on batches of 16 with
// BatchNorm amplifies float rounding quickly (one process with 1 or 2 threads
// differs by ~1e-4 after two steps), so the comparison stays short.
std::string TrainingFlags(const std::string& dir) {
  return "--dataset=fashion-mnist --train_limit=256 --test_limit=32 --epochs=1 --max_steps=2 --augment=false "
         "--lr=0.01 --threads=1 --workers=1 --models_dir=" + dir + "/models --results=" + dir + "/results.jsonl";
}

std::map<std::string, at::Tensor> ReadModel(const std::string& path) {
  auto entries = ReadTorchSaveStateDict(path);
  EXPECT_TRUE(entries.ok()) << entries.status();
  std::map<std::string, at::Tensor> model;
  if (entries.ok()) {
    for (auto& [name, tensor] : *entries) model[name] = tensor;
  }
  return model;
}

// Largest absolute difference over the float entries of two state_dicts;
// integer entries (num_batches_tracked) must be equal.
double MaxDifference(const std::map<std::string, at::Tensor>& a, const std::map<std::string, at::Tensor>& b) {
  EXPECT_EQ(a.size(), b.size());
  double worst = 0;
  for (const auto& [name, tensor] : a) {
    auto it = b.find(name);
    if (it == b.end()) {
      ADD_FAILURE() << name << " missing";
      continue;
    }
    if (!tensor.is_floating_point()) {
      EXPECT_TRUE(tensor.equal(it->second)) << name;
      continue;
    }
    worst = std::max(worst, (tensor.to(at::kDouble) - it->second.to(at::kDouble)).abs().max().item<double>());
  }
  return worst;
}

TEST(ResNetDdpTest, TwoRanksMatchOneProcessOnTheUnionOfTheirBatches) {
  const std::string dir = ScratchDir("equivalence");
  CommandResult ddp = RunCommand(kDdp + std::string("18 2 0 --batch_size=16 ") + TrainingFlags(dir));
  ASSERT_EQ(ddp.exit_code, 0) << ddp.output;
  for (const char* line : {"no GPU here: running 2 processes on the CPU with Gloo", "backend=gloo",
                           "Non-mixed,18\n", "Average time: ", "Accuracy of the network on the 32 test images: ",
                           "Saved " }) {
    EXPECT_NE(ddp.output.find(line), std::string::npos) << "missing '" << line << "' in:\n" << ddp.output;
  }
  CommandResult single = RunCommand(kSingle + std::string("--depths=18 --modes=fp32 --batch_size=32 ") + TrainingFlags(dir));
  ASSERT_EQ(single.exit_code, 0) << single.output;

  const auto distributed = ReadModel(dir + "/models/Resnet-18-2gpus.pth");
  const auto reference = ReadModel(dir + "/models/Resnet-18-1gpu.pth");
  ASSERT_FALSE(distributed.empty());
  EXPECT_LT(MaxDifference(distributed, reference), 1e-3);
  // The check can fail: the same two ranks without SyncBatchNorm differ a lot.
  CommandResult unsynced =
      RunCommand(kDdp + std::string("18 2 0 --batch_size=16 --sync_batchnorm=false ") + TrainingFlags(dir));
  ASSERT_EQ(unsynced.exit_code, 0) << unsynced.output;
  EXPECT_GT(MaxDifference(ReadModel(dir + "/models/Resnet-18-2gpus.pth"), reference), 1e-2);

  std::ifstream in(dir + "/results.jsonl");
  std::string line;
  std::getline(in, line);
  const nlohmann::json record = nlohmann::json::parse(line);
  EXPECT_EQ(record["binary"], "resnet_ddp");
  EXPECT_EQ(record["devices"], 2);
  EXPECT_EQ(record["backend"], "gloo");
  EXPECT_EQ(record["global_batch_size"], 32);
  EXPECT_EQ(record["sync_batchnorm"], true);
  EXPECT_EQ(record["launcher"], "resnet_ddp");
  // ResNet-18's 8 gradients of 1 MiB or more (40.9 MB) on their own, the
  // rest in a 1 MiB bucket and a 25 MiB one.
  EXPECT_EQ(record["reducer"]["buckets"], 10);
  EXPECT_EQ(record["own_bucket_min_mb"], 1);
  EXPECT_EQ(record["reducer"]["steps"], 2);
}

TEST(ResNetDdpTest, JoinsWhenStartedTorchrunStyle) {
  const std::string dir = ScratchDir("torchrun");
  const std::string flags = std::string("18 2 1 --batch_size=8 ") + TrainingFlags(dir);
  // What torchrun does: one process per rank with the rendezvous variables.
  const std::string env = "MASTER_ADDR=127.0.0.1 MASTER_PORT=$(python3 -c 'import socket; s=socket.socket(); "
                          "s.bind((\"127.0.0.1\", 0)); print(s.getsockname()[1])') WORLD_SIZE=2";
  // Rank 1's --results cannot be written (another machine's file system,
  // say): only rank 0 appends the record, so only rank 0 checks it.
  CommandResult run = RunCommand(
      "export " + env + "; (RANK=1 LOCAL_RANK=1 " + kDdp + flags + " --results=/proc/no-such-dir/results.jsonl > " +
      dir + "/rank1.log 2>&1; echo $? > " + dir +
      "/rank1.rc) & RANK=0 LOCAL_RANK=0 " + kDdp + flags + "; rc=$?; wait; exit $((rc + $(cat " + dir + "/rank1.rc)))");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(run.output.find("no GPU here"), std::string::npos) << "it started its own workers:\n" << run.output;
  EXPECT_NE(run.output.find("2 processes (torchrun)"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("Mixed precision,18"), std::string::npos) << run.output;
  EXPECT_FALSE(ReadModel(dir + "/models/Resnet-18-mixed-2gpus.pth").empty());
  EXPECT_TRUE(std::filesystem::exists(dir + "/results.jsonl"));
}

TEST(ResNetDdpTest, AnInteractiveSlurmShellStartsItsOwnWorkers) {
  // What `srun --pty bash` leaves in the shell: a step of one task. The
  // program is not one of several SLURM tasks; it starts its 2 processes.
  const std::string dir = ScratchDir("slurm_shell");
  CommandResult run = RunCommand(
      "SLURM_JOB_ID=7 SLURM_STEP_ID=0 SLURM_PROCID=0 SLURM_NTASKS=1 SLURM_LOCALID=0 SLURM_NODEID=0 " +
      std::string(kDdp) + "18 2 0 --batch_size=8 " + TrainingFlags(dir));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("2 processes (resnet_ddp)"), std::string::npos) << run.output;
}

TEST(ResNetDdpTest, AKilledRankStopsEveryProcessWithALineNamingIt) {
  const std::string dir = ScratchDir("fault");
  const auto start = std::chrono::steady_clock::now();
  CommandResult run = RunCommand(kDdp + std::string("18 2 0 --batch_size=8 --test_kill=1:2 --timeout_s=20 ") +
                                 "--dataset=synthetic --synthetic_size=256 --max_steps=20 --epochs=1 --models_dir= "
                                 "--results=" + dir + "/fault-marker.jsonl");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_NE(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("rank 1 (pid "), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("was killed by signal 9"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("rank 0: training stopped: "), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("rank 1 stopped responding"), std::string::npos) << run.output;
  // Well under the default 300 s: the 20 s asked for applied (loose, as a loaded machine starts slowly).
  EXPECT_LT(seconds, 150) << run.output;
  CommandResult left = RunCommand("pgrep -f 'fault-marke[r].jsonl'");
  EXPECT_NE(left.exit_code, 0) << "processes left behind:\n" << left.output;
}

TEST(ResNetDdpTest, KilledAndResumedEndsBitExactAndSigtermStopsEveryRank) {
  const std::string whole = ScratchDir("resume_whole"), resumed = ScratchDir("resume_killed"), stopped = ScratchDir("sigterm");
  const std::string flags = "18 2 0 --batch_size=8 --epochs=2 --max_steps=4 --train_limit=128 --test_limit=16 "
                            "--workers=1 --checkpoint_every=1 --results= ";
  ASSERT_EQ(RunCommand(kDdp + flags + "--models_dir=" + whole).exit_code, 0);
  EXPECT_NE(RunCommand(kDdp + flags + "--models_dir=" + resumed + " --test_kill=1:6").exit_code, 0);
  // Ranks that do not share a file system: rank 1 (torchrun-style, with a
  // --models_dir of its own) does not see rank 0's checkpoint. One line, and
  // the checkpoint is still there for a resume where every rank sees it.
  const std::string elsewhere = ScratchDir("resume_elsewhere");
  const std::string env = "MASTER_ADDR=127.0.0.1 MASTER_PORT=$(python3 -c 'import socket; s=socket.socket(); "
                          "s.bind((\"127.0.0.1\", 0)); print(s.getsockname()[1])') WORLD_SIZE=2";
  CommandResult unshared = RunCommand(
      "exec 2>&1; export " + env + "; (RANK=1 LOCAL_RANK=1 " + kDdp + flags + "--resume --models_dir=" + elsewhere + " > " +
      elsewhere + "/rank1.log 2>&1; echo $? > " + elsewhere + "/rank1.rc) & RANK=0 LOCAL_RANK=0 " + kDdp + flags +
      "--resume --models_dir=" + resumed + "; rc=$?; wait; echo rank1 exit $(cat " + elsewhere + "/rank1.rc); exit $rc");
  EXPECT_NE(unshared.exit_code, 0) << unshared.output;
  EXPECT_NE(unshared.output.find("is there for some ranks and not for others"), std::string::npos) << unshared.output;
  EXPECT_EQ(unshared.output.find("rank1 exit 0"), std::string::npos) << unshared.output;
  EXPECT_TRUE(std::filesystem::exists(resumed + "/Resnet-18-2gpus.ckpt"));
  // Rank 1 sees a corrupt copy: it says so, and rank 0, which read its own,
  // stops at once with one line instead of waiting for rank 1 in a collective.
  std::ofstream(elsewhere + "/Resnet-18-2gpus.ckpt") << "not a checkpoint";
  CommandResult corrupt = RunCommand(
      "exec 2>&1; export " + env + "; (RANK=1 LOCAL_RANK=1 " + kDdp + flags + "--resume --models_dir=" + elsewhere +
      " > " + elsewhere + "/rank1.log 2>&1; echo $? > " + elsewhere + "/rank1.rc) & RANK=0 LOCAL_RANK=0 " + kDdp +
      flags + "--resume --models_dir=" + resumed + "; rc=$?; wait; cat " + elsewhere + "/rank1.log; echo rank1 exit $(cat " +
      elsewhere + "/rank1.rc); exit $rc");
  EXPECT_NE(corrupt.exit_code, 0) << corrupt.output;
  EXPECT_NE(corrupt.output.find("--resume: a rank could not read its copy of " + resumed), std::string::npos) << corrupt.output;
  EXPECT_NE(corrupt.output.find(elsewhere + "/Resnet-18-2gpus.ckpt"), std::string::npos) << corrupt.output;
  EXPECT_NE(corrupt.output.find("rank1 exit 1"), std::string::npos) << corrupt.output;
  CommandResult resume = RunCommand(kDdp + flags + "--models_dir=" + resumed + " --resume");
  ASSERT_EQ(resume.exit_code, 0) << resume.output;
  EXPECT_NE(resume.output.find("Resuming from "), std::string::npos) << resume.output;
  const auto a = ReadModel(whole + "/Resnet-18-2gpus.pth");
  const auto b = ReadModel(resumed + "/Resnet-18-2gpus.pth");
  ASSERT_EQ(a.size(), 122u);
  for (const auto& [name, tensor] : a) EXPECT_TRUE(tensor.equal(b.at(name))) << name << " differs";

  // Rank 0 prints the study's first line after the rendezvous, when every rank handles the signal.
  CommandResult run = RunAndSignalOnOutput(std::string(kDdp) +
                                               "18 2 0 --batch_size=8 --epochs=100 --train_limit=4096 --workers=1 "
                                               "--results= --models_dir=" + stopped,
                                           "Non-mixed,18", SIGTERM);
  EXPECT_EQ(run.exit_code, 128 + 15) << run.output;
  EXPECT_NE(run.output.find("resnet_ddp: stopped by signal 15 at epoch 1, step "), std::string::npos) << run.output;
  EXPECT_TRUE(std::filesystem::exists(stopped + "/Resnet-18-2gpus.ckpt"));
}

int ListeningPort(int* fd) {
  *fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_ANY);
  socklen_t length = sizeof(address);
  if (bind(*fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 || listen(*fd, 1) != 0 ||
      getsockname(*fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    return -1;
  }
  return ntohs(address.sin_port);
}

TEST(ResNetDdpTest, RendezvousProblemsAreOneClearLine) {
  const std::string flags = " 18 2 0 --dataset=synthetic --synthetic_size=64 --timeout_s=3 --results= --models_dir=";
  int fd = -1;
  const int busy = ListeningPort(&fd);
  ASSERT_GT(busy, 0);
  CommandResult in_use = RunCommand("RANK=0 WORLD_SIZE=2 MASTER_PORT=" + std::to_string(busy) + " " + kDdp + flags);
  EXPECT_NE(in_use.exit_code, 0);
  EXPECT_NE(in_use.output.find("already in use"), std::string::npos) << in_use.output;
  EXPECT_EQ(CountLines(in_use.output), 1) << in_use.output;
  close(fd);

  // Nobody listens at the port that was just freed: rank 1 cannot reach rank 0.
  CommandResult unreachable =
      RunCommand("RANK=1 WORLD_SIZE=2 MASTER_PORT=" + std::to_string(busy) + " " + kDdp + flags);
  EXPECT_NE(unreachable.exit_code, 0);
  EXPECT_NE(unreachable.output.find("cannot reach the rendezvous at 127.0.0.1:" + std::to_string(busy)),
            std::string::npos)
      << unreachable.output;
  EXPECT_EQ(CountLines(unreachable.output), 1) << unreachable.output;
}

TEST(ResNetDdpTest, BadInputIsOneLine) {
  struct Case {
    std::string command;
    int exit_code;
    std::string mentions;
  };
  const Case cases[] = {
      {std::string(kDdp) + "18 2", 2, "expected 3 arguments"},
      {std::string(kDdp) + "20 2 0", 2, "depth must be one of 18, 34, 50"},
      {std::string(kDdp) + "18 2 3", 2, "mixed must be one of 0, 1"},
      // Flag mistakes are found before any worker starts: one line, not one per rank.
      {std::string(kDdp) + "18 2 0 --epochs=0", 2, "--epochs must be at least 1"},
      {std::string(kDdp) + "18 2 0 --optimizer_kernels=apex", 2, "apex"},
      {std::string(kDdp) + "18 2 0 --bucket_cap_mb=0", 2, "--bucket_cap_mb must be positive"},
      {std::string(kDdp) + "18 2 0 --timeout_s=nan", 2, "--timeout_s must be above 0"},
      {std::string(kDdp) + "18 2 0 --timeout_s=1e9", 2, "--timeout_s must be above 0"},
      {"RANK=1 WORLD_SIZE=2 LOCAL_RANK=1 LOCAL_WORLD_SIZE=1 " + std::string(kDdp) + "18 2 0", 1,
       "LOCAL_RANK=1 is outside [0, 1)"},
      {std::string(kDdp) + "18 2 0 --device=cuda", 1, "no GPU"},
      {"RANK=0 WORLD_SIZE=2 " + std::string(kDdp) + "18 4 0", 1, "started 2 processes but the command line asks for 4"},
      {"RANK=0 WORLD_SIZE=1 " + std::string(kDdp) + "18 1 0 --backend=nccl --dataset=synthetic --synthetic_size=64", 1,
       "--backend=nccl needs GPUs"},
      {"RANK=0 WORLD_SIZE=1 " + std::string(kDdp) + "18 1 0 --backend=mpi --dataset=synthetic --synthetic_size=64", 2,
       "unknown backend 'mpi'"},
      {std::string(kDdp) + "18 2 0 --backend=mpi", 2, "unknown backend 'mpi'"},
      {std::string(kDdp) + "18 2 0 --backend=nccl", 1, "--backend=nccl needs GPUs"},
      {std::string(kDdp) + "18 2 1 --precision=fp8", 2, "fp8"},
      {std::string(kDdp) + "18 2 0 --device=tpu", 2, "--device must be auto, cuda or cpu"},
      {std::string(kDdp) + "18 2 0 --max_steps=-1", 2, "--max_steps must be 0 or more"},
      {"RANK=3 WORLD_SIZE=2 " + std::string(kDdp) + "18 2 0", 1, "RANK=3 is outside [0, WORLD_SIZE=2)"},
  };
  for (const Case& c : cases) {
    CommandResult run = RunCommand(c.command + " --results= --models_dir=");
    EXPECT_EQ(run.exit_code, c.exit_code) << c.command << "\n" << run.output;
    EXPECT_NE(run.output.find(c.mentions), std::string::npos) << c.command << "\n" << run.output;
    EXPECT_EQ(CountLines(run.output), 1) << c.command << "\n" << run.output;
  }
}

}  // namespace
}  // namespace dlspeed
