#include "common/data/idx.h"

#include <zlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include <ATen/ATen.h>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "common/testing/scratch_dir.h"

namespace dlspeed {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::string TempDir(const std::string& name) {
  return ScratchDir("idx_test_" + name);
}

// The bytes of an IDX file: header with `type` and `dims`, then `data`.
std::string IdxBytes(const std::vector<uint32_t>& dims, const std::vector<uint8_t>& data,
                     uint8_t type = 0x08) {
  std::string out = {0, 0, static_cast<char>(type), static_cast<char>(dims.size())};
  for (uint32_t d : dims) {
    for (int shift : {24, 16, 8, 0}) out.push_back(static_cast<char>((d >> shift) & 0xff));
  }
  out.append(data.begin(), data.end());
  return out;
}

void WritePlain(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), bytes.size());
}

void WriteGzip(const std::string& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, bytes.data(), bytes.size()), static_cast<int>(bytes.size()));
  ASSERT_EQ(gzclose(f), Z_OK);
}

std::vector<uint8_t> Iota(size_t n) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(i * 13 % 256);
  return v;
}

std::string Message(const absl::Status& status) { return std::string(status.message()); }

TEST(IdxTest, ReadsPlainAndGzippedFiles) {
  const std::string dir = TempDir("read");
  const std::vector<uint8_t> data = Iota(2 * 3 * 4);
  const at::Tensor expected =
      at::tensor(std::vector<int64_t>(data.begin(), data.end())).to(at::kByte).view({2, 3, 4});
  WritePlain(dir + "/a", IdxBytes({2, 3, 4}, data));
  WriteGzip(dir + "/a.gz", IdxBytes({2, 3, 4}, data));
  for (const std::string& path : {dir + "/a", dir + "/a.gz"}) {
    absl::StatusOr<at::Tensor> t = ReadIdxFile(path);
    ASSERT_TRUE(t.ok()) << path << ": " << t.status();
    EXPECT_EQ(t->scalar_type(), at::kByte);
    EXPECT_EQ(t->sizes(), (std::vector<int64_t>{2, 3, 4}));
    EXPECT_TRUE(at::equal(*t, expected)) << path;
  }
  // A one-dimensional file, as labels are.
  WriteGzip(dir + "/labels.gz", IdxBytes({5}, {0, 1, 2, 3, 255}));
  absl::StatusOr<at::Tensor> labels = ReadIdxFile(dir + "/labels.gz");
  ASSERT_TRUE(labels.ok()) << labels.status();
  EXPECT_EQ(labels->sizes(), (std::vector<int64_t>{5}));
  EXPECT_EQ((*labels)[4].item<int64_t>(), 255);
}

TEST(IdxTest, RejectsBadHeaders) {
  const std::string dir = TempDir("headers");
  struct Case {
    std::string name, bytes, expected;
    absl::StatusCode code;
  };
  std::string bad_magic = IdxBytes({4}, Iota(4));
  bad_magic[1] = 1;
  const std::vector<Case> cases = {
      {"bad_magic", bad_magic, "bad magic number", absl::StatusCode::kDataLoss},
      {"float", IdxBytes({4}, std::vector<uint8_t>(16), 0x0D), "element type 0xd",
       absl::StatusCode::kUnimplemented},
      {"no_dims", IdxBytes({}, {}), "0 dimensions", absl::StatusCode::kDataLoss},
      {"short_header", std::string("\0\0", 2), "no complete header", absl::StatusCode::kDataLoss},
      {"cut_dims", IdxBytes({4, 4}, {}).substr(0, 9), "inside the dimensions",
       absl::StatusCode::kDataLoss},
      {"huge_dims", IdxBytes({0xffffffff, 0xffffffff}, Iota(10)), "implausibly large",
       absl::StatusCode::kDataLoss},
  };
  for (const Case& c : cases) {
    for (bool gz : {false, true}) {
      const std::string path = dir + "/" + c.name + (gz ? ".gz" : "");
      if (gz) WriteGzip(path, c.bytes); else WritePlain(path, c.bytes);
      absl::StatusOr<at::Tensor> t = ReadIdxFile(path);
      ASSERT_FALSE(t.ok()) << path;
      EXPECT_EQ(t.status().code(), c.code) << path << ": " << t.status();
      EXPECT_THAT(Message(t.status()), HasSubstr(c.expected)) << path;
      EXPECT_THAT(Message(t.status()), HasSubstr(path));
    }
  }
}

TEST(IdxTest, RejectsWrongDataLength) {
  const std::string dir = TempDir("length");
  const std::string good = IdxBytes({3, 5}, Iota(15));
  const std::string cut = good.substr(0, good.size() - 1);
  const std::string extra = good + "x";
  for (bool gz : {false, true}) {
    const std::string suffix = gz ? ".gz" : "";
    auto write = [&](const std::string& path, const std::string& bytes) {
      if (gz) WriteGzip(path, bytes); else WritePlain(path, bytes);
    };
    write(dir + "/cut" + suffix, cut);
    absl::StatusOr<at::Tensor> t = ReadIdxFile(dir + "/cut" + suffix);
    EXPECT_EQ(t.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_THAT(Message(t.status()), HasSubstr("expected 15 data bytes, found 14"));

    write(dir + "/extra" + suffix, extra);
    t = ReadIdxFile(dir + "/extra" + suffix);
    EXPECT_EQ(t.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_THAT(Message(t.status()), HasSubstr("trailing bytes"));
  }
}

TEST(IdxTest, RejectsTruncatedAndCorruptGzip) {
  const std::string dir = TempDir("gzip");
  // Incompressible-ish data so that the compressed stream is long.
  std::vector<uint8_t> data(20000);
  uint32_t x = 12345;
  for (uint8_t& b : data) b = static_cast<uint8_t>((x = x * 1103515245u + 12345u) >> 24);
  const std::string path = dir + "/t.gz";
  WriteGzip(path, IdxBytes({100, 200}, data));
  const uintmax_t size = fs::file_size(path);

  // The gzip stream cut in half: a truncated file.
  fs::copy_file(path, dir + "/half.gz");
  fs::resize_file(dir + "/half.gz", size / 2);
  absl::StatusOr<at::Tensor> t = ReadIdxFile(dir + "/half.gz");
  EXPECT_EQ(t.status().code(), absl::StatusCode::kDataLoss) << t.status();
  EXPECT_THAT(Message(t.status()), HasSubstr("half.gz' is truncated"));

  // Only the 8-byte CRC and length trailer missing: all data is there, but the
  // stream is incomplete.
  fs::copy_file(path, dir + "/no_trailer.gz");
  fs::resize_file(dir + "/no_trailer.gz", size - 8);
  t = ReadIdxFile(dir + "/no_trailer.gz");
  EXPECT_EQ(t.status().code(), absl::StatusCode::kDataLoss) << t.status();
  EXPECT_THAT(Message(t.status()), HasSubstr("no_trailer.gz' is truncated"));

  // Bytes flipped inside the compressed data: a corrupt file.
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  for (size_t i = bytes.size() / 2; i < bytes.size() / 2 + 16; ++i) bytes[i] ^= 0x5a;
  WritePlain(dir + "/corrupt.gz", bytes);
  t = ReadIdxFile(dir + "/corrupt.gz");
  EXPECT_EQ(t.status().code(), absl::StatusCode::kDataLoss) << t.status();
  EXPECT_THAT(Message(t.status()), HasSubstr("corrupt.gz"));
}

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The gzip compression of `bytes`, as gzip writes it.
std::string Gzipped(const std::string& dir, const std::string& bytes) {
  WriteGzip(dir + "/scratch.gz", bytes);
  return ReadBytes(dir + "/scratch.gz");
}

TEST(IdxTest, GzipMembersAndZeroPaddingAreReadButNotOtherTrailingBytes) {
  const std::string dir = TempDir("gzip_members");
  const std::string idx = IdxBytes({4, 25}, Iota(100));
  const std::string whole = Gzipped(dir, idx);
  // Two members (what `cat a.gz b.gz` makes), and zero bytes after the last
  // one or between them: read as Python's gzip module reads them.
  const std::string first = Gzipped(dir, idx.substr(0, 30)), second = Gzipped(dir, idx.substr(30));
  const std::string members = first + second;
  const std::vector<std::pair<std::string, std::string>> good = {
      {"members.gz", members},
      {"padded.gz", whole + std::string(64, '\0')},
      {"padded_between.gz", first + std::string(5, '\0') + second + std::string(3, '\0')}};
  for (const auto& [name, bytes] : good) {
    WritePlain(dir + "/" + name, bytes);
    absl::StatusOr<at::Tensor> t = ReadIdxFile(dir + "/" + name);
    ASSERT_TRUE(t.ok()) << name << ": " << t.status();
    std::vector<uint8_t> data = Iota(100);
    EXPECT_TRUE(t->equal(at::from_blob(data.data(), {4, 25}, at::kByte))) << name;
  }

  struct Bad {
    std::string name, bytes, message;
  };
  std::string bad_crc = whole;
  bad_crc[bad_crc.size() - 8] ^= 0x01;  // the trailer's CRC-32
  const std::vector<Bad> bad = {
      {"garbage.gz", whole + "junk", "garbage.gz' is corrupt: what follows its gzip stream (4 bytes) is not gzip data"},
      {"zeros_then_garbage.gz", whole + std::string(8, '\0') + "x", "(1 byte) is not gzip data"},
      // A second member of only its 10-byte header.
      {"header_only_member.gz", whole + members.substr(0, 10), "header_only_member.gz' is truncated"},
      {"bad_crc.gz", bad_crc, "bad_crc.gz' is corrupt: incorrect data check"},
  };
  for (const Bad& c : bad) {
    WritePlain(dir + "/" + c.name, c.bytes);
    absl::StatusOr<at::Tensor> t = ReadIdxFile(dir + "/" + c.name);
    EXPECT_EQ(t.status().code(), absl::StatusCode::kDataLoss) << c.name << ": " << t.status();
    EXPECT_THAT(Message(t.status()), HasSubstr(c.message)) << c.name;
  }
}

TEST(IdxTest, MissingFileOrDirectoryIsNotFound) {
  const std::string dir = TempDir("missing");
  EXPECT_EQ(ReadIdxFile(dir + "/nope.gz").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ReadIdxFile(dir).status().code(), absl::StatusCode::kNotFound);
}

// Writes a small Fashion-MNIST split: image i has pixel (y,x) = i + y + x + 1.
void WriteFashion(const std::string& dir, const std::string& prefix, int n,
                  const std::vector<uint8_t>& labels, bool gz = true) {
  std::vector<uint8_t> pixels;
  for (int i = 0; i < n; ++i)
    for (int y = 0; y < 28; ++y)
      for (int x = 0; x < 28; ++x) pixels.push_back(static_cast<uint8_t>(i + y + x + 1));
  const std::string s = gz ? ".gz" : "";
  const std::string images = IdxBytes({static_cast<uint32_t>(n), 28, 28}, pixels);
  const std::string label_bytes = IdxBytes({static_cast<uint32_t>(labels.size())}, labels);
  if (gz) {
    WriteGzip(dir + "/" + prefix + "-images-idx3-ubyte.gz", images);
    WriteGzip(dir + "/" + prefix + "-labels-idx1-ubyte.gz", label_bytes);
  } else {
    WritePlain(dir + "/" + prefix + "-images-idx3-ubyte", images);
    WritePlain(dir + "/" + prefix + "-labels-idx1-ubyte", label_bytes);
  }
}

TEST(IdxTest, FashionMnistPadsAndReplicatesChannels) {
  const std::string dir = TempDir("fashion");
  WriteFashion(dir, "train", 3, {9, 0, 4});
  WriteFashion(dir, "t10k", 2, {1, 2}, /*gz=*/false);
  absl::StatusOr<ImageDataset> train = ReadFashionMnist(dir, Split::kTrain);
  ASSERT_TRUE(train.ok()) << train.status();
  ASSERT_EQ(train->images.sizes(), (std::vector<int64_t>{3, 3, 32, 32}));
  EXPECT_EQ(train->images.scalar_type(), at::kByte);
  EXPECT_TRUE(train->images.is_contiguous());
  EXPECT_TRUE(at::equal(train->labels, at::tensor(std::vector<int64_t>{9, 0, 4})));
  const at::Tensor img = train->images[2];
  for (int c = 0; c < 3; ++c) {
    EXPECT_EQ(img[c][2][2].item<int64_t>(), 2 + 0 + 0 + 1);
    EXPECT_EQ(img[c][29][29].item<int64_t>(), 2 + 27 + 27 + 1);
    EXPECT_EQ(img[c][10][20].item<int64_t>(), 2 + 8 + 18 + 1);
  }
  // The 2-pixel border is zero, the inside never is (pixels are >= 1).
  at::Tensor inside = train->images.slice(2, 2, 30).slice(3, 2, 30);
  EXPECT_EQ(train->images.sum().item<int64_t>(), inside.sum().item<int64_t>());
  EXPECT_TRUE(inside.gt(0).all().item<bool>());
  EXPECT_TRUE(at::equal(train->images.select(1, 0), train->images.select(1, 2)));

  absl::StatusOr<ImageDataset> test = ReadFashionMnist(dir, Split::kTest);
  ASSERT_TRUE(test.ok()) << test.status();
  EXPECT_EQ(test->size(), 2);
}

TEST(IdxTest, FashionMnistChecksConsistency) {
  const std::string dir = TempDir("fashion_bad");
  WriteFashion(dir, "train", 3, {1, 2});
  absl::StatusOr<ImageDataset> data = ReadFashionMnist(dir, Split::kTrain);
  EXPECT_EQ(data.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(Message(data.status()), HasSubstr("has 3 images but"));

  WriteFashion(dir, "train", 2, {1, 10});
  data = ReadFashionMnist(dir, Split::kTrain);
  EXPECT_EQ(data.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(Message(data.status()), HasSubstr("label 1 is 10"));

  WriteGzip(dir + "/train-images-idx3-ubyte.gz", IdxBytes({2, 27, 28}, Iota(2 * 27 * 28)));
  data = ReadFashionMnist(dir, Split::kTrain);
  EXPECT_EQ(data.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(Message(data.status()), HasSubstr("28x28"));

  data = ReadFashionMnist(dir, Split::kTest);
  EXPECT_EQ(data.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Message(data.status()), HasSubstr("t10k-images-idx3-ubyte.gz"));

  data = ReadFashionMnist(dir + "/absent", Split::kTest);
  EXPECT_EQ(data.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Message(data.status()), HasSubstr("dataset-fashion-mnist"));
  EXPECT_THAT(Message(data.status()), HasSubstr("--dataset=synthetic"));
}

TEST(IdxTest, ReadsDebianFashionMnist) {
  if (!fs::is_directory(kFashionMnistDir)) {
    GTEST_SKIP() << kFashionMnistDir << " absent: install dataset-fashion-mnist";
  }
  for (auto [split, n] : {std::pair{Split::kTrain, 60000}, std::pair{Split::kTest, 10000}}) {
    absl::StatusOr<ImageDataset> data = ReadFashionMnist(kFashionMnistDir, split);
    ASSERT_TRUE(data.ok()) << data.status();
    EXPECT_EQ(data->images.sizes(), (std::vector<int64_t>{n, 3, 32, 32}));
    EXPECT_EQ(data->labels.sizes(), (std::vector<int64_t>{n}));
    EXPECT_EQ(data->labels.min().item<int64_t>(), 0);
    EXPECT_EQ(data->labels.max().item<int64_t>(), 9);
    // Fashion-MNIST is balanced: every class has n/10 samples.
    EXPECT_TRUE(at::equal(at::bincount(data->labels), at::full({10}, n / 10, at::kLong)));
  }
}

}  // namespace
}  // namespace dlspeed
