// Runs resnet_gpu_script end to end. Without a GPU (RunCommand hides them)
// it must refuse in one line, and --device=cpu must run the same comparison
// (eager and frozen TorchScript, fp32 and bf16 channels_last; CUDA graphs
// skipped) on a model resnet_single trains here. tools/gpu_check.sh runs the
// GPU half.
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/subprocess.h"
#include "common/testing/json_lines.h"
#include "common/testing/scratch_dir.h"

namespace dlspeed {
namespace {

std::string Dir() { return ScratchPath("gpu_script"); }

std::string TrainedModel() {
  static const std::string path = [] {
    std::system(("rm -rf " + Dir() + " && mkdir -p " + Dir()).c_str());
    CommandResult train = RunCommand("resnet/resnet_single --depths=18 --modes=fp32 --epochs=1 --max_steps=5 "
                                     "--batch_size=32 --train_limit=320 --test_limit=10 --workers=1 --results= "
                                     "--models_dir=" + Dir() + "/models");
    EXPECT_EQ(train.exit_code, 0) << train.output;
    return Dir() + "/models/Resnet-18-1gpu.pth";
  }();
  return path;
}

TEST(ResNetGpuScriptTest, CpuComparisonRunsEveryVariantButCudaGraphs) {
  const std::string results = Dir() + "/results.jsonl";
  CommandResult run = RunCommand("resnet/resnet_gpu_script -m 0 -r 18 --device=cpu --test_limit=64 --warmup_batches=1 "
                                 "--passes=2 --model=" + TrainedModel() + " --results=" + results);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  for (const char* line : {"Model is Resnet-18", "eager fp32: Accuracy of the network on the 64 test images: ",
                           "torchscript fp32: Accuracy", "eager bf16 channels_last: Accuracy",
                           "torchscript bf16 channels_last: Accuracy", "cuda-graph fp32: skipped",
                           "cuda-graph-frozen bf16: skipped", "Time used: "}) {
    EXPECT_NE(run.output.find(line), std::string::npos) << "missing '" << line << "' in:\n" << run.output;
  }
  const std::vector<nlohmann::json> records = ReadJsonLines(results);
  ASSERT_EQ(records.size(), 4u);
  EXPECT_EQ(records[0]["variant"], "eager");
  EXPECT_EQ(records[1]["variant"], "torchscript");
  EXPECT_EQ(records[2]["precision"], "bf16");
  EXPECT_EQ(records[2]["channels_last"], true);
  // The frozen module computes what the eager model does.
  EXPECT_EQ(records[0]["test_accuracy"], records[1]["test_accuracy"]);
  for (const auto& r : records) {
    EXPECT_GT(r["throughput"].get<double>(), 0);
    EXPECT_EQ(r["passes"], 2);
    EXPECT_EQ(r["batch_seconds"]["count"], 4);  // two passes of two batches of 32
  }
}

TEST(ResNetGpuScriptTest, BadInputIsOneLine) {
  struct Case {
    std::string args;
    int exit_code;
    std::string mentions;
  };
  const std::vector<Case> cases = {
      {"-r 101", 2, "-r must be 18, 34 or 50"},
      {"-r 18 --variants=eager,xla", 2, "unknown variant 'xla'"},
      {"-r 18 --passes=0", 2, "--passes must be at least 1"},
      {"-r 18 --device=cpu --model=" + Dir() + "/absent.pth", 1, "resnet_single"},
      {"-r 18 --variants=,", 2, "--variants names none of"},
      {"-r 18 --device=tpu", 2, "--device"},
      {"-r 18", 1, "no GPU here"},  // RunCommand hides the GPUs
      {"-r 18 --device=auto", 1, "no GPU here"},
  };
  for (const Case& c : cases) {
    CommandResult run = RunCommand("resnet/resnet_gpu_script " + c.args + " --results= --test_limit=8");
    EXPECT_EQ(run.exit_code, c.exit_code) << c.args << "\n" << run.output;
    EXPECT_NE(run.output.find(c.mentions), std::string::npos) << c.args << "\n" << run.output;
    // The model line precedes a model error; everything else is one line.
    EXPECT_LE(CountLines(run.output), c.mentions == "resnet_single" ? 2 : 1) << c.args << "\n" << run.output;
  }
}

}  // namespace
}  // namespace dlspeed
