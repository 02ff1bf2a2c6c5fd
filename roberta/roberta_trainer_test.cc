// RobertaTrainer learns: a tiny RoBERTa trained from random weights with AdamW
// classifies a task that can only be solved by reading the tokens (which of
// four signal groups a sequence holds, at random places among noise, with
// padding in every batch) far above chance, in fp32 and in bf16 autocast.
// roberta_e2e_test trains on random labels, which shows only that the loss falls.
#include "roberta/roberta_trainer.h"

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/amp.h"
#include "roberta/test_config.h"

namespace dlspeed {
namespace {

constexpr int64_t kMaxLen = 24;

// tools/make_token_task.py's task at a small vocabulary: a sequence of class c
// holds 3 ids of group c (10+5c .. 14+5c) among 8 to 16 noise ids (30..99).
TextDataset TokenTask(int64_t size, uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto uniform = [&](int64_t low, int64_t high) { return std::uniform_int_distribution<int64_t>(low, high)(rng); };
  TextDataset data;
  data.num_labels = 4;
  for (int64_t i = 0; i < size; ++i) {
    const int64_t label = uniform(0, 3);
    const int64_t length = uniform(8, 16);
    std::vector<int64_t> ids(length + 2);
    ids.front() = 0;  // <s>
    ids.back() = 2;   // </s>
    for (int64_t j = 1; j <= length; ++j) ids[j] = uniform(30, 99);
    std::vector<int64_t> places(length);
    std::iota(places.begin(), places.end(), 1);
    std::shuffle(places.begin(), places.end(), rng);
    for (int k = 0; k < 3; ++k) ids[places[k]] = 10 + 5 * label + uniform(0, 4);
    data.ids.push_back(std::move(ids));
    data.labels.push_back(label);
  }
  return data;
}

RobertaConfig TinyConfig() { return SmallRobertaConfig(/*vocab_size=*/100, /*hidden_size=*/32, kMaxLen + 2); }

class RobertaTrainerTest : public ::testing::TestWithParam<Precision> {};

TEST_P(RobertaTrainerTest, LearnsATaskThatNeedsTheTokens) {
  torch::manual_seed(0);
  const TextDataset train = TokenTask(2048, 1);
  const TextDataset dev = TokenTask(512, 2);
  TextBatchOptions batching;
  batching.batch_size = 32;
  batching.max_len = kMaxLen;
  TextBatcher batcher(train, batching);
  constexpr int64_t kEpochs = 4;
  RobertaTrainOptions options;
  options.precision = GetParam();
  options.optimizer = RobertaOptimizer::kAdamW;
  options.lr = 1e-3;
  options.weight_decay = 0.01;
  options.total_steps = kEpochs * batcher.batches_per_epoch();
  options.warmup_steps = options.total_steps / 10;
  RobertaTrainer trainer(RobertaClassifier(TinyConfig()), options);

  const double before = trainer.Evaluate(dev, /*batch_size=*/64, kMaxLen);
  for (int64_t epoch = 0; epoch < kEpochs; ++epoch) trainer.TrainEpoch(batcher, epoch);
  const double after = trainer.Evaluate(dev, /*batch_size=*/64, kMaxLen);
  EXPECT_GE(after, 0.9) << "dev accuracy " << before << " before training (chance: 0.25)";
  EXPECT_EQ(trainer.steps_taken(), options.total_steps);
}

INSTANTIATE_TEST_SUITE_P(Precisions, RobertaTrainerTest, ::testing::Values(Precision::kFp32, Precision::kBf16),
                         [](const ::testing::TestParamInfo<Precision>& info) { return PrecisionName(info.param); });

}  // namespace
}  // namespace dlspeed
