#include "resnet/resnet_checkpoint.h"

#include <cstdlib>
#include <fstream>
#include <string>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/serialize/torch_save_reader.h"
#include "common/serialize/torch_save_writer.h"
#include "resnet/resnet.h"
#include "common/testing/scratch_dir.h"

namespace dlspeed {
namespace {

TEST(ResNetCheckpointTest, RoundTripRestoresEveryTensor) {
  torch::manual_seed(0);
  ResNet a = *MakeResNet(18);
  a->train();
  a->forward(torch::randn({2, 3, 32, 32}));  // moves running stats and counters
  const std::string path = ScratchPath("roundtrip.pth");
  ASSERT_TRUE(SaveStateDict(*a, path).ok());
  torch::manual_seed(1);
  ResNet b = *MakeResNet(18);
  ASSERT_TRUE(LoadStateDict(*b, path, "ResNet-18").ok());
  auto entries_a = StateDictEntries(*a);
  auto entries_b = StateDictEntries(*b);
  ASSERT_EQ(entries_a.size(), entries_b.size());
  EXPECT_EQ(entries_a.size(), 122u);  // torchvision's resnet18 state_dict has 122 keys
  for (size_t i = 0; i < entries_a.size(); ++i) {
    EXPECT_EQ(entries_a[i].first, entries_b[i].first);
    EXPECT_TRUE(torch::equal(entries_a[i].second, entries_b[i].second)) << entries_a[i].first;
  }
}

TEST(ResNetCheckpointTest, StateDictOrderIsPyTorchs) {
  ResNet model = *MakeResNet(18);
  auto entries = StateDictEntries(*model);
  EXPECT_EQ(entries[0].first, "conv1.weight");
  EXPECT_EQ(entries[1].first, "bn1.weight");
  EXPECT_EQ(entries[3].first, "bn1.running_mean");
  EXPECT_EQ(entries.back().first, "fc.bias");
}

TEST(ResNetCheckpointTest, ReadsAFileWrittenByPythonTorchSave) {
  auto entries = ReadTorchSaveStateDict("tests/fixtures/tiny_state_dict.pt");
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(entries->size(), 2u);
  EXPECT_EQ((*entries)[0].first, "conv1.weight");
  EXPECT_TRUE(torch::equal((*entries)[0].second, torch::arange(6, torch::kFloat).reshape({2, 3})));
  EXPECT_EQ((*entries)[1].second.item<int64_t>(), 7);
}

TEST(ResNetCheckpointTest, WrongShapeNamesKeyAndShapes) {
  ResNet model = *MakeResNet(18);
  absl::Status s = LoadStateDict(*model, "tests/fixtures/tiny_state_dict.pt", "ResNet-18 with 10 classes");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("conv1.weight is [2, 3], expected [64, 3, 7, 7]"), std::string::npos) << s;
}

TEST(ResNetCheckpointTest, WrongKindOfNumberNamesKeyAndDtypes) {
  ResNet model = *MakeResNet(18);
  // Right names and shapes: copy_ would have converted each of these silently.
  const std::vector<std::tuple<std::string, at::ScalarType, std::string>> cases = {
      {"conv1.weight", torch::kInt, "conv1.weight is Int, expected Float"},
      {"bn1.running_var", torch::kBool, "bn1.running_var is Bool, expected Float"},
      {"fc.bias", torch::kComplexFloat, "fc.bias is ComplexFloat, expected Float"},
      {"bn1.num_batches_tracked", torch::kFloat, "bn1.num_batches_tracked is Float, expected Long"},
  };
  for (const auto& [key, dtype, mentions] : cases) {
    auto entries = StateDictEntries(*model);
    for (auto& [name, tensor] : entries) {
      if (name == key) tensor = tensor.detach().to(dtype);
    }
    const std::string path = ScratchPath("wrong_dtype.pth");
    ASSERT_TRUE(WriteTorchSaveStateDict(path, entries).ok());
    absl::Status s = LoadStateDict(*model, path, "ResNet-18");
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << key;
    EXPECT_NE(s.message().find(mentions), std::string::npos) << s;
  }
  // Other float widths and integer types are the same kind of number.
  auto entries = StateDictEntries(*model);
  for (auto& [name, tensor] : entries) {
    if (name == "conv1.weight") tensor = tensor.detach().to(torch::kHalf);
    if (name == "bn1.num_batches_tracked") tensor = tensor.to(torch::kInt);
  }
  const std::string path = ScratchPath("other_widths.pth");
  ASSERT_TRUE(WriteTorchSaveStateDict(path, entries).ok());
  absl::Status s = LoadStateDict(*model, path, "ResNet-18");
  EXPECT_TRUE(s.ok()) << s;
}

TEST(ResNetCheckpointTest, OtherDepthIsRejected) {
  const std::string path = ScratchPath("r18.pth");
  ASSERT_TRUE(SaveStateDict(**MakeResNet(18), path).ok());
  ResNet model = *MakeResNet(50);
  absl::Status s = LoadStateDict(*model, path, "ResNet-50 with 10 classes");
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("ResNet-50 with 10 classes"), std::string::npos) << s;
}

TEST(ResNetCheckpointTest, MissingTruncatedAndCorruptFilesAreErrors) {
  ResNet model = *MakeResNet(18);
  EXPECT_EQ(LoadStateDict(*model, ScratchPath("absent.pth"), "ResNet-18").code(), absl::StatusCode::kNotFound);

  const std::string good = ScratchPath("good.pth");
  ASSERT_TRUE(SaveStateDict(*model, good).ok());
  std::ifstream in(good, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string truncated = ScratchPath("truncated.pth");
  std::ofstream(truncated, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  absl::Status s = LoadStateDict(*model, truncated, "ResNet-18");
  EXPECT_FALSE(s.ok()) << s;
  EXPECT_NE(s.message().find(truncated), std::string::npos);

  const std::string garbage = ScratchPath("garbage.pth");
  std::ofstream(garbage, std::ios::binary) << "this is not a checkpoint";
  EXPECT_FALSE(LoadStateDict(*model, garbage, "ResNet-18").ok());
  const std::string empty = ScratchPath("empty.pth");
  std::ofstream(empty, std::ios::binary).flush();
  EXPECT_FALSE(LoadStateDict(*model, empty, "ResNet-18").ok());
}

}  // namespace
}  // namespace dlspeed
