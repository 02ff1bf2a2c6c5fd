#include "roberta/text_data.h"
#include "common/testing/scratch_dir.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

// See text_data.cc: Debian's sentencepiece header and Debian's Abseil both
// define absl::string_view.
#define absl dlspeed_sentencepiece_absl
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>
#undef absl

namespace dlspeed {
namespace {

using ::testing::HasSubstr;

std::string TempDir() {
  static const std::string dir = ScratchDir("text_data");
  return dir;
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  ASSERT_TRUE(out.good()) << path;
}

// Writes <dir>/<name>_ids.txt and _labels.txt (nullptr: no file) and returns the prefix.
std::string WritePair(const std::string& name, const char* ids, const char* labels) {
  const std::string prefix = TempDir() + "/" + name;
  std::remove((prefix + "_ids.txt").c_str());
  std::remove((prefix + "_labels.txt").c_str());
  if (ids != nullptr) WriteFile(prefix + "_ids.txt", ids);
  if (labels != nullptr) WriteFile(prefix + "_labels.txt", labels);
  return prefix;
}

std::vector<int64_t> Row(const at::Tensor& t, int64_t r) {
  at::Tensor row = t[r].contiguous();
  return std::vector<int64_t>(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + row.numel());
}

std::vector<int64_t> ToVector(const at::Tensor& t) {
  at::Tensor c = t.contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

// n examples; example i has label i (num_labels n) and length 2 + i % 5.
TextDataset Numbered(int64_t n) {
  TextDataset data;
  for (int64_t i = 0; i < n; ++i) {
    std::vector<int64_t> ids = {kTextBosId};
    for (int64_t j = 0; j < i % 5; ++j) ids.push_back(10 + j);
    ids.push_back(kTextEosId);
    data.ids.push_back(ids);
    data.labels.push_back(i);
  }
  data.num_labels = n;
  return data;
}

std::vector<TextBatch> Epoch(TextBatcher& batcher, int64_t epoch) {
  batcher.StartEpoch(epoch);
  std::vector<TextBatch> batches;
  while (std::optional<TextBatch> batch = batcher.Next()) batches.push_back(std::move(*batch));
  return batches;
}

// The epoch's samples (their labels, see Numbered), in order.
std::vector<int64_t> Order(const std::vector<TextBatch>& batches) {
  std::vector<int64_t> order;
  for (const TextBatch& b : batches) {
    for (int64_t label : ToVector(b.labels)) order.push_back(label);
  }
  return order;
}

TextBatchOptions Options(int64_t batch_size) {
  TextBatchOptions options;
  options.batch_size = batch_size;
  options.seed = 5;
  return options;
}

// ---------------------------------------------------------------- reading ids

TEST(TextDataTest, ReadsIdsAndLabels) {
  const std::string prefix = WritePair("pair", "[[0, 5, 6, 2], [0, 7, 2]]", "[1, 3]");
  absl::StatusOr<TextDataset> data = ReadIdsAndLabels(prefix);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->size(), 2);
  EXPECT_EQ(data->ids, (std::vector<std::vector<int64_t>>{{0, 5, 6, 2}, {0, 7, 2}}));
  EXPECT_EQ(data->labels, (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(data->num_labels, 4);
  EXPECT_EQ(LongestSequence(*data), 4);
}

TEST(TextDataTest, ReadsPrettyPrintedAndEmptyArrays) {
  absl::StatusOr<TextDataset> pretty =
      ReadIdsAndLabels(WritePair("pretty", "[\n  [0, 5, 2],\n  [0, 6, 2]\n]\n", "[\n 0,\n 0\n]\n"));
  ASSERT_TRUE(pretty.ok()) << pretty.status();
  EXPECT_EQ(pretty->size(), 2);
  EXPECT_EQ(pretty->num_labels, 1);
  absl::StatusOr<TextDataset> empty = ReadIdsAndLabels(WritePair("empty_arrays", "[]", "[]"));
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(empty->size(), 0);
  EXPECT_EQ(empty->num_labels, 0);
  EXPECT_EQ(LongestSequence(*empty), 0);
}

TEST(TextDataTest, ReadsJsonLinesIds) {
  absl::StatusOr<TextDataset> data =
      ReadIdsAndLabels(WritePair("jsonl", "[0, 5, 2]\n\n[0, 6, 7, 2]\r\n[0, 2]\n", "[2, 0, 1]"));
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->ids, (std::vector<std::vector<int64_t>>{{0, 5, 2}, {0, 6, 7, 2}, {0, 2}}));
  EXPECT_EQ(data->labels, (std::vector<int64_t>{2, 0, 1}));
  EXPECT_EQ(data->num_labels, 3);
  // One line is one example.
  absl::StatusOr<TextDataset> one = ReadIdsAndLabels(WritePair("jsonl_one", "[0, 9, 2]\n", "[0]"));
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(one->ids, (std::vector<std::vector<int64_t>>{{0, 9, 2}}));
}

TEST(TextDataTest, ReadErrorsNameTheFile) {
  struct Case {
    const char* name;
    const char* ids;     // nullptr: no file
    const char* labels;  // nullptr: no file
    absl::StatusCode code;
    const char* file;    // "ids", "labels" or "both"
    const char* detail;  // expected in the message
  };
  const std::vector<Case> cases = {
      {"no_ids", nullptr, "[0]", absl::StatusCode::kNotFound, "ids", "cannot open"},
      {"no_labels", "[[0, 2]]", nullptr, absl::StatusCode::kNotFound, "labels", "cannot open"},
      {"ids_not_json", "[[0, 5, 2], [0,", "[0, 1]", absl::StatusCode::kDataLoss, "ids", "not JSON"},
      {"ids_empty_file", "", "[]", absl::StatusCode::kDataLoss, "ids", "empty"},
      {"labels_not_json", "[[0, 2]]", "[1,", absl::StatusCode::kDataLoss, "labels", "not JSON"},
      {"ids_object", "{\"ids\": [[0, 2]]}", "[0]", absl::StatusCode::kInvalidArgument, "ids",
       "JSON array"},
      {"ids_not_nested", "[[0, 5, 2], 7]", "[0, 1]", absl::StatusCode::kInvalidArgument, "ids",
       "element 1 is not an array"},
      {"ids_string", "[[0, 5, 2], [0, \"x\", 2]]", "[0, 1]", absl::StatusCode::kInvalidArgument, "ids",
       "element 1, position 1"},
      {"ids_float", "[[0, 5.5, 2]]", "[0]", absl::StatusCode::kInvalidArgument, "ids",
       "element 0, position 1"},
      {"ids_negative", "[[0, 2], [0, -5, 2]]", "[0, 1]", absl::StatusCode::kInvalidArgument, "ids",
       "element 1, position 1: -5"},
      {"ids_empty_example", "[[0, 2], []]", "[0, 1]", absl::StatusCode::kInvalidArgument, "ids",
       "element 1 is an empty array"},
      {"jsonl_bad_line", "[0, 2]\n[0, 3, 2]\n[0,\n", "[0, 1, 2]", absl::StatusCode::kDataLoss, "ids",
       "line 3 is not JSON"},
      {"jsonl_not_array", "[0, 2]\n7\n", "[0, 1]", absl::StatusCode::kInvalidArgument, "ids",
       "line 2 is not an array"},
      {"jsonl_negative", "[0, 2]\n[0, -1, 2]\n", "[0, 1]", absl::StatusCode::kInvalidArgument, "ids",
       "line 2, position 1"},
      {"labels_object", "[[0, 2]]", "{\"a\": 1}", absl::StatusCode::kInvalidArgument, "labels",
       "JSON array"},
      {"labels_negative", "[[0, 2], [0, 2]]", "[0, -1]", absl::StatusCode::kInvalidArgument, "labels",
       "element 1: -1"},
      {"labels_float", "[[0, 2]]", "[1.5]", absl::StatusCode::kInvalidArgument, "labels",
       "element 0: 1.5"},
      {"labels_nested", "[[0, 2]]", "[[1]]", absl::StatusCode::kInvalidArgument, "labels", "element 0"},
      {"length_mismatch", "[[0, 2], [0, 2]]", "[0, 1, 1]", absl::StatusCode::kInvalidArgument, "both",
       "has 2 examples but"},
      // 1 + the largest label is the number of classes: it must not overflow.
      {"labels_huge", "[[0, 2]]", "[9223372036854775807]", absl::StatusCode::kInvalidArgument, "labels",
       "element 0: label 9223372036854775807 is beyond the largest allowed"},
  };
  for (const Case& c : cases) {
    const std::string prefix = WritePair(c.name, c.ids, c.labels);
    absl::StatusOr<TextDataset> data = ReadIdsAndLabels(prefix);
    ASSERT_FALSE(data.ok()) << c.name;
    EXPECT_EQ(data.status().code(), c.code) << c.name << ": " << data.status();
    const std::string message(data.status().message());
    const std::string file(c.file);
    if (file == "ids" || file == "both") {
      EXPECT_THAT(message, HasSubstr(prefix + "_ids.txt")) << c.name;
    }
    if (file == "labels" || file == "both") {
      EXPECT_THAT(message, HasSubstr(prefix + "_labels.txt")) << c.name;
    }
    EXPECT_THAT(message, HasSubstr(c.detail)) << c.name;
    EXPECT_EQ(message.find('\n'), std::string::npos) << c.name << ": not one line";
  }
}

// A hostile file nests arrays deeper than a recursive printer's stack allows:
// the error describes the value instead of printing it.
TEST(TextDataTest, DeeplyNestedArraysAreAnErrorNotACrash) {
  const int depth = 200000;
  const std::string nested = std::string(depth, '[') + std::string(depth, ']');
  absl::StatusOr<TextDataset> ids = ReadIdsAndLabels(WritePair("deep_ids", nested.c_str(), "[0]"));
  EXPECT_EQ(ids.status().code(), absl::StatusCode::kInvalidArgument) << ids.status();
  EXPECT_THAT(std::string(ids.status().message()), HasSubstr("an array of 1 elements"));
  absl::StatusOr<TextDataset> labels = ReadIdsAndLabels(WritePair("deep_labels", "[[0, 2]]", nested.c_str()));
  EXPECT_EQ(labels.status().code(), absl::StatusCode::kInvalidArgument) << labels.status();
}

TEST(TextDataTest, ADirectoryIsNamedAsOne) {
  const std::string prefix = TempDir() + "/dir";
  std::filesystem::create_directories(prefix + "_ids.txt");
  absl::StatusOr<TextDataset> data = ReadIdsAndLabels(prefix);
  EXPECT_EQ(data.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(data.status().message()), HasSubstr(prefix + "_ids.txt is a directory"));
}

TEST(TextDataTest, LoadTextDataSaysWhatAPrefixIs) {
  const std::string prefix = WritePair("load", "[[0, 5, 2], [0, 6, 7, 2]]", "[0, 3]");
  absl::StatusOr<TextDataset> data = LoadTextData(prefix, nullptr, 16);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->size(), 2);
  absl::StatusOr<TextDataset> file_name = LoadTextData(prefix + "_ids.txt", nullptr, 16);
  EXPECT_EQ(file_name.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(file_name.status().message()), HasSubstr("a prefix P of P_ids.txt and P_labels.txt"));
  // Raw text in any case needs a tokenizer.
  EXPECT_TRUE(IsTsvPath("data/TRAIN.TSV"));
  EXPECT_FALSE(IsTsvPath(".tsv"));
  absl::StatusOr<TextDataset> raw = LoadTextData(TempDir() + "/train.Tsv", nullptr, 16);
  EXPECT_EQ(raw.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(raw.status().message()), HasSubstr("give --tokenizer"));
}

TEST(TextDataTest, CheckTextDataFitsModelNamesSourceAndExample) {
  const std::string prefix = WritePair("fits", "[[0, 5, 2], [0, 6, 7, 2]]", "[0, 3]");
  absl::StatusOr<TextDataset> data = ReadIdsAndLabels(prefix);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_TRUE(CheckTextDataFitsModel(*data, "dev", 4, 8).ok());
  absl::Status labels = CheckTextDataFitsModel(*data, "dev", 3, 8);
  EXPECT_EQ(labels.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(labels.message()), HasSubstr("dev: example 1 has label 3 but the model has 3 classes"));
  absl::Status ids = CheckTextDataFitsModel(*data, "dev", 4, 7);
  EXPECT_THAT(std::string(ids.message()), HasSubstr("dev: example 1 has token id 7"));
}

// ---------------------------------------------------------------- synthetic

TEST(TextDataTest, SyntheticIsSeededAndInRange) {
  const TextDataset a = SyntheticText(500, 3, 20, 1000, 4, /*seed=*/7);
  const TextDataset b = SyntheticText(500, 3, 20, 1000, 4, /*seed=*/7);
  const TextDataset c = SyntheticText(500, 3, 20, 1000, 4, /*seed=*/8);
  EXPECT_EQ(a.ids, b.ids);
  EXPECT_EQ(a.labels, b.labels);
  EXPECT_NE(a.ids, c.ids);
  EXPECT_EQ(a.size(), 500);
  EXPECT_EQ(a.num_labels, 4);
  std::set<int64_t> lengths, labels;
  for (int64_t i = 0; i < a.size(); ++i) {
    const std::vector<int64_t>& ids = a.ids[i];
    ASSERT_GE(ids.size(), 3u);
    ASSERT_LE(ids.size(), 20u);
    lengths.insert(ids.size());
    EXPECT_EQ(ids.front(), kTextBosId);
    EXPECT_EQ(ids.back(), kTextEosId);
    for (size_t j = 1; j + 1 < ids.size(); ++j) {
      EXPECT_GE(ids[j], 3);
      EXPECT_LT(ids[j], 1000);
    }
    EXPECT_GE(a.labels[i], 0);
    EXPECT_LT(a.labels[i], 4);
    labels.insert(a.labels[i]);
  }
  EXPECT_EQ(lengths.size(), 18u);  // every length in [3, 20] occurs
  EXPECT_EQ(labels.size(), 4u);
  EXPECT_TRUE(CheckTextBatchOptions(a, TextBatchOptions()).ok());
  // Clamped arguments.
  const TextDataset d = SyntheticText(3, 0, 1, 2, 0, 1);
  EXPECT_EQ(d.num_labels, 1);
  for (const std::vector<int64_t>& ids : d.ids) EXPECT_EQ(ids, (std::vector<int64_t>{0, 2}));
}

// ---------------------------------------------------------------- batches

TEST(TextBatcherTest, PadsToLongestAndMasksPadding) {
  TextDataset data;
  data.ids = {{0, 11, 12, 2}, {0, 2}, {0, 13, 14, 15, 16, 2}, {0, 17, 2}};
  data.labels = {1, 0, 2, 1};
  data.num_labels = 3;
  TextBatchOptions options = Options(3);
  options.shuffle = false;
  TextBatcher batcher(data, options);
  EXPECT_EQ(batcher.batches_per_epoch(), 2);
  EXPECT_EQ(batcher.samples_per_epoch(), 4);
  std::vector<TextBatch> batches = Epoch(batcher, 0);
  ASSERT_EQ(batches.size(), 2u);
  const TextBatch& first = batches[0];
  EXPECT_EQ(first.index, 0);
  EXPECT_EQ(first.input_ids.scalar_type(), at::kLong);
  EXPECT_EQ(first.attention_mask.scalar_type(), at::kLong);
  EXPECT_EQ(first.labels.scalar_type(), at::kLong);
  EXPECT_EQ(first.input_ids.sizes(), (std::vector<int64_t>{3, 6}));
  EXPECT_EQ(first.attention_mask.sizes(), (std::vector<int64_t>{3, 6}));
  EXPECT_EQ(Row(first.input_ids, 0), (std::vector<int64_t>{0, 11, 12, 2, 1, 1}));
  EXPECT_EQ(Row(first.input_ids, 1), (std::vector<int64_t>{0, 2, 1, 1, 1, 1}));
  EXPECT_EQ(Row(first.input_ids, 2), (std::vector<int64_t>{0, 13, 14, 15, 16, 2}));
  EXPECT_EQ(Row(first.attention_mask, 0), (std::vector<int64_t>{1, 1, 1, 1, 0, 0}));
  EXPECT_EQ(Row(first.attention_mask, 1), (std::vector<int64_t>{1, 1, 0, 0, 0, 0}));
  EXPECT_EQ(Row(first.attention_mask, 2), (std::vector<int64_t>{1, 1, 1, 1, 1, 1}));
  EXPECT_EQ(ToVector(first.labels), (std::vector<int64_t>{1, 0, 2}));
  EXPECT_TRUE(first.padded);
  EXPECT_TRUE(ModelMask(first, at::kCPU).equal(first.attention_mask));
  // The last, partial batch is padded to its own longest sequence.
  const TextBatch& last = batches[1];
  EXPECT_FALSE(last.padded);  // one full row: the model takes no mask
  EXPECT_FALSE(ModelMask(last, at::kCPU).defined());
  EXPECT_EQ(last.index, 1);
  EXPECT_EQ(last.input_ids.sizes(), (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(Row(last.input_ids, 0), (std::vector<int64_t>{0, 17, 2}));
  EXPECT_EQ(ToVector(last.labels), (std::vector<int64_t>{1}));
  EXPECT_FALSE(batcher.Next().has_value());  // stays finished
}

TEST(TextBatcherTest, CustomPadId) {
  TextDataset data;
  data.ids = {{0, 5, 2}, {0, 2}};
  data.labels = {0, 0};
  data.num_labels = 1;
  TextBatchOptions options = Options(2);
  options.shuffle = false;
  options.pad_id = 0;
  TextBatcher batcher(data, options);
  std::vector<TextBatch> batches = Epoch(batcher, 0);
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_EQ(Row(batches[0].input_ids, 1), (std::vector<int64_t>{0, 2, 0}));
  EXPECT_EQ(Row(batches[0].attention_mask, 1), (std::vector<int64_t>{1, 1, 0}));
}

TEST(TextBatcherTest, TruncationKeepsEos) {
  TextDataset data;
  data.ids = {{0, 10, 11, 12, 13, 14, 2}, {0, 20, 21, 2}, {0, 2}};
  data.labels = {0, 1, 0};
  data.num_labels = 2;
  TextBatchOptions options = Options(3);
  options.shuffle = false;
  options.max_len = 4;
  TextBatcher batcher(data, options);
  std::vector<TextBatch> batches = Epoch(batcher, 0);
  ASSERT_EQ(batches.size(), 1u);
  const TextBatch& b = batches[0];
  EXPECT_EQ(b.input_ids.sizes(), (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(Row(b.input_ids, 0), (std::vector<int64_t>{0, 10, 11, 2}));  // first 3, then </s>
  EXPECT_EQ(Row(b.input_ids, 1), (std::vector<int64_t>{0, 20, 21, 2}));  // exactly max_len
  EXPECT_EQ(Row(b.input_ids, 2), (std::vector<int64_t>{0, 2, 1, 1}));
  EXPECT_EQ(Row(b.attention_mask, 0), (std::vector<int64_t>{1, 1, 1, 1}));
  EXPECT_EQ(Row(b.attention_mask, 2), (std::vector<int64_t>{1, 1, 0, 0}));
  EXPECT_TRUE(b.padded);
  // max_len 2 keeps only the framing.
  options.max_len = 2;
  TextBatcher tiny(data, options);
  std::vector<TextBatch> tiny_batches = Epoch(tiny, 0);
  EXPECT_EQ(Row(tiny_batches[0].input_ids, 0), (std::vector<int64_t>{0, 2}));
  EXPECT_FALSE(tiny_batches[0].padded);  // every row truncated to the same width
}

TEST(TextBatcherTest, PadToMaxLenShapes) {
  const TextDataset data = SyntheticText(50, 3, 10, 100, 2, /*seed=*/1);
  TextBatchOptions options = Options(16);
  options.max_len = 32;
  options.pad_to_max_len = true;
  TextBatcher batcher(data, options);
  std::vector<TextBatch> batches = Epoch(batcher, 0);
  ASSERT_EQ(batches.size(), 4u);
  for (size_t i = 0; i < batches.size(); ++i) {
    const int64_t rows = i + 1 < batches.size() ? 16 : 2;
    EXPECT_EQ(batches[i].input_ids.sizes(), (std::vector<int64_t>{rows, 32}));
    EXPECT_EQ(batches[i].attention_mask.sizes(), (std::vector<int64_t>{rows, 32}));
    EXPECT_EQ(batches[i].labels.sizes(), (std::vector<int64_t>{rows}));
    // The mask counts each row's tokens, and padding is pad_id.
    const at::Tensor lengths = batches[i].attention_mask.sum(1);
    EXPECT_TRUE(at::equal(batches[i].input_ids.eq(1).logical_not(), batches[i].attention_mask.to(at::kBool)));
    EXPECT_LE(lengths.max().item<int64_t>(), 10);
  }
}

TEST(TextBatcherTest, DynamicPaddingShapes) {
  const TextDataset data = SyntheticText(100, 2, 40, 100, 2, /*seed=*/2);
  TextBatchOptions options = Options(8);
  options.max_len = 36;
  TextBatcher batcher(data, options);
  batcher.StartEpoch(3);
  int64_t batches = 0;
  bool some_short = false;
  while (std::optional<TextBatch> b = batcher.Next()) {
    ++batches;
    // Width is the batch's longest (truncated) sequence.
    const at::Tensor lengths = b->attention_mask.sum(1);
    EXPECT_EQ(b->input_ids.size(1), lengths.max().item<int64_t>());
    EXPECT_LE(b->input_ids.size(1), 36);
    some_short = some_short || b->input_ids.size(1) < 36;
    for (int64_t r = 0; r < b->input_ids.size(0); ++r) {
      const int64_t length = lengths[r].item<int64_t>();
      EXPECT_EQ(b->input_ids[r][0].item<int64_t>(), kTextBosId);
      EXPECT_EQ(b->input_ids[r][length - 1].item<int64_t>(), kTextEosId);
    }
  }
  EXPECT_EQ(batches, 13);
  EXPECT_TRUE(some_short);
}

TEST(TextBatcherTest, DropLast) {
  const TextDataset data = Numbered(10);
  TextBatchOptions options = Options(4);
  options.drop_last = true;
  TextBatcher batcher(data, options);
  EXPECT_EQ(batcher.batches_per_epoch(), 2);
  std::vector<TextBatch> batches = Epoch(batcher, 0);
  ASSERT_EQ(batches.size(), 2u);
  EXPECT_EQ(batches[1].labels.size(0), 4);
}

TEST(TextBatcherTest, NothingBeforeStartEpoch) {
  const TextDataset data = Numbered(5);
  TextBatcher batcher(data, Options(2));
  EXPECT_FALSE(batcher.Next().has_value());
  // A new epoch restarts an unfinished one.
  batcher.StartEpoch(0);
  ASSERT_TRUE(batcher.Next().has_value());
  EXPECT_EQ(Epoch(batcher, 0).size(), 3u);
}

TEST(TextBatcherTest, ShardsCoverEverySampleOnce) {
  for (int64_t world : {2, 3}) {
    const TextDataset data = Numbered(12);
    for (int64_t epoch : {0, 1}) {
      std::multiset<int64_t> seen;
      for (int64_t rank = 0; rank < world; ++rank) {
        TextBatchOptions options = Options(5);
        options.rank = rank;
        options.world_size = world;
        TextBatcher batcher(data, options);
        EXPECT_EQ(batcher.samples_per_epoch(), 12 / world);
        const std::vector<int64_t> order = Order(Epoch(batcher, epoch));
        EXPECT_EQ(static_cast<int64_t>(order.size()), 12 / world);
        seen.insert(order.begin(), order.end());
      }
      EXPECT_EQ(seen.size(), 12u) << world;
      for (int64_t i = 0; i < 12; ++i) EXPECT_EQ(seen.count(i), 1u) << world << " " << i;
    }
  }
}

TEST(TextBatcherTest, ShardsRepeatTheHeadLikeDistributedSampler) {
  // Python: DistributedSampler(range(10), num_replicas=3, rank=r, seed=7),
  // set_epoch(1), list(sampler), with torch 2.13.
  const std::vector<std::vector<int64_t>> expected = {{3, 1, 4, 9}, {5, 2, 7, 3}, {0, 6, 8, 5}};
  const TextDataset data = Numbered(10);
  std::map<int64_t, int> count;
  for (int64_t rank = 0; rank < 3; ++rank) {
    TextBatchOptions options = Options(3);
    options.seed = 7;
    options.rank = rank;
    options.world_size = 3;
    TextBatcher batcher(data, options);
    EXPECT_EQ(batcher.samples_per_epoch(), 4);
    EXPECT_EQ(batcher.batches_per_epoch(), 2);
    const std::vector<int64_t> order = Order(Epoch(batcher, 1));
    EXPECT_EQ(order, expected[rank]) << rank;
    for (int64_t i : order) ++count[i];
  }
  // Every sample at least once; the two repeats are the permutation's head.
  EXPECT_EQ(count.size(), 10u);
  EXPECT_EQ(count[3], 2);
  EXPECT_EQ(count[5], 2);
  // 2 ranks over 7 samples: 8 slots, one repeat.
  std::multiset<int64_t> seen;
  for (int64_t rank = 0; rank < 2; ++rank) {
    TextBatchOptions options = Options(2);
    options.rank = rank;
    options.world_size = 2;
    TextBatcher batcher(Numbered(7), options);
    const std::vector<int64_t> order = Order(Epoch(batcher, 0));
    EXPECT_EQ(order.size(), 4u);
    seen.insert(order.begin(), order.end());
  }
  EXPECT_EQ(seen.size(), 8u);
  for (int64_t i = 0; i < 7; ++i) EXPECT_GE(seen.count(i), 1u);
}

TEST(TextBatcherTest, OrderIsSeededByEpoch) {
  const TextDataset data = Numbered(200);
  TextBatcher a(data, Options(16)), b(data, Options(16));
  const std::vector<int64_t> a0 = Order(Epoch(a, 0)), a1 = Order(Epoch(a, 1));
  EXPECT_NE(a0, a1);
  EXPECT_EQ(a1, Order(Epoch(b, 1)));
  EXPECT_EQ(a0, Order(Epoch(b, 0)));
  std::vector<int64_t> sorted = a0;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> all(200);
  std::iota(all.begin(), all.end(), int64_t{0});
  EXPECT_EQ(sorted, all);
  EXPECT_NE(a0, all);  // shuffled
  TextBatchOptions other = Options(16);
  other.seed = 6;
  TextBatcher c(data, other);
  EXPECT_NE(Order(Epoch(c, 0)), a0);
  TextBatchOptions in_order = Options(16);
  in_order.shuffle = false;
  TextBatcher d(data, in_order);
  EXPECT_EQ(Order(Epoch(d, 4)), all);
}

TEST(TextBatcherTest, RejectsBadOptionsAndData) {
  const TextDataset data = Numbered(6);
  EXPECT_TRUE(CheckTextBatchOptions(data, TextBatchOptions()).ok());
  auto rejected = [&](TextBatchOptions options, const std::string& detail) {
    const absl::Status status = CheckTextBatchOptions(data, options);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << detail;
    EXPECT_THAT(std::string(status.message()), HasSubstr(detail));
    EXPECT_THROW({ TextBatcher batcher(data, options); }, c10::Error) << detail;
  };
  TextBatchOptions o;
  o.batch_size = 0;
  rejected(o, "batch size");
  o = TextBatchOptions();
  o.max_len = 1;
  rejected(o, "max_len");
  o = TextBatchOptions();
  o.pad_id = -1;
  rejected(o, "pad id");
  o = TextBatchOptions();
  o.rank = 2;
  o.world_size = 2;
  rejected(o, "rank 2");
  o = TextBatchOptions();
  o.world_size = 0;
  rejected(o, "world of size 0");
  o = TextBatchOptions();
  o.rank = -1;
  rejected(o, "rank -1");

  auto bad_data = [](TextDataset d, const std::string& detail) {
    const absl::Status status = CheckTextBatchOptions(d, TextBatchOptions());
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << detail;
    EXPECT_THAT(std::string(status.message()), HasSubstr(detail));
  };
  TextDataset d = Numbered(4);
  d.labels.pop_back();
  bad_data(d, "4 examples but 3 labels");
  d = Numbered(4);
  d.ids[2].clear();
  bad_data(d, "example 2 is empty");
  d = Numbered(4);
  d.ids[1][0] = -3;
  bad_data(d, "negative token id");
  d = Numbered(4);
  d.num_labels = 3;
  bad_data(d, "label of example 3 is 3");
  d = Numbered(4);
  d.labels[0] = -1;
  bad_data(d, "label of example 0 is -1");
  // An empty data set is fine: no batches.
  const TextDataset nothing;
  TextBatcher empty(nothing, TextBatchOptions());
  EXPECT_EQ(empty.batches_per_epoch(), 0);
  EXPECT_TRUE(Epoch(empty, 0).empty());
}

// ---------------------------------------------------------------- SentencePiece

class SentencePieceTest : public ::testing::Test {
 protected:
  // Trains a tiny BPE model once, with sentencepiece's own trainer.
  static void SetUpTestSuite() {
    dir_ = new std::string(TempDir());
    const std::string corpus = *dir_ + "/spm_corpus.txt";
    {
      std::ofstream out(corpus);
      for (int i = 0; i < 20; ++i) {
        out << "the quick brown fox jumps over the lazy dog\n"
            << "hello world, this is a tiny corpus for a tiny model\n"
            << "facts are checked and classified into four classes\n";
      }
    }
    const auto status = sentencepiece::SentencePieceTrainer::Train(
        "--input=" + corpus + " --model_prefix=" + *dir_ +
        "/spm --vocab_size=60 --model_type=bpe --character_coverage=1.0 --minloglevel=2");
    ASSERT_TRUE(status.ok()) << status.ToString();
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  void SetUp() override {
    ASSERT_TRUE(processor_.Load(ModelPath()).ok());
    absl::StatusOr<SentencePieceTokenizer> tokenizer = SentencePieceTokenizer::Load(ModelPath());
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    tokenizer_.emplace(*tokenizer);
  }

  static std::string ModelPath() { return *dir_ + "/spm.model"; }

  static std::string* dir_;
  sentencepiece::SentencePieceProcessor processor_;
  std::optional<SentencePieceTokenizer> tokenizer_;
};

std::string* SentencePieceTest::dir_ = nullptr;

TEST_F(SentencePieceTest, FramesAndMapsIdsLikeXlmR) {
  ASSERT_EQ(processor_.unk_id(), 0);
  ASSERT_EQ(processor_.bos_id(), 1);
  ASSERT_EQ(processor_.eos_id(), 2);
  const std::string text = "the lazy fox checks a world of facts";
  const std::vector<int64_t> ids = tokenizer_->Encode(text, 128).value();
  const std::vector<std::string> pieces = processor_.EncodeAsPieces(text);
  ASSERT_EQ(ids.size(), pieces.size() + 2);
  EXPECT_EQ(ids.front(), 0);
  EXPECT_EQ(ids.back(), 2);
  for (size_t i = 0; i < pieces.size(); ++i) {
    const int spm_id = processor_.PieceToId(pieces[i]);
    ASSERT_GE(spm_id, 3) << pieces[i];
    EXPECT_EQ(ids[i + 1], spm_id + 1) << pieces[i];
    EXPECT_EQ(tokenizer_->PieceToId(pieces[i]), spm_id + 1) << pieces[i];
  }
  // Every piece of the model maps to its id + 1; the specials to fairseq's.
  for (int p = 3; p < processor_.GetPieceSize(); ++p) {
    EXPECT_EQ(tokenizer_->PieceToId(processor_.IdToPiece(p)), p + 1);
  }
  EXPECT_EQ(tokenizer_->PieceToId("<s>"), 0);
  EXPECT_EQ(tokenizer_->PieceToId("<pad>"), 1);
  EXPECT_EQ(tokenizer_->PieceToId("</s>"), 2);
  EXPECT_EQ(tokenizer_->PieceToId("<unk>"), 3);
  EXPECT_EQ(tokenizer_->vocab_size(), processor_.GetPieceSize() + 2);
  EXPECT_EQ(tokenizer_->mask_id(), processor_.GetPieceSize() + 1);
  EXPECT_EQ(tokenizer_->PieceToId("<mask>"), tokenizer_->mask_id());
  EXPECT_EQ(tokenizer_->PieceToId("no-such-piece"), 3);
  // Empty text is just the framing.
  EXPECT_EQ(tokenizer_->Encode("", 16).value(), (std::vector<int64_t>{0, 2}));
}

TEST_F(SentencePieceTest, UnknownPiecesMapToUnk) {
  const std::string text = "hello \xce\xa9\xce\xa9 world \xe4\xb8\xad";  // Greek and CJK, not in the corpus
  std::vector<int> spm_ids;
  ASSERT_TRUE(processor_.Encode(text, &spm_ids).ok());
  const std::vector<int64_t> ids = tokenizer_->Encode(text, 128).value();
  ASSERT_EQ(ids.size(), spm_ids.size() + 2);
  int unknown = 0;
  for (size_t i = 0; i < spm_ids.size(); ++i) {
    if (spm_ids[i] == processor_.unk_id()) {
      EXPECT_EQ(ids[i + 1], 3);
      ++unknown;
    } else {
      EXPECT_EQ(ids[i + 1], spm_ids[i] + 1);
    }
  }
  EXPECT_GE(unknown, 2);
  for (int64_t id : ids) EXPECT_NE(id, 1) << "never <pad>";
}

TEST_F(SentencePieceTest, TruncatesKeepingEos) {
  const std::string text = "the quick brown fox jumps over the lazy dog";
  const std::vector<int64_t> full = tokenizer_->Encode(text, 1000).value();
  ASSERT_GT(full.size(), 6u);
  const std::vector<int64_t> cut = tokenizer_->Encode(text, 5).value();
  EXPECT_EQ(cut, (std::vector<int64_t>{0, full[1], full[2], full[3], 2}));
  EXPECT_EQ(tokenizer_->Encode(text, static_cast<int64_t>(full.size())).value(), full);
  EXPECT_EQ(tokenizer_->Encode(text, 2).value(), (std::vector<int64_t>{0, 2}));
  EXPECT_EQ(tokenizer_->Encode(text, 0).value(), (std::vector<int64_t>{0, 2}));
}

TEST_F(SentencePieceTest, LoadErrorsNameTheFile) {
  const std::string missing = *dir_ + "/no_such.model";
  absl::StatusOr<SentencePieceTokenizer> a = SentencePieceTokenizer::Load(missing);
  EXPECT_EQ(a.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(a.status().message()), HasSubstr(missing));
  const std::string corrupt = *dir_ + "/corrupt.model";
  WriteFile(corrupt, "this is not a protocol buffer \x01\x02\x03 at all\n");
  absl::StatusOr<SentencePieceTokenizer> b = SentencePieceTokenizer::Load(corrupt);
  EXPECT_FALSE(b.ok());
  EXPECT_THAT(std::string(b.status().message()), HasSubstr(corrupt));
  EXPECT_EQ(std::string(b.status().message()).find('\n'), std::string::npos);
}

TEST_F(SentencePieceTest, ReadsTsv) {
  const std::string path = *dir_ + "/good.tsv";
  WriteFile(path, "hello world\t1\n\nthe lazy dog\t0\r\nfacts\twith a tab\t 3 \n");
  absl::StatusOr<TextDataset> data = ReadTsv(path, *tokenizer_, 6);
  ASSERT_TRUE(data.ok()) << data.status();
  ASSERT_EQ(data->size(), 3);
  EXPECT_EQ(data->ids[0], tokenizer_->Encode("hello world", 6).value());
  EXPECT_EQ(data->ids[1], tokenizer_->Encode("the lazy dog", 6).value());
  EXPECT_EQ(data->ids[2], tokenizer_->Encode("facts\twith a tab", 6).value());
  for (const std::vector<int64_t>& ids : data->ids) EXPECT_LE(ids.size(), 6u);
  EXPECT_EQ(data->labels, (std::vector<int64_t>{1, 0, 3}));
  EXPECT_EQ(data->num_labels, 4);
  EXPECT_TRUE(CheckTextBatchOptions(*data, TextBatchOptions()).ok());
}

TEST_F(SentencePieceTest, TsvErrorsNameFileAndLine) {
  struct Case {
    const char* name;
    const char* text;
    const char* where;   // ":<line>"
    const char* detail;
  };
  const std::string long_label = "a\t" + std::string(1000, '7') + "x\n";
  const std::vector<Case> cases = {
      {"no_tab.tsv", "hello world\t1\nno tab here 2\n", ":2:", "no tab"},
      {"bad_label.tsv", "a\t0\n\nb\tone\n", ":3:", "label \"one\""},
      {"negative_label.tsv", "a\t-1\n", ":1:", "label \"-1\""},
      {"float_label.tsv", "a\t0\nb\t1\nc\t1.5\n", ":3:", "label \"1.5\""},
      {"empty_label.tsv", "a\t\n", ":1:", "label \"\""},
      {"huge_label.tsv", "a\t9223372036854775807\n", ":1:", "beyond the largest allowed"},
      // A control sequence is not sent to the terminal; a long label is cut.
      {"escape_label.tsv", "a\t0\nb\t1\x1b[2J\n", ":2:", "label \"1\\x1b[2J\""},
      {"long_label.tsv", long_label.c_str(), ":1:", "777...\""},
      // Old Mac line endings would merge every example into one.
      {"cr_only.tsv", "hello world\t1\rthe lazy dog\t0\r", ":1:", "carriage return"},
      {"latin1.tsv", "a\t0\nna\xefve caf\xe9\t1\n", ":2:", "not UTF-8 (byte 3 of the line)"},
      {"surrogate.tsv", "\xed\xa0\x80\t1\n", ":1:", "not UTF-8 (byte 1 of the line)"},
      {"overlong.tsv", "ok \xc0\xaf\t1\n", ":1:", "not UTF-8 (byte 4 of the line)"},
  };
  for (const Case& c : cases) {
    const std::string path = *dir_ + "/" + c.name;
    WriteFile(path, c.text);
    absl::StatusOr<TextDataset> data = ReadTsv(path, *tokenizer_, 16);
    ASSERT_FALSE(data.ok()) << c.name;
    EXPECT_EQ(data.status().code(), absl::StatusCode::kInvalidArgument) << c.name;
    EXPECT_THAT(std::string(data.status().message()), HasSubstr(path + c.where)) << c.name;
    EXPECT_THAT(std::string(data.status().message()), HasSubstr(c.detail)) << c.name;
  }
  const std::string missing = *dir_ + "/missing.tsv";
  absl::StatusOr<TextDataset> data = ReadTsv(missing, *tokenizer_, 16);
  EXPECT_EQ(data.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(data.status().message()), HasSubstr(missing));
  const std::string good = *dir_ + "/short.tsv";
  WriteFile(good, "a\t0\n");
  data = ReadTsv(good, *tokenizer_, 1);
  EXPECT_EQ(data.status().code(), absl::StatusCode::kInvalidArgument);
  data = ReadTsv(*dir_, *tokenizer_, 16);
  EXPECT_EQ(data.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(data.status().message()), HasSubstr("is a directory"));
}

TEST_F(SentencePieceTest, ReadsWellFormedUtf8) {
  const std::string path = *dir_ + "/utf8.tsv";
  // Two-, three- and four-byte characters, and a BOM.
  WriteFile(path, "\xef\xbb\xbfna\xc3\xafve caf\xc3\xa9\t1\n\xe4\xb8\xad \xf0\x9f\x98\x80\t0\n");
  absl::StatusOr<TextDataset> data = ReadTsv(path, *tokenizer_, 16);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->size(), 2);
}

// A long text is encoded a prefix at a time: the ids are those of the whole
// text's first pieces, with spaces and without.
TEST_F(SentencePieceTest, ALongTextGivesTheWholeTextsFirstPieces) {
  std::string spaced, unspaced;
  for (int i = 0; spaced.size() < 200000; ++i) spaced += (i % 3 == 0 ? "the lazy fox " : "checks a world of facts ");
  for (int i = 0; unspaced.size() < 200000; ++i) unspaced += (i % 2 == 0 ? "thelazyfox" : "worldfacts");
  for (const std::string* text : {&spaced, &unspaced}) {
    std::vector<int> whole;
    ASSERT_TRUE(processor_.Encode(*text, &whole).ok());
    for (int64_t max_len : {2, 16, 512}) {
      const std::vector<int64_t> ids = tokenizer_->Encode(*text, max_len).value();
      ASSERT_EQ(static_cast<int64_t>(ids.size()), max_len);
      for (int64_t i = 1; i + 1 < max_len; ++i) {
        ASSERT_EQ(ids[i], tokenizer_->PieceToId(processor_.IdToPiece(whole[i - 1]))) << i << " of " << max_len;
      }
    }
  }
}

}  // namespace
}  // namespace dlspeed
