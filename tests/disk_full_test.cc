// A full disk, for real: each run happens in its own mount namespace on a
// tmpfs of a few pages (`unshare -rm`, no root needed), which already holds
// the files of an earlier run. The binary must fail with one line naming the
// file and "No space left on device", exit non-zero, leave the earlier files
// byte for byte as they were and leave no temporary file behind.
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/testing/scratch_dir.h"
#include "tests/subprocess.h"

namespace dlspeed {
namespace {

constexpr char kOldModel[] = "an earlier model";
constexpr char kOldRecord[] = "{\"earlier\": true}";

// Runs `command` (where $D is the tmpfs, holding models/Resnet-18-1gpu.pth,
// roberta/model.safetensors and results.jsonl from an earlier run), then
// prints what the tmpfs holds afterwards, since it vanishes with the namespace.
CommandResult RunOnFullDisk(const std::string& command) {
  const std::string dir = ScratchDir("disk_full");
  const std::string script =
      "set -e; D=" + dir + "; mount -t tmpfs -o size=32k tmpfs \"$D\"; mkdir \"$D/models\" \"$D/roberta\"; "
      "printf '" + kOldModel + "' > \"$D/models/Resnet-18-1gpu.pth\"; "
      "printf '" + kOldModel + "' > \"$D/roberta/model.safetensors\"; "
      "printf '%s\\n' '" + kOldRecord + "' > \"$D/results.jsonl\"; set +e; " +
      command + "; echo \"exit=$?\"; cd \"$D\"; "
      "echo \"files: $(find . -mindepth 1 | sort | tr '\\n' ' ')\"; "
      "echo \"model: $(cat models/Resnet-18-1gpu.pth)\"; echo \"safetensors: $(cat roberta/model.safetensors)\"; "
      "echo \"results: $(cat results.jsonl)\"";
  const std::string script_path = ScratchPath("disk_full.sh");
  std::ofstream(script_path) << script << "\n";
  return RunCommand("unshare -rm sh " + script_path + " 2>&1");
}

bool NamespacesWork() {
  return RunCommand("unshare -rm sh -c 'mount -t tmpfs -o size=4k tmpfs /tmp' 2>&1").exit_code == 0;
}

// The lines of `output` that contain `text`.
std::vector<std::string> LinesWith(const std::string& output, const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < output.size()) {
    size_t end = output.find('\n', start);
    if (end == std::string::npos) end = output.size();
    std::string line = output.substr(start, end - start);
    if (line.find(text) != std::string::npos) lines.push_back(line);
    start = end + 1;
  }
  return lines;
}

void ExpectEarlierFilesIntact(const std::string& output) {
  EXPECT_NE(output.find(std::string("model: ") + kOldModel + "\n"), std::string::npos) << output;
  EXPECT_NE(output.find(std::string("safetensors: ") + kOldModel + "\n"), std::string::npos) << output;
  EXPECT_NE(output.find(std::string("results: ") + kOldRecord), std::string::npos) << output;
  EXPECT_EQ(output.find(".tmp."), std::string::npos) << "a temporary file was left behind:\n" << output;
}

// The run failed (non-zero exit) with one "No space left on device" line that
// names `file`, and left the earlier files as they were.
void ExpectFailedOnAFullDisk(const CommandResult& run, const std::string& file) {
  ASSERT_EQ(run.exit_code, 0) << "the script around the binary failed:\n" << run.output;
  EXPECT_NE(run.output.find("exit="), std::string::npos) << run.output;
  EXPECT_EQ(run.output.find("exit=0"), std::string::npos) << run.output;
  const auto errors = LinesWith(run.output, "No space left on device");
  ASSERT_EQ(errors.size(), 1u) << run.output;
  EXPECT_NE(errors[0].find(file), std::string::npos) << errors[0];
  ExpectEarlierFilesIntact(run.output);
}

TEST(DiskFullTest, ResNetSingleKeepsTheEarlierModelAndRecords) {
  if (!NamespacesWork()) GTEST_SKIP() << "unshare -rm cannot mount a tmpfs on this host";
  ExpectFailedOnAFullDisk(
      RunOnFullDisk("resnet/resnet_single --depths=18 --modes=fp32 --epochs=1 --max_steps=1 --batch_size=8 "
                    "--train_limit=8 --test_limit=8 --workers=1 --threads=1 --models_dir=$D/models "
                    "--results=$D/results.jsonl"),
      "Resnet-18-1gpu");
}

TEST(DiskFullTest, ResNetSingleCheckpointOnAFullDiskStopsTheRun) {
  if (!NamespacesWork()) GTEST_SKIP() << "unshare -rm cannot mount a tmpfs on this host";
  CommandResult run = RunOnFullDisk(
      "resnet/resnet_single --depths=18 --modes=fp32 --epochs=3 --max_steps=2 --batch_size=8 --train_limit=16 "
      "--test_limit=8 --workers=1 --threads=1 --checkpoint_every=1 --models_dir=$D/models --results=$D/results.jsonl");
  ExpectFailedOnAFullDisk(run, "Resnet-18-1gpu.ckpt");
  EXPECT_TRUE(LinesWith(run.output, "epoch 2/3").empty()) << "training went on without its checkpoint:\n"
                                                          << run.output;
}

TEST(DiskFullTest, RobertaTrainKeepsTheEarlierModel) {
  if (!NamespacesWork()) GTEST_SKIP() << "unshare -rm cannot mount a tmpfs on this host";
  ExpectFailedOnAFullDisk(
      RunOnFullDisk("roberta/roberta_train --model_name tests/fixtures/roberta_tiny --batch-size 4 --max_len 16 "
                    "--epochs 1 --synthetic_size 16 --threads 1 --nolog_file --save_dir $D/roberta "
                    "--results=$D/results.jsonl"),
      "roberta/model.safetensors");
}

}  // namespace
}  // namespace dlspeed
