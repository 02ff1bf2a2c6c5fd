#include "common/serialize/torch_save_reader.h"
#include "common/testing/scratch_dir.h"

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <caffe2/serialize/inline_container.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace dlspeed {
namespace {

using ::testing::HasSubstr;
using namespace std::string_literals;
using Entries = std::vector<std::pair<std::string, at::Tensor>>;


std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::vector<std::string> Keys(const Entries& entries) {
  std::vector<std::string> keys;
  for (const auto& entry : entries) keys.push_back(entry.first);
  return keys;
}

// Checks dtype, shape and values exactly, and that the tensor is a
// contiguous CPU tensor.
void ExpectTensor(const at::Tensor& actual, const at::Tensor& expected, const std::string& name) {
  SCOPED_TRACE(name);
  EXPECT_EQ(actual.device(), at::Device(at::kCPU));
  EXPECT_TRUE(actual.is_contiguous());
  EXPECT_EQ(actual.scalar_type(), expected.scalar_type());
  EXPECT_EQ(actual.sizes(), expected.sizes());
  EXPECT_TRUE(at::equal(actual, expected)) << actual << "\nexpected\n" << expected;
}

TEST(TorchSaveReaderTest, ReadsPythonStateDictOfSequential) {
  // tools/make_state_dict_fixtures.py: entry `index` holds 0.25 * j - index at
  // flat position j, num_batches_tracked is 5.
  auto entries = ReadTorchSaveStateDict("tests/fixtures/sequential_state_dict.pt");
  ASSERT_TRUE(entries.ok()) << entries.status();
  const std::vector<std::pair<std::string, std::vector<int64_t>>> expected = {
      {"0.weight", {2, 3, 1, 1}}, {"0.bias", {2}},         {"1.weight", {2}},
      {"1.bias", {2}},            {"1.running_mean", {2}}, {"1.running_var", {2}},
      {"1.num_batches_tracked", {}}, {"2.weight", {3, 4}},   {"2.bias", {3}},
  };
  ASSERT_EQ(entries->size(), expected.size()) << ::testing::PrintToString(Keys(*entries));
  for (size_t index = 0; index < expected.size(); ++index) {
    const auto& [name, shape] = expected[index];
    EXPECT_EQ((*entries)[index].first, name);
    at::Tensor want;
    if (name == "1.num_batches_tracked") {
      want = torch::tensor(int64_t{5}, torch::kLong).reshape({});
    } else {
      int64_t numel = 1;
      for (int64_t s : shape) numel *= s;
      want = (torch::arange(numel, torch::kFloat) * 0.25 - static_cast<double>(index))
                 .reshape(shape);
    }
    ExpectTensor((*entries)[index].second, want, name);
  }
}

TEST(TorchSaveReaderTest, ReadsDtypesViewsAndSharedStorage) {
  auto entries = ReadTorchSaveStateDict("tests/fixtures/mixed_state_dict.pt");
  ASSERT_TRUE(entries.ok()) << entries.status();
  const at::Tensor base = torch::arange(12, torch::kFloat);
  const std::vector<std::pair<std::string, at::Tensor>> expected = {
      {"half", (torch::arange(6, torch::kFloat) * 0.5).reshape({2, 3}).to(torch::kHalf)},
      {"bfloat16", (torch::arange(4, torch::kFloat) * 0.25 - 0.5).to(torch::kBFloat16)},
      {"transposed", torch::arange(6, torch::kFloat).reshape({2, 3}).t().contiguous()},
      {"shared_a", base.slice(0, 2, 6)},
      {"shared_b", torch::tensor({4.0f, 6.0f, 8.0f, 10.0f}).reshape({2, 2})},
      {"float64", torch::tensor({0.1, -2.5}, torch::kDouble)},
      {"int32", torch::tensor({-3, 0, 2147483647}, torch::kInt)},
      {"int8", torch::tensor({-128, 127}, torch::kChar)},
      {"uint8", torch::tensor({0, 255, 7}, torch::kByte)},
      {"bool", torch::tensor({true, false, true}, torch::kBool)},
      {"scalar", torch::tensor(-1.5f).reshape({})},
      {"empty", torch::zeros({0, 3})},
  };
  ASSERT_EQ(entries->size(), expected.size()) << ::testing::PrintToString(Keys(*entries));
  for (size_t k = 0; k < expected.size(); ++k) {
    EXPECT_EQ((*entries)[k].first, expected[k].first);
    ExpectTensor((*entries)[k].second, expected[k].second, expected[k].first);
  }
  // The two views of one storage come back as independent tensors.
  const at::Tensor& a = (*entries)[3].second;
  const at::Tensor& b = (*entries)[4].second;
  EXPECT_FALSE(a.is_alias_of(b));
  a.fill_(0);
  EXPECT_EQ(b[0][0].item<float>(), 4.0f);
}

TEST(TorchSaveReaderTest, ReadsTinyOrderedDictFixture) {
  auto entries = ReadTorchSaveStateDict("tests/fixtures/tiny_state_dict.pt");
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(Keys(*entries), (std::vector<std::string>{"conv1.weight", "bn1.num_batches_tracked"}));
  ExpectTensor((*entries)[0].second, torch::arange(6, torch::kFloat).reshape({2, 3}),
               "conv1.weight");
  ExpectTensor((*entries)[1].second, torch::tensor(int64_t{7}, torch::kLong).reshape({}),
               "bn1.num_batches_tracked");
}

TEST(TorchSaveReaderTest, RoundTripsTorchPickleSave) {
  c10::Dict<std::string, at::Tensor> dict;
  const at::Tensor weight = torch::arange(12, torch::kFloat).reshape({3, 4}) / 8;
  dict.insert("layer.weight", weight);
  dict.insert("layer.weight_t", weight.t());  // a view of the same storage
  dict.insert("steps", torch::tensor(int64_t{1} << 40, torch::kLong).reshape({}));
  dict.insert("mask", torch::tensor({true, false}, torch::kBool));
  dict.insert("half", torch::tensor({-1.0f, 0.5f}).to(torch::kHalf));
  const std::vector<char> bytes = torch::pickle_save(dict);
  const std::string path = ScratchPath("pickle_save.pt");
  WriteFile(path, std::string(bytes.begin(), bytes.end()));

  auto entries = ReadTorchSaveStateDict(path);
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(Keys(*entries), (std::vector<std::string>{"layer.weight", "layer.weight_t", "steps",
                                                      "mask", "half"}));
  for (const auto& [name, tensor] : *entries) {
    ExpectTensor(tensor, dict.at(name).contiguous(), name);
  }
}

// --- malformed files -------------------------------------------------------

absl::Status ReadStatus(const std::string& path) {
  return ReadTorchSaveStateDict(path).status();
}

TEST(TorchSaveReaderTest, MissingFileIsNotFound) {
  const std::string path = ScratchPath("does_not_exist.pt");
  const absl::Status status = ReadStatus(path);
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(status.message(), HasSubstr(path));
}

TEST(TorchSaveReaderTest, EmptyFileIsAnError) {
  const std::string path = ScratchPath("empty.pt");
  WriteFile(path, "");
  const absl::Status status = ReadStatus(path);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr(path + ": is empty"));
}

TEST(TorchSaveReaderTest, GarbageIsNotAZipArchive) {
  const std::string path = ScratchPath("garbage.pt");
  std::string garbage;
  for (int k = 0; k < 3000; ++k) garbage.push_back(static_cast<char>((k * 7919 + 13) % 251));
  WriteFile(path, garbage);
  const absl::Status status = ReadStatus(path);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr(path + ": not a readable torch.save zip archive"));
  EXPECT_THAT(std::string(status.message()), ::testing::Not(HasSubstr("\n")));
}

TEST(TorchSaveReaderTest, TruncatedFixtureIsAnError) {
  const std::string whole = ReadFile("tests/fixtures/sequential_state_dict.pt");
  ASSERT_GT(whole.size(), 1000u);
  for (size_t keep : {whole.size() / 2, whole.size() - 1, size_t{10}}) {
    const std::string path = ScratchPath(absl::StrCat("truncated_", keep, ".pt"));
    WriteFile(path, whole.substr(0, keep));
    const absl::Status status = ReadStatus(path);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_THAT(status.message(), HasSubstr(path + ": "));
  }
}

TEST(TorchSaveReaderTest, DirectoryIsAnError) {
  const absl::Status status = ReadStatus("tests/fixtures");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("is a directory"));
}

// --- hand-made archives: a pickle spelled out byte by byte -----------------

std::string Str(const std::string& s) {
  const uint32_t n = static_cast<uint32_t>(s.size());
  std::string out = "X";
  for (int k = 0; k < 4; ++k) out.push_back(static_cast<char>((n >> (8 * k)) & 0xff));
  return out + s;
}

std::string Int(int64_t v) {  // LONG1 with 8 bytes: any int64
  std::string out = "\x8a\x08";
  for (int k = 0; k < 8; ++k) {
    out.push_back(static_cast<char>((static_cast<uint64_t>(v) >> (8 * k)) & 0xff));
  }
  return out;
}

std::string Global(const std::string& module, const std::string& name) {
  return "c" + module + "\n" + name + "\n";
}

std::string Tuple(const std::vector<int64_t>& values) {
  std::string out = "(";
  for (int64_t v : values) out += Int(v);
  return out + "t";
}

// _rebuild_tensor_v2(('storage', torch.<type>, key, 'cpu', numel), offset, size, stride, ...)
std::string TensorPickle(const std::string& storage_type, const std::string& key, int64_t numel,
                         int64_t offset, const std::vector<int64_t>& size,
                         const std::vector<int64_t>& stride) {
  return Global("torch._utils", "_rebuild_tensor_v2") + "((" + Str("storage") +
         Global("torch", storage_type) + Str(key) + Str("cpu") + Int(numel) + "tQ" + Int(offset) +
         Tuple(size) + Tuple(stride) + "\x89" + Global("collections", "OrderedDict") + ")R" + "tR";
}

std::string FloatBytes(const std::vector<float>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
}

// Writes a zip archive as PyTorchStreamWriter does, with `pickle` as data.pkl.
std::string WriteArchive(const std::string& name, const std::string& pickle,
                         const std::map<std::string, std::string>& records = {}) {
  const std::string path = ScratchPath(name + ".pt");
  caffe2::serialize::PyTorchStreamWriter writer(path);
  writer.writeRecord("data.pkl", pickle.data(), pickle.size());
  for (const auto& [record, bytes] : records) {
    writer.writeRecord(record, bytes.data(), bytes.size());
  }
  writer.writeEndOfFile();
  return path;
}

const std::string kProto = "\x80\x02";

TEST(TorchSaveReaderTest, ReadsHandMadeArchive) {
  // An OrderedDict in protocol 2 with a memoized global, BINPUT/BINGET and a
  // repeated key (keeps its first position, takes the last value).
  const std::string pickle =
      kProto + Global("collections", "OrderedDict") + "q\x00"s + ")R(" + Str("w") +
      TensorPickle("FloatStorage", "0", 4, 1, {3}, {1}) + Str("v") +
      TensorPickle("FloatStorage", "0", 4, 0, {2, 2}, {1, 2}) + Str("w") +
      TensorPickle("FloatStorage", "0", 4, 2, {1}, {1}) + "u.";
  const std::string path =
      WriteArchive("hand_made", pickle, {{"data/0", FloatBytes({1, 2, 3, 4})}});
  auto entries = ReadTorchSaveStateDict(path);
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(Keys(*entries), (std::vector<std::string>{"w", "v"}));
  ExpectTensor((*entries)[0].second, torch::tensor({3.0f}), "w");
  ExpectTensor((*entries)[1].second, torch::tensor({1.0f, 3.0f, 2.0f, 4.0f}).reshape({2, 2}), "v");
}

std::string ShortStr(const std::string& s) {  // SHORT_BINUNICODE then MEMOIZE
  return "\x8c"s + static_cast<char>(s.size()) + s + "\x94";
}

TEST(TorchSaveReaderTest, ReadsProtocol4Opcodes) {
  // What torch.save(..., pickle_protocol=4) writes: FRAME, SHORT_BINUNICODE,
  // MEMOIZE, STACK_GLOBAL; plus BININT2, BININT, BINFLOAT, NONE, NEWTRUE,
  // lists and TUPLE3 in the ignored _metadata.
  const std::string rebuild =
      ShortStr("torch._utils") + ShortStr("_rebuild_tensor_v2") + "\x93\x94";
  const std::string storage = "((" + ShortStr("storage") + ShortStr("torch") +
                              ShortStr("LongStorage") + "\x93\x94" + ShortStr("0") +
                              ShortStr("cpu") + "K\x02t\x94Q";
  const std::string pickle =
      "\x80\x04\x95\x00\x01\x00\x00\x00\x00\x00\x00"s +                   // PROTO 4, FRAME
      ShortStr("collections") + ShortStr("OrderedDict") + "\x93\x94)R\x94(" +  // OrderedDict()
      ShortStr("big") + rebuild + storage +                                  // 'big': tensor(
      "K\x00K\x02\x85K\x01\x85\x89"s + "h\x02)R\x94t\x94R\x94u" +            // ...)
      "}" + ShortStr("_metadata") + "]" +                            // {'_metadata': [
      "M\x01\x01J\xff\xff\xff\xffG\x3f\xf8\x00\x00\x00\x00\x00\x00"s +  // (257, -1, 1.5)
      "\x87" "a" "(N\x88" "e" "s" "b.";                                 // , None, True]}
  const int64_t values[] = {int64_t{1} << 40, -7};
  const std::string path = WriteArchive(
      "protocol4", pickle,
      {{"data/0", std::string(reinterpret_cast<const char*>(values), sizeof(values))}});
  auto entries = ReadTorchSaveStateDict(path);
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(Keys(*entries), (std::vector<std::string>{"big"}));
  ExpectTensor((*entries)[0].second, torch::tensor({int64_t{1} << 40, int64_t{-7}}), "big");
}

struct BadPickle {
  std::string name;
  std::string pickle;
  std::string problem;  // expected in the message
};

TEST(TorchSaveReaderTest, MalformedPicklesAreErrors) {
  const std::string tensor = TensorPickle("FloatStorage", "0", 4, 0, {4}, {1});
  const std::vector<BadPickle> cases = {
      {"unknown_opcode", kProto + "}\xff.", "unknown or unsupported pickle opcode 0xff"},
      {"unknown_global", kProto + Global("os", "system") + Str("ls") + "\x85R.",
       "unsupported global 'os.system'"},
      {"stack_underflow", kProto + "R.", "stack underflow"},
      {"underflow_past_mark", kProto + "}(s.", "stack underflow"},
      {"no_mark", kProto + "}u.", "no MARK"},
      {"memo_out_of_range", kProto + "}q\x00h\x07."s, "memo index 7 is not defined"},
      {"long_memo_out_of_range", kProto + "j\xff\xff\xff\xff.", "memo index 4294967295"},
      {"no_stop", kProto + "}", "ends without STOP"},
      {"truncated_string", kProto + "X\x10\x00\x00\x00"s + "abc", "truncated"},
      {"truncated_int", kProto + "J\x01\x02", "truncated"},
      {"truncated_global", kProto + "ccollections\nOrdered", "truncated"},
      {"truncated_tensor", kProto + "}(" + Str("w") + tensor.substr(0, tensor.size() / 2),
       "truncated"},
      {"non_string_key", kProto + "}(K\x05" + tensor + "u.", "key #0 of the dict is an int"},
      {"non_tensor_value", kProto + "}(" + Str("w") + "K\x05u.", "the value of 'w' is an int"},
      {"list_at_top", kProto + "](K\x01" "e.", "holds a list, not a dict"},
      {"storage_too_small", kProto + "}(" + Str("w") +
           TensorPickle("FloatStorage", "0", 4, 1, {4}, {1}) + "u.",
       "needs storage element 4 but storage '0' holds 4 elements"},
      {"stride_too_large", kProto + "}(" + Str("w") +
           TensorPickle("FloatStorage", "0", 4, 0, {2, 2}, {1, 3}) + "u.",
       "needs storage element 4"},
      {"record_too_small", kProto + "}(" + Str("w") +
           TensorPickle("FloatStorage", "0", 5, 0, {5}, {1}) + "u.",
       "record 'data/0' holds 16 bytes but its storage needs 20"},
      {"huge_numel", kProto + "}(" + Str("w") +
           TensorPickle("FloatStorage", "0", int64_t{1} << 40, 0, {4}, {1}) + "u.",
       "claims 1099511627776 elements"},
      {"huge_expanded_view", kProto + "}(" + Str("w") +
           TensorPickle("FloatStorage", "0", 4, 0, {int64_t{1} << 40}, {0}) + "u.",
       "tensor copies would take more than"},
      {"overflowing_size", kProto + "}(" + Str("w") +
           TensorPickle("FloatStorage", "0", 4, 0, {int64_t{1} << 40, int64_t{1} << 40},
                        {0, 0}) + "u.",
       "more elements than int64"},
      {"negative_size", kProto + "}(" + Str("w") +
           TensorPickle("FloatStorage", "0", 4, 0, {-1}, {1}) + "u.",
       "an int >= 0"},
      {"missing_record", kProto + "}(" + Str("w") +
           TensorPickle("FloatStorage", "9", 4, 0, {4}, {1}) + "u.",
       "the archive has no record 'data/9'"},
      {"bad_storage_type", kProto + "}(" + Str("w") +
           TensorPickle("QInt8Storage", "0", 4, 0, {4}, {1}) + "u.",
       "unsupported global 'torch.QInt8Storage'"},
      {"bad_persistent_id", kProto + "(K\x01tQ.", "persistent id"},
      {"dtype_clash", kProto + "}(" + Str("a") + tensor + Str("b") +
           TensorPickle("IntStorage", "0", 4, 0, {4}, {1}) + "u.",
       "storage '0' is used with two element types"},
      {"build_on_tensor", kProto + tensor + "}b.", "sets the state of a tensor"},
      {"wide_long", kProto + "\x8a\x09" + std::string(9, '\x01') + ".", "wider than 64 bits"},
      // data/0 holds the floats 1, 2, 3, 4: as bools, 1.0f's bytes are 00 00 80 3f.
      // The whole storage is handed out as it is; a part of it is copied.
      {"bool_byte_128", kProto + "}(" + Str("w") +
           TensorPickle("BoolStorage", "0", 16, 0, {16}, {1}) + "u.",
       "a bool tensor holds the byte 128, not 0 or 1"},
      {"bool_byte_128_in_a_view", kProto + "}(" + Str("w") +
           TensorPickle("BoolStorage", "0", 16, 2, {2}, {1}) + "u.",
       "a bool tensor holds the byte 128, not 0 or 1"},
  };
  for (const BadPickle& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string path =
        WriteArchive(c.name, c.pickle, {{"data/0", FloatBytes({1, 2, 3, 4})}});
    const absl::Status status = ReadStatus(path);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_THAT(status.message(), HasSubstr(path + ": "));
    EXPECT_THAT(status.message(), HasSubstr(c.problem));
  }
}

TEST(TorchSaveReaderTest, ArchiveWithoutDataPklIsAnError) {
  const std::string path = ScratchPath("no_data_pkl.pt");
  {
    caffe2::serialize::PyTorchStreamWriter writer(path);
    writer.writeRecord("other", "x", 1);
    writer.writeEndOfFile();
  }
  const absl::Status status = ReadStatus(path);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("no record 'data.pkl'"));
}

TEST(TorchSaveReaderTest, EveryTruncationOfAPickleIsAnError) {
  // Whatever prefix of a good data.pkl the file holds, the answer is an error.
  const std::string pickle =
      kProto + Global("collections", "OrderedDict") + ")R(" + Str("w") +
      TensorPickle("FloatStorage", "0", 4, 0, {4}, {1}) + "u}" + Str("_metadata") + "}sb.";
  for (size_t keep = 0; keep < pickle.size(); ++keep) {
    SCOPED_TRACE(keep);
    const std::string path = WriteArchive(absl::StrCat("prefix_", keep), pickle.substr(0, keep),
                                          {{"data/0", FloatBytes({1, 2, 3, 4})}});
    EXPECT_EQ(ReadStatus(path).code(), absl::StatusCode::kInvalidArgument);
  }
  const std::string path =
      WriteArchive("whole", pickle, {{"data/0", FloatBytes({1, 2, 3, 4})}});
  EXPECT_TRUE(ReadTorchSaveStateDict(path).ok()) << ReadStatus(path);
}

}  // namespace
}  // namespace dlspeed
