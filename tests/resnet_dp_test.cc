// Runs resnet_dp end to end on the CPU (replicas in threads): the study's
// lines, the record, the saved model, and one-line answers to bad input.
#include <cstdlib>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/serialize/torch_save_reader.h"
#include "tests/subprocess.h"
#include "common/testing/scratch_dir.h"

namespace dlspeed {
namespace {

std::string TempDir() { return ScratchDir("dp"); }

TEST(ResNetDpTest, TrainsOnReplicasPrintsRecordsAndSaves) {
  const std::string dir = TempDir();
  CommandResult run = RunCommand("resnet/resnet_dp 18 2 1 --batch_size=32 --epochs=2 --max_steps=2 --train_limit=256 "
                                 "--test_limit=40 --workers=1 --sync_each_step --results=" + dir + "/r.jsonl --models_dir=" + dir);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  for (const char* line : {"no GPU here: the 2 replicas run on the CPU", "Mixed precision,18\n", "Average time: ",
                           "Total time: ", "Accuracy of the network on the 40 test images: ", "(16 per replica)"}) {
    EXPECT_NE(run.output.find(line), std::string::npos) << "missing '" << line << "' in:\n" << run.output;
  }
  std::ifstream in(dir + "/r.jsonl");
  std::string line;
  ASSERT_TRUE(std::getline(in, line));
  const nlohmann::json record = nlohmann::json::parse(line);
  EXPECT_EQ(record["binary"], "resnet_dp");
  EXPECT_EQ(record["devices"], 2);
  EXPECT_EQ(record["precision"], "bf16");
  EXPECT_EQ(record["batch_size"], 32);
  EXPECT_EQ(record["epoch_seconds"].size(), 2u);
  EXPECT_EQ(record["sync_each_step"], true);
  EXPECT_EQ(record["measured_skipped_steps"], 0);  // bf16: no GradScaler
  auto model = ReadTorchSaveStateDict(dir + "/Resnet-18-mixed-2gpus-dp.pth");
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(model->size(), 122u);  // ResNet-18's parameters and buffers
}

TEST(ResNetDpTest, BadInputIsOneLine) {
  struct Case {
    std::string args;
    int exit_code;
    std::string mentions;
  };
  const Case cases[] = {
      {"18 2", 2, "expected 3 arguments"},
      {"18 9 0", 2, "gpus must be one of"},
      {"18 2 0 --device=cuda", 1, "this host has no GPU"},
      {"18 2 0 --device=tpu", 2, "--device must be auto, cuda or cpu"},
      {"18 2 0 --epochs=0", 2, "--epochs must be at least 1"},
      {"18 2 0 --dataset=imagenet", 2, "imagenet"},
      {"18 2 0 --device=cpu --dataset=cifar10 --data_dir=/nonexistent", 1, "/nonexistent"},
  };
  for (const Case& c : cases) {
    CommandResult run = RunCommand("resnet/resnet_dp " + c.args + " --results= --models_dir=");
    EXPECT_EQ(run.exit_code, c.exit_code) << c.args << "\n" << run.output;
    EXPECT_NE(run.output.find(c.mentions), std::string::npos) << c.args << "\n" << run.output;
    EXPECT_EQ(CountLines(run.output), 1) << c.args << "\n" << run.output;
  }
}

}  // namespace
}  // namespace dlspeed
