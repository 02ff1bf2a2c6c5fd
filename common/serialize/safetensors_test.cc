#include "common/serialize/safetensors.h"
#include "common/testing/scratch_dir.h"

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace dlspeed {
namespace {


void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// A file with `header` as its JSON header and `data_size` zero bytes of data.
std::string FileWithHeader(const std::string& header, size_t data_size) {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  return bytes + header + std::string(data_size, '\0');
}

TEST(SafetensorsTest, RoundTripsEveryDtypeAndShape) {
  const NamedTensors tensors = {
      {"weight", torch::randn({3, 4})},
      {"half", torch::randn({5}).to(torch::kHalf)},
      {"bf16", torch::randn({2, 2}).to(torch::kBFloat16)},
      {"double", torch::randn({2}, torch::kDouble)},
      {"ids", torch::arange(7, torch::kLong)},
      {"int", torch::arange(3, torch::kInt)},
      {"mask", torch::tensor({true, false, true})},
      {"bytes", torch::arange(4, torch::kByte)},
      {"scalar", torch::tensor(2.5f)},
      {"empty", torch::zeros({0, 3})},
      {"transposed", torch::randn({3, 2}).t()},  // not contiguous
  };
  const std::string path = ScratchPath("round_trip.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, tensors, {{"format", "pt"}}).ok());
  absl::StatusOr<NamedTensors> read = ReadSafetensors(path);
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->size(), tensors.size());
  for (const auto& [name, expected] : tensors) {
    auto it = std::find_if(read->begin(), read->end(), [&](const auto& entry) { return entry.first == name; });
    ASSERT_NE(it, read->end()) << name;
    EXPECT_EQ(it->second.scalar_type(), expected.scalar_type()) << name;
    EXPECT_EQ(it->second.sizes(), expected.sizes()) << name;
    EXPECT_TRUE(it->second.equal(expected)) << name;
  }
  // The header is 8-byte aligned and carries the metadata.
  const std::string bytes = ReadBytes(path);
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | static_cast<uint8_t>(bytes[i]);
  EXPECT_EQ(header_size % 8, 0u);
  EXPECT_NE(bytes.find("\"__metadata__\":{\"format\":\"pt\"}"), std::string::npos);
}

TEST(SafetensorsTest, RejectsTruncatedAndMalformedFiles) {
  struct Case {
    std::string name;
    std::string bytes;
    std::string mentions;
  };
  const std::string good_header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  const Case cases[] = {
      {"short", "abc", "only 3 bytes"},
      {"huge_header", FileWithHeader(good_header, 8).replace(0, 8, std::string("\xff\xff\xff\xff\0\0\0\0", 8)), "header of"},
      {"not_json", FileWithHeader("{nope", 8), "not a JSON object"},
      {"truncated_data", FileWithHeader(good_header, 4), "needs 8 bytes"},
      {"wrong_size", FileWithHeader(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8), "needs 12 bytes"},
      {"no_dtype", FileWithHeader(R"({"a":{"shape":[2],"data_offsets":[0,8]}})", 8), "lacks dtype"},
      {"negative_dim", FileWithHeader(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8), "bad shape"},
      {"overlap", FileWithHeader(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                 R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8), "overlap"},
      {"unknown_dtype", FileWithHeader(R"({"a":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}})", 2),
       "unsupported dtype F8_E4M3"},
      // A zero dimension keeps numel 0 but not at::empty's strides (found by fuzzing: a c10::Error escaped).
      {"zero_then_huge_dims",
       FileWithHeader(R"({"a":{"dtype":"F32","shape":[0,4294967296,4294967296],"data_offsets":[0,0]}})", 0),
       "impossibly large"},
      {"dim_above_int64",
       FileWithHeader(R"({"a":{"dtype":"F32","shape":[0,9223372036854775808],"data_offsets":[0,0]}})", 0),
       "impossibly large"},
      {"gap", FileWithHeader(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8),
       "bytes [0, 4) of its data belong to no tensor"},
      {"trailing_bytes", FileWithHeader(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 12),
       "bytes [8, 12) of its data belong to no tensor"},
      {"data_but_no_tensors", FileWithHeader(R"({"__metadata__":{"format":"pt"}})", 4),
       "bytes [0, 4) of its data belong to no tensor"},
      {"bool_byte_2",
       FileWithHeader(R"({"a":{"dtype":"BOOL","shape":[3],"data_offsets":[0,3]}})", 0) + std::string("\x01\x02\x00", 3),
       "tensor 'a' is BOOL but holds the byte 2, not 0 or 1"},
  };
  for (const Case& c : cases) {
    const std::string path = ScratchPath(c.name + ".safetensors");
    WriteBytes(path, c.bytes);
    absl::StatusOr<NamedTensors> read = ReadSafetensors(path);
    ASSERT_FALSE(read.ok()) << c.name;
    EXPECT_NE(read.status().message().find(path), std::string::npos) << read.status();
    EXPECT_NE(read.status().message().find(c.mentions), std::string::npos) << c.name << ": " << read.status();
  }
  EXPECT_EQ(ReadSafetensors(ScratchPath("missing.safetensors")).status().code(), absl::StatusCode::kNotFound);
}

TEST(SafetensorsTest, ReadsAnEmptyTensorAtTheStartOfANonEmptyOne) {
  // Written as z [0, 0) then a [0, 8): sorting by begin alone could put 'a'
  // first and call the two an overlap (found by fuzzing the round trip).
  const std::string path = ScratchPath("empty_first.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, {{"z", torch::empty({0})}, {"a", torch::ones({2})}}).ok());
  absl::StatusOr<NamedTensors> read = ReadSafetensors(path);
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->size(), 2u);
  EXPECT_EQ((*read)[0].first, "z");
  EXPECT_EQ((*read)[0].second.numel(), 0);
  EXPECT_EQ((*read)[1].first, "a");
  EXPECT_TRUE((*read)[1].second.equal(torch::ones({2})));
}

TEST(SafetensorsTest, RefusesBadNamesAndKeepsTheOldFileOnFailure) {
  const std::string path = ScratchPath("keep.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, {{"a", torch::ones({2})}}).ok());
  const std::string before = ReadBytes(path);
  EXPECT_FALSE(WriteSafetensors(path, {{"a", torch::ones({1})}, {"a", torch::ones({1})}}).ok());
  EXPECT_FALSE(WriteSafetensors(path, {{"__metadata__", torch::ones({1})}}).ok());
  EXPECT_FALSE(WriteSafetensors(path, {{"c", torch::ones({1}, torch::kComplexFloat)}}).ok());
  EXPECT_EQ(ReadBytes(path), before);
}

}  // namespace
}  // namespace dlspeed
