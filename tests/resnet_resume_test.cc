// Resumable training, end to end: a resnet_single run SIGKILLed mid-epoch and
// resumed from its checkpoint ends with exactly the parameters of a run that
// was never interrupted; SIGTERM stops a run at a step boundary with a
// checkpoint and the conventional exit status; a corrupt checkpoint is one error line.
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
#include "common/testing/json_lines.h"
#include "common/testing/scratch_dir.h"

namespace dlspeed {
namespace {

std::string Dir(const std::string& name) { return ScratchDir("resume/" + name); }

// One thread so that the CPU kernels are deterministic; augmentation on.
const char kFlags[] =
    "resnet/resnet_single --depths=18 --modes=fp32 --epochs=2 --max_steps=4 --batch_size=16 --train_limit=128 "
    "--test_limit=16 --workers=1 --threads=1 --checkpoint_every=1 --results= ";

std::map<std::string, at::Tensor> ReadModel(const std::string& path) {
  auto entries = ReadTorchSaveStateDict(path);
  EXPECT_TRUE(entries.ok()) << entries.status();
  std::map<std::string, at::Tensor> model;
  if (entries.ok()) model.insert(entries->begin(), entries->end());
  return model;
}

TEST(ResNetResumeTest, KilledAndResumedEndsBitExactWithAnUninterruptedRun) {
  const std::string whole = Dir("whole"), resumed = Dir("resumed");
  CommandResult reference = RunCommand(std::string(kFlags) + "--models_dir=" + whole);
  ASSERT_EQ(reference.exit_code, 0) << reference.output;
  EXPECT_FALSE(std::filesystem::exists(whole + "/Resnet-18-1gpu.ckpt")) << "a finished run keeps no checkpoint";

  // Step 5 of 8: the second epoch's first step.
  CommandResult killed = RunCommand(std::string(kFlags) + "--models_dir=" + resumed + " --test_kill_at_step=5");
  EXPECT_NE(killed.exit_code, 0) << killed.output;
  ASSERT_TRUE(std::filesystem::exists(resumed + "/Resnet-18-1gpu.ckpt"));
  ASSERT_FALSE(std::filesystem::exists(resumed + "/Resnet-18-1gpu.pth"));
  CommandResult resume = RunCommand(std::string(kFlags) + "--models_dir=" + resumed + " --resume");
  ASSERT_EQ(resume.exit_code, 0) << resume.output;
  EXPECT_NE(resume.output.find("at epoch 2, step 1"), std::string::npos) << resume.output;

  const auto a = ReadModel(whole + "/Resnet-18-1gpu.pth");
  const auto b = ReadModel(resumed + "/Resnet-18-1gpu.pth");
  ASSERT_EQ(a.size(), 122u);
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, tensor] : a) EXPECT_TRUE(tensor.equal(b.at(name))) << name << " differs";
}

// A short resnet_single run that writes a checkpoint after every step.
std::string CheckpointingRun(int epochs, int max_steps, const std::string& models_dir) {
  return "resnet/resnet_single --depths=18 --modes=fp32 --epochs=" + std::to_string(epochs) +
         " --max_steps=" + std::to_string(max_steps) +
         " --batch_size=16 --train_limit=128 --test_limit=16 --workers=1 --threads=1 --checkpoint_every=1"
         " --models_dir=" + models_dir;
}

TEST(ResNetResumeTest, ACheckpointAtAnEpochsEndResumesWithTheNextEpoch) {
  const std::string dir = Dir("epoch_end");
  const std::string flags = CheckpointingRun(/*epochs=*/3, /*max_steps=*/2, dir);
  // Step 2 is epoch 1's last: its checkpoint says epoch 1, 2 steps done.
  CommandResult killed = RunCommand(flags + " --results= --test_kill_at_step=2");
  EXPECT_NE(killed.exit_code, 0) << killed.output;
  ASSERT_TRUE(std::filesystem::exists(dir + "/Resnet-18-1gpu.ckpt"));
  CommandResult resume = RunCommand(flags + " --results=" + dir + "/results.jsonl --resume");
  ASSERT_EQ(resume.exit_code, 0) << resume.output;
  EXPECT_NE(resume.output.find("at epoch 1, step 2"), std::string::npos) << resume.output;
  EXPECT_EQ(resume.output.find("epoch 1/3:"), std::string::npos) << "an empty epoch 1 ran:\n" << resume.output;
  EXPECT_NE(resume.output.find("epoch 2/3: "), std::string::npos) << resume.output;
  EXPECT_NE(resume.output.find("epoch 3/3: "), std::string::npos) << resume.output;

  const std::vector<nlohmann::json> records = ReadJsonLines(dir + "/results.jsonl");
  ASSERT_EQ(records.size(), 1u);
  const nlohmann::json& r = records[0];
  EXPECT_EQ(r["resumed_from"], (nlohmann::json{{"epoch", 1}, {"steps_done", 2}}));
  EXPECT_EQ(r["epoch_seconds"].size(), 2u);  // epochs 2 and 3
  // Epoch 2 is this process's first (its warm-up); the averages are epoch 3's.
  EXPECT_EQ(r["timed_epochs"], nlohmann::json::array({3}));
  EXPECT_DOUBLE_EQ(r["avg_epoch_seconds"].get<double>(), r["epoch_seconds"][1].get<double>());
  EXPECT_GT(r["checkpoint_seconds"].get<double>(), 0.0);  // 4 checkpoints, left out of the epochs
}

TEST(ResNetResumeTest, TheRestOfTheLastEpochIsAveragedAsAWholeEpoch) {
  const std::string dir = Dir("last_epoch");
  const std::string flags = CheckpointingRun(/*epochs=*/2, /*max_steps=*/4, dir);
  // Step 5 is epoch 2's first: the checkpoint says epoch 2, 1 step done.
  CommandResult killed = RunCommand(flags + " --results= --test_kill_at_step=5");
  EXPECT_NE(killed.exit_code, 0) << killed.output;
  CommandResult resume = RunCommand(flags + " --results=" + dir + "/results.jsonl --resume");
  ASSERT_EQ(resume.exit_code, 0) << resume.output;
  const std::vector<nlohmann::json> records = ReadJsonLines(dir + "/results.jsonl");
  ASSERT_EQ(records.size(), 1u);
  const nlohmann::json& r = records[0];
  EXPECT_EQ(r["resumed_from"], (nlohmann::json{{"epoch", 2}, {"steps_done", 1}}));
  EXPECT_EQ(r["timed_epochs"], nlohmann::json::array({2}));
  // 3 of the epoch's 4 steps ran: the average is their time scaled by 4/3.
  EXPECT_NEAR(r["avg_epoch_seconds"].get<double>(), r["epoch_seconds"][0].get<double>() * 4 / 3, 1e-9) << r.dump();
}

TEST(ResNetResumeTest, OtherSettingsOrNothingLeftToTrainAreSaid) {
  const std::string dir = Dir("settings");
  const std::string flags = CheckpointingRun(/*epochs=*/2, /*max_steps=*/4, dir);
  // Step 8 is the last: its checkpoint says epoch 2, 4 steps done.
  CommandResult killed = RunCommand(flags + " --results= --test_kill_at_step=8");
  EXPECT_NE(killed.exit_code, 0) << killed.output;
  ASSERT_TRUE(std::filesystem::exists(dir + "/Resnet-18-1gpu.ckpt"));

  // Its 4 steps of 16 images are not 4 steps of 32.
  CommandResult other = RunCommand(flags + " --results= --resume --batch_size=32");
  EXPECT_EQ(other.exit_code, 1) << other.output;
  EXPECT_NE(other.output.find("was written with dataset=fashion-mnist train_samples=128 batch_size=16"),
            std::string::npos)
      << other.output;

  CommandResult resume = RunCommand(flags + " --results=" + dir + "/results.jsonl --resume");
  ASSERT_EQ(resume.exit_code, 0) << resume.output;
  EXPECT_NE(resume.output.find("nothing left to train, so no record"), std::string::npos) << resume.output;
  EXPECT_FALSE(std::filesystem::exists(dir + "/results.jsonl"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/Resnet-18-1gpu.pth"));  // the trained model is still saved
}

TEST(ResNetResumeTest, SigtermStopsAtAStepWithACheckpoint) {
  const std::string dir = Dir("sigterm");
  CommandResult run = RunAndSignalOnOutput("resnet/resnet_single --depths=18 --modes=fp32 --epochs=100 "
                                           "--batch_size=16 --train_limit=4096 --test_limit=16 --workers=1 --results= "
                                           "--models_dir=" + dir,
                                           "Non-mixed,18", SIGTERM);
  EXPECT_EQ(run.exit_code, 128 + 15) << run.output;
  EXPECT_NE(run.output.find("stopped by signal 15 at epoch 1, step "), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("(continue with --resume)"), std::string::npos) << run.output;
  EXPECT_TRUE(std::filesystem::exists(dir + "/Resnet-18-1gpu.ckpt"));
}

TEST(ResNetResumeTest, ACorruptCheckpointIsOneLine) {
  const std::string dir = Dir("corrupt");
  std::ofstream(dir + "/Resnet-18-1gpu.ckpt") << "not a checkpoint";
  CommandResult run = RunCommand(std::string(kFlags) + "--models_dir=" + dir + " --resume");
  EXPECT_EQ(run.exit_code, 1) << run.output;
  // After the settings lines, the error is the last line and names the file.
  const std::string last = run.output.substr(run.output.rfind('\n', run.output.size() - 2) + 1);
  EXPECT_EQ(last.rfind("resnet_single: ", 0), 0u) << run.output;
  EXPECT_NE(last.find("Resnet-18-1gpu.ckpt"), std::string::npos) << run.output;
}

}  // namespace
}  // namespace dlspeed
