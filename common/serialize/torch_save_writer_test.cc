#include "common/serialize/torch_save_writer.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/serialize/torch_save_reader.h"
#include "common/testing/scratch_dir.h"

namespace dlspeed {
namespace {


std::vector<std::pair<std::string, at::Tensor>> Entries() {
  return {{"conv.weight", torch::arange(24, torch::kFloat).reshape({2, 3, 2, 2})},
          {"bn.num_batches_tracked", torch::tensor(int64_t{5})},
          {"fc.weight", torch::arange(6, torch::kFloat).reshape({2, 3}).t()},  // not contiguous
          {"half", torch::full({3}, 1.5, torch::kHalf)}};
}

TEST(TorchSaveWriterTest, ReaderGetsBackEveryEntryInOrder) {
  const std::string path = ScratchPath("written.pth");
  ASSERT_TRUE(WriteTorchSaveStateDict(path, Entries()).ok());
  auto read = ReadTorchSaveStateDict(path);
  ASSERT_TRUE(read.ok()) << read.status();
  auto want = Entries();
  ASSERT_EQ(read->size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ((*read)[i].first, want[i].first);
    EXPECT_EQ((*read)[i].second.scalar_type(), want[i].second.scalar_type());
    EXPECT_TRUE(torch::equal((*read)[i].second, want[i].second)) << want[i].first;
  }
}

TEST(TorchSaveWriterTest, TextEntriesComeBackAsWritten) {
  EXPECT_EQ(TextOfTensor(TextTensor("batch_size=16 seed=0")), "batch_size=16 seed=0");
  EXPECT_EQ(TextOfTensor(TextTensor("")), "");
  EXPECT_FALSE(TextOfTensor(torch::zeros({2}, torch::kLong)).has_value());
}

TEST(TorchSaveWriterTest, HasNoTorchScriptTypeTag) {
  absl::StatusOr<std::string> bytes = SerializeStateDict(Entries());
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(bytes->find("restore_type_tag"), std::string::npos);
  EXPECT_NE(bytes->find("_rebuild_tensor_v2"), std::string::npos);
}

TEST(TorchSaveWriterTest, UnwritablePathIsAnError) {
  absl::Status s = WriteTorchSaveStateDict("/proc/no/such/dir/x.pth", Entries());
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("/proc/no/such/dir"), std::string::npos) << s;
}

// Python's torch.load(weights_only=True) accepts the file. Runs when a Python
// with torch is at hand: $DLSPEED_PYTHON, or the workspace's .venv.
TEST(TorchSaveWriterTest, PythonTorchLoadsItWithWeightsOnly) {
  std::string python = std::getenv("DLSPEED_PYTHON") ? std::getenv("DLSPEED_PYTHON") : "";
  if (python.empty()) {
    char resolved[4096];
    if (realpath("tests/fixtures/tiny_state_dict.pt", resolved) != nullptr) {
      std::string root = resolved;
      root = root.substr(0, root.rfind("/tests/fixtures/"));
      if (access((root + "/.venv/bin/python").c_str(), X_OK) == 0) python = root + "/.venv/bin/python";
    }
  }
  if (python.empty()) GTEST_SKIP() << "no Python with torch (set DLSPEED_PYTHON)";
  const std::string path = ScratchPath("for_python.pth");
  ASSERT_TRUE(WriteTorchSaveStateDict(path, Entries()).ok());
  const std::string script =
      "import sys, torch\n"
      "d = torch.load(sys.argv[1], weights_only=True)\n"
      "assert list(d) == ['conv.weight', 'bn.num_batches_tracked', 'fc.weight', 'half'], list(d)\n"
      "assert torch.equal(d['conv.weight'], torch.arange(24.).reshape(2, 3, 2, 2))\n"
      "assert d['bn.num_batches_tracked'].item() == 5 and d['half'].dtype == torch.float16\n"
      "assert torch.equal(d['fc.weight'], torch.arange(6.).reshape(2, 3).t())\n";
  const std::string script_path = ScratchPath("check.py");
  std::ofstream(script_path) << script;
  const int status = std::system((python + " " + script_path + " " + path).c_str());
  EXPECT_EQ(status, 0) << "Python's torch.load rejected the file";
}

}  // namespace
}  // namespace dlspeed
