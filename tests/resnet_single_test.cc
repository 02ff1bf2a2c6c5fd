// Runs the resnet_single binary end to end on a tiny budget: its printed
// lines, its results records, its saved models loading back, and its answers
// to bad input.
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "resnet/resnet.h"
#include "resnet/resnet_checkpoint.h"
#include "tests/subprocess.h"
#include "common/testing/json_lines.h"
#include "common/testing/scratch_dir.h"

namespace dlspeed {
namespace {

CommandResult RunBinary(const std::string& args) { return RunCommand("resnet/resnet_single " + args); }

std::string TempDir() { return ScratchDir("single"); }

TEST(ResNetSingleTest, TrainsPrintsRecordsAndSaves) {
  const std::string dir = TempDir() + "/e2e";
  const std::string results = dir + "/results.jsonl";
  std::system(("mkdir -p " + dir).c_str());
  std::ofstream(results) << "{\"earlier\": true}\n";
  // The models go to a folder whose name needs quoting, to check the
  // records' "command", which a shell must read back as this command line.
  const std::string args = "--depths=18 --epochs=2 --max_steps=3 --batch_size=16 --train_limit=96 "
                           "--test_limit=50 --workers=1 --results=" + results;
  const std::string models_flag = "--models_dir=" + dir + "/my models";
  CommandResult run = RunBinary(args + " '" + models_flag + "'");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  for (const char* line : {"Non-mixed,18\n", "Mixed precision,18\n", "Average time: ", "Total time: ",
                           "Accuracy of the network on the 50 test images: ", "| ResNet-18 | fp32 |",
                           "| ResNet-18 | bf16 |", "resnet_single: in effect: device=cpu"}) {
    EXPECT_NE(run.output.find(line), std::string::npos) << "missing '" << line << "' in:\n" << run.output;
  }
  std::vector<nlohmann::json> records = ReadJsonLines(results);
  ASSERT_EQ(records.size(), 3u);
  EXPECT_TRUE(records[0]["earlier"].get<bool>()) << "an earlier record was lost";
  for (int i = 1; i <= 2; ++i) {
    const nlohmann::json& r = records[i];
    EXPECT_EQ(r["binary"], "resnet_single");
    EXPECT_EQ(r["model"], "resnet18");
    EXPECT_EQ(r["batch_size"], 16);
    EXPECT_EQ(r["dataset"], "fashion-mnist");
    ASSERT_EQ(r["epoch_seconds"].size(), 2u);
    // The first epoch (warm-up: allocations, algorithm choices) is left out of the average.
    EXPECT_EQ(r["timed_epochs"], nlohmann::json::array({2}));
    EXPECT_DOUBLE_EQ(r["avg_epoch_seconds"].get<double>(), r["epoch_seconds"][1].get<double>());
    EXPECT_GT(r["throughput"].get<double>(), 0);
    EXPECT_EQ(r["step_seconds"]["count"], 3);  // the second epoch's steps
    EXPECT_EQ(r["sync_each_step"], false);      // the default: host-side step times
    EXPECT_EQ(r["optimizer_kernels"], "fused");
    EXPECT_EQ(r["measured_skipped_steps"], 0);
    EXPECT_GE(r["test_accuracy"].get<double>(), 0.0);
    EXPECT_LE(r["test_accuracy"].get<double>(), 1.0);
    EXPECT_TRUE(r.contains("libtorch_version"));
    EXPECT_TRUE(r.contains("device_name"));
    EXPECT_EQ(r["command"], "resnet_single " + args + " '" + models_flag + "'");
  }
  EXPECT_EQ(records[1]["precision"], "fp32");
  EXPECT_EQ(records[2]["precision"], "bf16");

  for (const std::string name : {"Resnet-18-1gpu.pth", "Resnet-18-mixed-1gpu.pth"}) {
    ResNet model = *MakeResNet(18);
    absl::Status s = LoadStateDict(*model, dir + "/my models/" + name, "ResNet-18");
    EXPECT_TRUE(s.ok()) << s;
  }
}

TEST(ResNetSingleTest, UnknownDepthIsAUsageError) {
  CommandResult run = RunBinary("--depths=18,101 --results= --models_dir=");
  EXPECT_EQ(run.exit_code, 2) << run.output;
  EXPECT_EQ(CountLines(run.output), 1) << run.output;
  EXPECT_NE(run.output.find("101"), std::string::npos) << run.output;
}

TEST(ResNetSingleTest, UnknownFlagAndBadValuesAreUsageErrors) {
  for (const std::string args : {"--no_such_flag=1", "--epochs=many", "--precision=fp8", "--modes=fast",
                                 "--dataset=imagenet", "--optimizer_kernels=apex", "--epochs=0", "--lr=0",
                                 "--batch_size=0", "--eval_batch_size=0", "stray", "--max_steps=-1",
                                 "--test_limit=-3", "--train_limit=-5", "--threads=-1", "--workers=-1",
                                 "--device=tpu"}) {
    CommandResult run = RunBinary(args + " --results= --models_dir=");
    EXPECT_EQ(run.exit_code, 2) << args << ": " << run.output;
    EXPECT_EQ(CountLines(run.output), 1) << args << ": " << run.output;
  }
}

TEST(ResNetSingleTest, AResultsFileThatCannotBeWrittenIsRefusedBeforeTraining) {
  // /proc takes no new files, even from root.
  CommandResult run = RunBinary("--results=/proc/self/r.jsonl --models_dir=");
  EXPECT_EQ(run.exit_code, 2) << run.output;
  EXPECT_EQ(CountLines(run.output), 1) << run.output;
  EXPECT_NE(run.output.find("--results=/proc/self/r.jsonl: cannot write in /proc/self"), std::string::npos)
      << run.output;
}

TEST(ResNetSingleTest, MissingDataDirectoryNamesThePath) {
  CommandResult run = RunBinary("--dataset=cifar10 --data_dir=/nonexistent/cifar --results= --models_dir=");
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_EQ(CountLines(run.output), 1) << run.output;
  EXPECT_NE(run.output.find("/nonexistent/cifar"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("--dataset=synthetic"), std::string::npos) << run.output;
}

TEST(ResNetSingleTest, TruncatedDataFileIsNamed) {
  const std::string dir = TempDir() + "/cifar-truncated";
  std::system(("mkdir -p " + dir).c_str());
  const std::string record(3073, '\1');
  for (int i = 1; i <= 5; ++i) {
    std::ofstream out(dir + "/data_batch_" + std::to_string(i) + ".bin", std::ios::binary);
    for (int r = 0; r < 4; ++r) out << record;
    if (i == 3) out << "partial";  // a torn final record
  }
  std::ofstream(dir + "/test_batch.bin", std::ios::binary) << record;
  CommandResult run = RunBinary("--dataset=cifar10 --data_dir=" + dir + " --results= --models_dir=");
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_EQ(CountLines(run.output), 1) << run.output;
  EXPECT_NE(run.output.find("data_batch_3.bin"), std::string::npos) << run.output;
}

}  // namespace
}  // namespace dlspeed
