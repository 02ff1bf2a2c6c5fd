// Runs roberta_train (two Gloo processes) and roberta_infer end to end on the
// tiny transformers fixture and data files in the study's format: the log
// lines, records, the saved checkpoint folder, the three inference variants,
// two ranks training as one process does on the union of their batches, and
// one-line answers to bad input.
#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "roberta/roberta_checkpoint.h"
#include "tests/subprocess.h"
#include "common/testing/json_lines.h"
#include "common/testing/scratch_dir.h"

namespace dlspeed {
namespace {

const char kFixture[] = "tests/fixtures/roberta_tiny";

// The study's format: <prefix>_ids.txt (a JSON list of id lists) and
// <prefix>_labels.txt (a JSON list of labels); the label follows the second id.
void WriteStudyData(const std::string& prefix, int count, int max_id) {
  nlohmann::json ids = nlohmann::json::array(), labels = nlohmann::json::array();
  for (int i = 0; i < count; ++i) {
    const int label = i % 4;
    std::vector<int> row = {0, 10 + label, 3 + (i * 7) % (max_id - 3)};
    for (int k = 0; k < i % 5; ++k) row.push_back(3 + (i + k) % (max_id - 3));
    row.push_back(2);
    ids.push_back(row);
    labels.push_back(label);
  }
  std::ofstream(prefix + "_ids.txt") << ids.dump();
  std::ofstream(prefix + "_labels.txt") << labels.dump();
}

int CountFileLines(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  int lines = 0;
  while (std::getline(in, line)) ++lines;
  return lines;
}

TEST(RobertaE2eTest, TrainsWithTwoProcessesThenInfersThreeWays) {
  const std::string dir = ScratchDir("roberta_e2e");
  WriteStudyData(dir + "/train", 64, 120);
  WriteStudyData(dir + "/dev", 24, 120);
  CommandResult train = RunCommand(
      std::string("roberta/roberta_train --model_name ") + kFixture + " --nproc 2 --batch-size 4 --max_len 16 " +
      "--epochs 2 --optimizer adamw --lr 1e-3 --train_data " + dir + "/train --dev_data " + dir + "/dev --log " + dir +
      "/perf.log --results " + dir + "/train.jsonl --save_dir " + dir + "/best --sync_each_step");
  ASSERT_EQ(train.exit_code, 0) << train.output;
  EXPECT_NE(train.output.find("2 process(es) (roberta_train)"), std::string::npos) << train.output;
  EXPECT_NE(train.output.find("backend=gloo"), std::string::npos) << train.output;
  EXPECT_NE(train.output.find("Epoch 2 | time "), std::string::npos) << train.output;
  EXPECT_EQ(CountFileLines(dir + "/perf.log"), 2);
  std::vector<nlohmann::json> records = ReadJsonLines(dir + "/train.jsonl");
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0]["binary"], "roberta_train");
  EXPECT_EQ(records[0]["devices"], 2);
  EXPECT_EQ(records[0]["global_batch_size"], 8);
  EXPECT_EQ(records[0]["dev_accuracy"].size(), 2u);
  // Two epochs: the average covers the second, the first being warm-up.
  ASSERT_EQ(records[0]["epoch_seconds"].size(), 2u);
  EXPECT_EQ(records[0]["timed_epochs"], nlohmann::json::array({2}));
  EXPECT_DOUBLE_EQ(records[0]["avg_epoch_seconds"].get<double>(), records[0]["epoch_seconds"][1].get<double>());
  EXPECT_EQ(records[0]["throughput_unit"], "samples/s");
  EXPECT_EQ(records[0]["sync_each_step"], true);
  EXPECT_EQ(records[0]["optimizer_kernels"], "fused");
  EXPECT_EQ(records[0]["measured_skipped_steps"], 0);  // no GradScaler without fp16
  absl::StatusOr<LoadedRoberta> saved = LoadRobertaFolder(dir + "/best");
  ASSERT_TRUE(saved.ok()) << saved.status();
  EXPECT_EQ(saved->model->config().num_labels, 4);

  const std::string infer = "roberta/roberta_infer --model_path " + dir + "/best --dev_data " + dir +
                            "/dev --batch_size 8 --max_len 16 --log " + dir + "/inference.log --results " + dir +
                            "/infer.jsonl";
  for (const char* variant : {"", " --script", " --quantize", " --quantize --script"}) {
    CommandResult run = RunCommand(infer + variant);
    ASSERT_EQ(run.exit_code, 0) << variant << "\n" << run.output;
    EXPECT_NE(run.output.find("accuracy "), std::string::npos) << run.output;
  }
  EXPECT_EQ(CountFileLines(dir + "/inference.log"), 4);
  records = ReadJsonLines(dir + "/infer.jsonl");
  ASSERT_EQ(records.size(), 4u);
  EXPECT_EQ(records[0]["variant"], "eager");
  EXPECT_EQ(records[1]["variant"], "torchscript-frozen");
  EXPECT_EQ(records[2]["variant"], "int8-dynamic");
  EXPECT_EQ(records[0]["accuracy"], records[1]["accuracy"]);  // the same model, scripted
  EXPECT_EQ(records[0]["samples"], 24);
  EXPECT_GE(records[2]["agreement_with_fp32"].get<double>(), 0.9);
  EXPECT_EQ(records[3]["variant"], "int8-dynamic-torchscript");
  EXPECT_EQ(records[3]["accuracy"], records[2]["accuracy"]);  // the same int8 model, scripted
}

// The fixture in `dir` without dropout, whose random masks differ between a
// rank and the single process: training is then the same computation.
std::string FixtureWithoutDropout(const std::string& dir) {
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(std::string(kFixture) + "/model.safetensors", dir + "/model.safetensors");
  nlohmann::json config = nlohmann::json::parse(std::ifstream(std::string(kFixture) + "/config.json"));
  config["hidden_dropout_prob"] = 0.0;
  config["attention_probs_dropout_prob"] = 0.0;
  config["classifier_dropout"] = 0.0;
  std::ofstream(dir + "/config.json") << config.dump();
  return dir;
}

// Largest absolute difference between the parameters of two saved folders.
double MaxParameterDifference(const std::string& a, const std::string& b) {
  absl::StatusOr<LoadedRoberta> first = LoadRobertaFolder(a), second = LoadRobertaFolder(b);
  EXPECT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(second.ok()) << second.status();
  if (!first.ok() || !second.ok()) return 1e9;
  const auto theirs = second->model->named_parameters();
  double worst = 0;
  for (const auto& item : first->model->named_parameters()) {
    const at::Tensor* other = theirs.find(item.key());
    if (other == nullptr) {
      ADD_FAILURE() << item.key() << " missing in " << b;
      continue;
    }
    const at::Tensor difference = item.value().to(at::kDouble) - other->to(at::kDouble);
    worst = std::max(worst, difference.abs().max().item<double>());
  }
  return worst;
}

TEST(RobertaE2eTest, TwoRanksMatchOneProcessOnTheUnionOfTheirBatches) {
  const std::string dir = ScratchDir("roberta_equivalence");
  const std::string model = FixtureWithoutDropout(dir + "/fixture");
  // Two steps of SGD with momentum, every batch padded to the same length.
  const std::string train = "roberta/roberta_train --model_name " + model +
                            " --synthetic_size 64 --max_len 16 --pad_to_max_len --epochs 1 --max_steps 2 "
                            "--lr 0.05 --threads 1 --nolog_file --results= --save_dir " + dir;
  CommandResult two = RunCommand(train + "/two --nproc 2 --batch-size 4");
  ASSERT_EQ(two.exit_code, 0) << two.output;
  CommandResult one = RunCommand(train + "/one --nproc 1 --batch-size 8");
  ASSERT_EQ(one.exit_code, 0) << one.output;
  EXPECT_LT(MaxParameterDifference(dir + "/two", dir + "/one"), 1e-5);
  // The check can fail: the training moved the weights much further than
  // that, and one process on rank 0's batches alone ends elsewhere.
  EXPECT_GT(MaxParameterDifference(dir + "/one", model), 1e-3);
  CommandResult half = RunCommand(train + "/half --nproc 1 --batch-size 4");
  ASSERT_EQ(half.exit_code, 0) << half.output;
  EXPECT_GT(MaxParameterDifference(dir + "/two", dir + "/half"), 1e-4);
}

TEST(RobertaE2eTest, KilledAndResumedEndsBitExactAndSigtermLeavesACheckpoint) {
  const std::string dir = ScratchDir("roberta_resume");
  WriteStudyData(dir + "/train", 64, 120);
  // No dev set: the last epoch's model is saved; dropout is on (its generator is in the checkpoint).
  const std::string flags = std::string("roberta/roberta_train --model_name ") + kFixture +
                            " --batch-size 4 --max_len 16 --epochs 2 --optimizer adamw --lr 1e-3 --threads 1 "
                            "--checkpoint_every 1 --results= --nolog_file --train_data " + dir + "/train ";
  ASSERT_EQ(RunCommand(flags + "--save_dir " + dir + "/whole --checkpoint " + dir + "/whole.ckpt").exit_code, 0);
  EXPECT_NE(RunCommand(flags + "--save_dir " + dir + "/resumed --checkpoint " + dir + "/resumed.ckpt --test_kill_at_step 21")
                .exit_code,
            0);
  // Its steps of 4 sequences are not steps of 8: refused, the checkpoint kept.
  CommandResult other = RunCommand(flags + "--save_dir " + dir + "/resumed --checkpoint " + dir +
                                   "/resumed.ckpt --resume --batch-size 8");
  EXPECT_EQ(other.exit_code, 1) << other.output;
  EXPECT_NE(other.output.find("resumed.ckpt was written with data="), std::string::npos) << other.output;
  EXPECT_NE(other.output.find("batch_size=4"), std::string::npos) << other.output;
  CommandResult resume = RunCommand(flags + "--save_dir " + dir + "/resumed --checkpoint " + dir + "/resumed.ckpt --resume");
  ASSERT_EQ(resume.exit_code, 0) << resume.output;
  EXPECT_NE(resume.output.find("Resuming from "), std::string::npos) << resume.output;
  absl::StatusOr<LoadedRoberta> a = LoadRobertaFolder(dir + "/whole");
  absl::StatusOr<LoadedRoberta> b = LoadRobertaFolder(dir + "/resumed");
  ASSERT_TRUE(a.ok() && b.ok());
  auto pa = a->model->named_parameters();
  auto pb = b->model->named_parameters();
  for (const auto& item : pa) EXPECT_TRUE(item.value().equal(pb[item.key()])) << item.key() << " differs";

  // The tiny fixture keeps the checkpoint small; SIGTERM comes once the data is ready, long before the
  // 16384 steps of the first epoch end.
  CommandResult stopped = RunAndSignalOnOutput("roberta/roberta_train --model_name " + std::string(kFixture) +
                                                   " --max_len 32 --batch-size 4 --epochs 50 --synthetic_size 65536 "
                                                   "--threads 1 --results= --nolog_file --save_dir= --checkpoint " +
                                                   dir + "/stopped.ckpt",
                                               "roberta_train: data: ", SIGTERM);
  EXPECT_EQ(stopped.exit_code, 128 + 15) << stopped.output;
  EXPECT_NE(stopped.output.find("roberta_train: stopped by signal 15 at epoch 1, step "), std::string::npos)
      << stopped.output;
  EXPECT_TRUE(std::ifstream(dir + "/stopped.ckpt").good());
}

TEST(RobertaE2eTest, RanksWaitForRankZerosEvaluationLongerThanTheTimeout) {
  // After its epoch rank 0 alone evaluates, then (for the test) sleeps 10 s:
  // longer than --timeout_s=5. The other rank waits for it instead of timing
  // out in its next collective.
  CommandResult run = RunCommand(std::string("roberta/roberta_train --model_name ") + kFixture +
                                 " --nproc 2 --synthetic_size=64 --epochs=1 --max_steps=1 --batch-size 4 "
                                 "--max_len=32 --timeout_s=5 --test_rank0_pause_s=10 --results= --save_dir= "
                                 "--nolog_file");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("Epoch 1 | "), std::string::npos) << run.output;
}

TEST(RobertaE2eTest, BadInputIsOneLine) {
  const std::string dir = ScratchDir("roberta_bad");
  std::ofstream(dir + "/big_ids.txt") << "[[0, 5, 2], [0, 499, 2]]";  // the fixture's vocabulary is 120
  std::ofstream(dir + "/big_labels.txt") << "[1, 2]";
  std::ofstream(dir + "/broken_ids.txt") << "[[0, 5, 2], [0,";
  std::ofstream(dir + "/broken_labels.txt") << "[1, 2]";
  std::ofstream(dir + "/empty_ids.txt") << "[]";
  std::ofstream(dir + "/empty_labels.txt") << "[]";
  std::ofstream(dir + "/label9_ids.txt") << "[[0, 5, 2], [0, 6, 2]]";
  std::ofstream(dir + "/label9_labels.txt") << "[1, 9]";
  std::ofstream(dir + "/good_ids.txt") << "[[0, 5, 2], [0, 6, 2]]";
  std::ofstream(dir + "/good_labels.txt") << "[1, 2]";
  struct Case {
    std::string command;
    int exit_code;
    std::string mentions;
  };
  const std::string train = "roberta/roberta_train --results= --save_dir= --nolog_file --epochs 1 ";
  const Case cases[] = {
      {train + "--model_name bert-base", 1, "unknown model 'bert-base'"},
      {train + "--optimizer lamb", 2, "unknown optimizer 'lamb'"},
      {train + "--optimizer_kernels apex", 2, "unknown optimizer kernels 'apex'"},
      {train + "--model_name " + kFixture + " --train_data " + dir + "/big", 1, "token id 499"},
      {train + "--model_name " + kFixture + " --train_data " + dir + "/broken", 1, "broken_ids.txt"},
      {train + "--model_name " + kFixture + " --train_data " + dir + "/missing", 1, "missing_ids.txt"},
      {train + "--nproc 0", 2, "--nproc"},
      // Checked by the launcher before it starts the two processes: one line, not one per rank.
      {train + "--nproc 2 --backend mpi", 2, "unknown backend 'mpi'"},
      {train + "--nproc 2 --backend nccl", 1, "--backend=nccl needs GPUs"},
      {train + "--nproc 2 --optimizer adam", 2, "unknown optimizer 'adam'"},
      {train + "--nproc 2 --device tpu", 2, "--device must be auto, cuda or cpu"},
      {train + "--nproc 2 --mixed --precision fp8", 2, "fp8"},
      {"roberta/roberta_infer --results= --log= --device tpu", 2, "--device=tpu"},
      {"roberta/roberta_infer --results= --log= --threads -2", 2, "--threads"},
      {train + "--timeout_s 0", 2, "--timeout_s must be above 0"},
      {train + "--max_len 64 --synthetic_min_len 65", 2, "--synthetic_min_len"},
      {train + "--model_name " + kFixture + " --train_data " + dir + "/empty", 1, "has no training sequences"},
      // The fixture's 40 positions cover 38 tokens; synthetic sequences run up to --max_len.
      {train + "--model_name " + kFixture + " --max_len 39", 1,
       "sequences of 39 tokens (--max_len 39) are longer than the model's 38 positions"},
      {"roberta/roberta_infer --results= --log= --model_path " + dir, 1, "config.json"},
      {std::string("roberta/roberta_infer --results= --log= --max_len 39 --model_path ") + kFixture, 1,
       "sequences of 39 tokens"},
      {std::string("roberta/roberta_infer --results= --log= --model_path ") + kFixture + " --dev_data " + dir +
           "/label9",
       1, "label9: example 1 has label 9 but the model has 4 classes"},
      {std::string("roberta/roberta_infer --results= --log= --model_path ") + kFixture + " --dev_data " + dir +
           "/empty",
       1, "the dev set " + dir + "/empty is empty"},
      {std::string("roberta/roberta_infer --results= --log= --synthetic_size 0 --model_path ") + kFixture, 2,
       "--synthetic_size"},
      // The dev set as the training set is: a bad one is an error, an empty one too.
      {train + "--model_name " + kFixture + " --train_data " + dir + "/good --dev_data " + dir + "/label9", 1,
       "label9: example 1 has label 9"},
      {train + "--model_name " + kFixture + " --train_data " + dir + "/good --dev_data " + dir + "/empty", 1,
       "empty has no dev sequences"},
      {train + "--model_name " + kFixture + " --train_data " + dir + "/label9_ids.txt", 1,
       "a data set is a prefix P of P_ids.txt and P_labels.txt"},
      {train + "--model_name " + kFixture + " --train_data " + dir + "/TRAIN.TSV", 1, "TRAIN.TSV is raw text"},
  };
  for (const Case& c : cases) {
    CommandResult run = RunCommand(c.command);
    EXPECT_EQ(run.exit_code, c.exit_code) << c.command << "\n" << run.output;
    EXPECT_NE(run.output.find(c.mentions), std::string::npos) << c.command << "\n" << run.output;
    EXPECT_EQ(CountLines(run.output), 1) << c.command << "\n" << run.output;
  }
  // Every rank reads the data; rank 0 alone says what is wrong with it, and
  // the launcher which rank stopped first.
  CommandResult ranks = RunCommand(train + "--model_name " + kFixture + " --nproc 2 --train_data " + dir + "/big");
  EXPECT_EQ(ranks.exit_code, 1) << ranks.output;
  const size_t first = ranks.output.find("token id 499");
  ASSERT_NE(first, std::string::npos) << ranks.output;
  EXPECT_EQ(ranks.output.find("token id 499", first + 1), std::string::npos) << ranks.output;
  EXPECT_LE(CountLines(ranks.output), 2) << ranks.output;
}

}  // namespace
}  // namespace dlspeed
