#include "roberta/roberta.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/cuda.h>
#include <torch/torch.h>

#include "resnet/resnet_script.h"
#include "roberta/roberta_checkpoint.h"
#include "roberta/roberta_script.h"
#include "roberta/test_config.h"
#include "common/serialize/safetensors.h"
#include "common/testing/scratch_dir.h"

namespace dlspeed {
namespace {

// tests/fixtures/roberta_tiny: a 2-layer XLM-R classifier saved by
// transformers (tools/make_roberta_fixture.py), with the logits transformers
// computed for a padded batch.
const char kFixture[] = "tests/fixtures/roberta_tiny";

nlohmann::json Expected() {
  std::ifstream in(std::string(kFixture) + "/expected.json");
  return nlohmann::json::parse(in);
}

torch::Tensor ToTensor(const nlohmann::json& rows, torch::Dtype dtype) {
  std::vector<torch::Tensor> parts;
  for (const auto& row : rows) {
    std::vector<double> values = row.get<std::vector<double>>();
    parts.push_back(torch::tensor(values, torch::kDouble));
  }
  return torch::stack(parts).to(dtype);
}

TEST(RobertaTest, LogitsMatchTransformersWithPadding) {
  absl::StatusOr<LoadedRoberta> loaded = LoadRobertaFolder(kFixture);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->summary.find("randomly"), std::string::npos) << loaded->summary;
  RobertaClassifier model = loaded->model;
  model->eval();
  const nlohmann::json expected = Expected();
  const torch::Tensor ids = ToTensor(expected["input_ids"], torch::kLong);
  const torch::Tensor mask = ToTensor(expected["attention_mask"], torch::kLong);
  torch::NoGradGuard no_grad;
  const torch::Tensor logits = model->forward(ids, mask);
  const torch::Tensor want = ToTensor(expected["logits"], torch::kFloat);
  EXPECT_LT((logits - want).abs().max().item<double>(), 1e-4) << logits << want;
  const torch::Tensor first = model->Encode(ids, mask).select(1, 0);
  const torch::Tensor want_first = ToTensor(expected["last_hidden_state_first_token"], torch::kFloat);
  EXPECT_LT((first - want_first).abs().max().item<double>(), 1e-4);
}

// A batch without padding may be given no mask (the trainers do, so that
// attention can use its mask-free kernels): the logits are those of an
// all-ones mask.
TEST(RobertaTest, NoMaskEqualsAnAllOnesMask) {
  absl::StatusOr<LoadedRoberta> loaded = LoadRobertaFolder(kFixture);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  RobertaClassifier model = loaded->model;
  model->eval();
  const torch::Tensor ids = ToTensor(Expected()["input_ids"], torch::kLong);
  torch::NoGradGuard no_grad;
  const torch::Tensor with_mask = model->forward(ids, torch::ones_like(ids));
  EXPECT_LT((model->forward(ids) - with_mask).abs().max().item<double>(), 1e-5);
  // Padding positions do change the logits once they are attended to.
  const torch::Tensor mask = ToTensor(Expected()["attention_mask"], torch::kLong);
  ASSERT_FALSE(mask.all().item<bool>());
  EXPECT_GT((model->forward(ids, mask) - with_mask).abs().max().item<double>(), 1e-4);
}

// Half-precision weights (model.half() in transformers), as the fp16 variant
// of roberta_forward_benchmark runs on a GPU: bf16 on the CPU, fp16 on CUDA
// where there is one; with and without the padding mask.
TEST(RobertaTest, HalfPrecisionWeightsStayCloseToFp32) {
  absl::StatusOr<LoadedRoberta> loaded = LoadRobertaFolder(kFixture);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  RobertaClassifier model = loaded->model;
  model->eval();
  const torch::Tensor ids = ToTensor(Expected()["input_ids"], torch::kLong);
  const torch::Tensor mask = ToTensor(Expected()["attention_mask"], torch::kLong);
  torch::NoGradGuard no_grad;
  const torch::Tensor fp32_masked = model->forward(ids, mask);
  const torch::Tensor fp32 = model->forward(ids);
  std::vector<std::pair<c10::Device, torch::Dtype>> cases = {{c10::Device(c10::kCPU), torch::kBFloat16}};
  if (torch::cuda::is_available()) cases.push_back({c10::Device(c10::kCUDA, 0), torch::kHalf});
  for (const auto& [device, dtype] : cases) {
    SCOPED_TRACE(device.str());
    model->to(device, dtype);
    const torch::Tensor masked = model->forward(ids.to(device), mask.to(device));
    const torch::Tensor unmasked = model->forward(ids.to(device));
    EXPECT_EQ(masked.scalar_type(), dtype);
    EXPECT_LT((masked.to(torch::kCPU, torch::kFloat) - fp32_masked).abs().max().item<double>(), 0.05);
    EXPECT_LT((unmasked.to(torch::kCPU, torch::kFloat) - fp32).abs().max().item<double>(), 0.05);
    model->to(c10::Device(c10::kCPU), torch::kFloat);
  }
}

// One SGD step as transformers takes it (eval mode, mean cross-entropy, lr 0.1,
// no momentum): same loss, same gradient norms per parameter, same logits after.
TEST(RobertaTest, GradientsAndOneStepMatchTransformers) {
  absl::StatusOr<LoadedRoberta> loaded = LoadRobertaFolder(kFixture);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  RobertaClassifier model = loaded->model;
  model->eval();
  const nlohmann::json expected = Expected();
  const nlohmann::json& step = expected["train_step"];
  const torch::Tensor ids = ToTensor(expected["input_ids"], torch::kLong);
  const torch::Tensor mask = ToTensor(expected["attention_mask"], torch::kLong);
  const torch::Tensor labels = torch::tensor(step["labels"].get<std::vector<int64_t>>());
  torch::Tensor loss = torch::nn::functional::cross_entropy(model->forward(ids, mask), labels);
  EXPECT_NEAR(loss.item<double>(), step["loss_before"].get<double>(), 1e-5);
  loss.backward();
  for (const auto& item : model->named_parameters()) {
    const double want = step["grad_norms"][item.key()].get<double>();
    // Key biases cannot change attention (softmax ignores a per-query shift):
    // their gradients are rounding noise, so compare them absolutely.
    EXPECT_NEAR(item.value().grad().norm().item<double>(), want, 1e-4 + 1e-4 * want) << item.key();
  }
  {
    torch::NoGradGuard no_grad;
    for (auto& p : model->parameters()) p.sub_(p.grad() * step["lr"].get<double>());
    const torch::Tensor after = model->forward(ids, mask);
    EXPECT_LT((after - ToTensor(step["logits_after"], torch::kFloat)).abs().max().item<double>(), 1e-4);
  }
}

TEST(RobertaTest, DynamicInt8StaysCloseToFp32) {
  absl::StatusOr<LoadedRoberta> loaded = LoadRobertaFolder(kFixture);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  RobertaClassifier model = loaded->model;
  model->eval();
  const nlohmann::json expected = Expected();
  const torch::Tensor ids = ToTensor(expected["input_ids"], torch::kLong);
  const torch::Tensor mask = ToTensor(expected["attention_mask"], torch::kLong);
  torch::NoGradGuard no_grad;
  const torch::Tensor fp32 = model->forward(ids, mask);
  EXPECT_EQ(QuantizeDynamicInt8(*model), 2 * 6 + 2);  // 6 Linear layers per encoder layer, 2 in the head
  const torch::Tensor int8 = model->forward(ids, mask);
  EXPECT_FALSE(int8.equal(fp32)) << "the int8 path did not run";
  EXPECT_LT((int8 - fp32).abs().max().item<double>(), 0.1) << int8 << fp32;
  EXPECT_TRUE(int8.argmax(1).equal(fp32.argmax(1)));
}

TEST(RobertaTest, FrozenTorchScriptMatchesEagerAndLoadsBack) {
  absl::StatusOr<LoadedRoberta> loaded = LoadRobertaFolder(kFixture);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  RobertaClassifier model = loaded->model;
  model->eval();
  const nlohmann::json expected = Expected();
  const torch::Tensor ids = ToTensor(expected["input_ids"], torch::kLong);
  const torch::Tensor mask = ToTensor(expected["attention_mask"], torch::kLong);
  absl::StatusOr<torch::jit::Module> script = ScriptRoberta(*model);
  ASSERT_TRUE(script.ok()) << script.status();
  torch::NoGradGuard no_grad;
  const torch::Tensor eager = model->forward(ids, mask);
  const torch::Tensor scripted = script->forward({ids, mask}).toTensor();
  EXPECT_LT((scripted - eager).abs().max().item<double>(), 1e-5);
  const std::string path = ScratchPath("roberta.ts");
  ASSERT_TRUE(SaveScript(*script, path).ok());
  absl::StatusOr<torch::jit::Module> again = LoadScript(path);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_LT((again->forward({ids, mask}).toTensor() - eager).abs().max().item<double>(), 1e-5);

  // Dynamic int8: the script runs the same prepacked weights and kernels, and saves and loads.
  QuantizeDynamicInt8(*model);
  const torch::Tensor int8_eager = model->forward(ids, mask);
  absl::StatusOr<torch::jit::Module> int8_script = ScriptRoberta(*model);
  ASSERT_TRUE(int8_script.ok()) << int8_script.status();
  const torch::Tensor int8_scripted = int8_script->forward({ids, mask}).toTensor();
  EXPECT_FALSE(int8_scripted.equal(scripted)) << "the int8 kernels did not run";
  EXPECT_LT((int8_scripted - int8_eager).abs().max().item<double>(), 1e-5);
  ASSERT_TRUE(SaveScript(*int8_script, path).ok());
  absl::StatusOr<torch::jit::Module> int8_again = LoadScript(path);
  ASSERT_TRUE(int8_again.ok()) << int8_again.status();
  EXPECT_LT((int8_again->forward({ids, mask}).toTensor() - int8_eager).abs().max().item<double>(), 1e-5);
}

TEST(RobertaTest, ParameterNamesAndShapesAreTransformers) {
  const nlohmann::json expected = Expected()["parameter_names"];
  absl::StatusOr<LoadedRoberta> loaded = LoadRobertaFolder(kFixture);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  std::map<std::string, std::vector<int64_t>> ours;
  for (const auto& item : loaded->model->named_parameters()) ours[item.key()] = item.value().sizes().vec();
  std::map<std::string, std::vector<int64_t>> theirs;
  for (const auto& [name, shape] : expected.items()) {
    if (name.find("position_ids") == std::string::npos) theirs[name] = shape.get<std::vector<int64_t>>();
  }
  EXPECT_EQ(ours, theirs);
}

// A small random model: 50 tokens, width 16, 2 layers of 2 heads.
RobertaConfig SmallConfig(int64_t max_position_embeddings) {
  return SmallRobertaConfig(/*vocab_size=*/50, /*hidden_size=*/16, max_position_embeddings);
}

TEST(RobertaTest, PaddingDoesNotChangeARowsLogits) {
  torch::manual_seed(0);
  RobertaClassifier model(SmallConfig(/*max_position_embeddings=*/20));
  model->eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor alone = model->forward(torch::tensor({{0, 7, 9, 2}}), torch::ones({1, 4}, torch::kLong));
  const torch::Tensor padded =
      model->forward(torch::tensor({{0, 7, 9, 2, 1, 1}}), torch::tensor({{1, 1, 1, 1, 0, 0}}));
  EXPECT_TRUE(torch::allclose(alone, padded, 1e-5, 1e-6));
  // No mask at all: every token attended to.
  const torch::Tensor unmasked = model->forward(torch::tensor({{0, 7, 9, 2}}));
  EXPECT_TRUE(torch::allclose(alone, unmasked, 1e-5, 1e-6));
}

TEST(RobertaTest, SavedFolderLoadsBackTheSameModel) {
  absl::StatusOr<LoadedRoberta> loaded = LoadRobertaFolder(kFixture);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const std::string dir = ScratchPath("roberta_saved");
  ASSERT_TRUE(SaveRobertaFolder(*loaded->model, dir).ok());
  absl::StatusOr<LoadedRoberta> again = LoadRobertaFolder(dir);
  ASSERT_TRUE(again.ok()) << again.status();
  auto a = loaded->model->named_parameters();
  auto b = again->model->named_parameters();
  ASSERT_EQ(a.size(), b.size());
  for (const auto& item : a) EXPECT_TRUE(item.value().equal(b[item.key()])) << item.key();
  EXPECT_EQ(again->model->config().num_labels, 4);
}

TEST(RobertaTest, ANewLabelCountKeepsTheEncoderAndSaysTheHeadIsNew) {
  absl::StatusOr<LoadedRoberta> loaded = LoadRobertaFolder(kFixture, /*num_labels=*/7);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_NE(loaded->summary.find("initialised randomly"), std::string::npos) << loaded->summary;
  EXPECT_EQ(loaded->model->config().num_labels, 7);
}

TEST(RobertaTest, ABaseModelsSaveLoadsWithANewHead) {
  // transformers' XLMRobertaModel saves the encoder without the "roberta."
  // prefix, with a pooler and no classifier.
  absl::StatusOr<NamedTensors> classifier = ReadSafetensors(std::string(kFixture) + "/model.safetensors");
  ASSERT_TRUE(classifier.ok()) << classifier.status();
  NamedTensors base;
  for (const auto& [name, tensor] : *classifier) {
    if (name.rfind("classifier.", 0) == 0) continue;
    base.emplace_back(name.rfind("roberta.", 0) == 0 ? name.substr(8) : name, tensor);
  }
  const int64_t hidden = LoadRobertaFolder(kFixture)->model->config().hidden_size;
  base.emplace_back("pooler.dense.weight", torch::zeros({hidden, hidden}));
  base.emplace_back("pooler.dense.bias", torch::zeros({hidden}));
  const std::string dir = ScratchPath("roberta_base_model");
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(std::string(kFixture) + "/config.json", dir + "/config.json");
  ASSERT_TRUE(WriteSafetensors(dir + "/model.safetensors", base).ok());

  absl::StatusOr<LoadedRoberta> loaded = LoadRobertaFolder(dir);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_NE(loaded->summary.find("initialised randomly"), std::string::npos) << loaded->summary;
  absl::StatusOr<LoadedRoberta> fixture = LoadRobertaFolder(kFixture);
  const torch::Tensor a = loaded->model->named_parameters()["roberta.encoder.layer.1.output.dense.weight"];
  const torch::Tensor b = fixture->model->named_parameters()["roberta.encoder.layer.1.output.dense.weight"];
  EXPECT_TRUE(a.equal(b));
}

TEST(RobertaTest, NamedConfigsAndBadInput) {
  absl::StatusOr<RobertaConfig> base = NamedRobertaConfig("xlm-roberta-base");
  ASSERT_TRUE(base.ok());
  EXPECT_EQ(base->vocab_size, 250002);
  EXPECT_EQ(NamedRobertaConfig("roberta-small")->num_hidden_layers, 6);
  EXPECT_FALSE(NamedRobertaConfig("bert-base").ok());

  nlohmann::json json = RobertaConfigToJson(*base);
  json["num_attention_heads"] = 5;
  EXPECT_NE(RobertaConfigFromJson(json).status().message().find("multiple"), std::string::npos);
  json = RobertaConfigToJson(*base);
  json.erase("hidden_size");
  EXPECT_NE(RobertaConfigFromJson(json).status().message().find("hidden_size"), std::string::npos);
  for (const char* key : {"hidden_size", "intermediate_size"}) {  // found by fuzz/roberta_config_fuzzer
    json = RobertaConfigToJson(*base);
    json[key] = 0;
    EXPECT_NE(RobertaConfigFromJson(json).status().message().find(std::string(key) + "\" must be at least 1"),
              std::string::npos)
        << key;
  }

  EXPECT_EQ(LoadRobertaFolder(ScratchPath("no_such_folder")).status().code(), absl::StatusCode::kNotFound);
}

TEST(RobertaTest, BadModelTypeOrHiddenActIsAnError) {
  const nlohmann::json good = RobertaConfigToJson(*NamedRobertaConfig("roberta-base"));
  nlohmann::json json = good;
  json["model_type"] = 5;  // was ignored, leaving the default "roberta"
  EXPECT_NE(RobertaConfigFromJson(json).status().message().find("\"model_type\" must be a string"), std::string::npos)
      << RobertaConfigFromJson(json).status();
  json = good;
  json["hidden_act"] = "relu";
  EXPECT_NE(RobertaConfigFromJson(json).status().message().find("hidden_act \"relu\" is not supported"),
            std::string::npos);
  // Quoting this with dump(), which recurses, overflowed the stack (found by
  // fuzz/roberta_config_fuzzer); the parser itself does not recurse.
  constexpr int kDepth = 200000;
  json = good;
  json["hidden_act"] = nlohmann::json::parse(std::string(kDepth, '[') + std::string(kDepth, ']'));
  EXPECT_NE(RobertaConfigFromJson(json).status().message().find("hidden_act (an array) is not supported"),
            std::string::npos);
}

TEST(RobertaTest, ClassifierDropoutIsReadAndWritten) {
  nlohmann::json json = RobertaConfigToJson(*NamedRobertaConfig("roberta-base"));
  EXPECT_TRUE(json["classifier_dropout"].is_null());
  EXPECT_FALSE(RobertaConfigFromJson(json)->classifier_dropout.has_value());
  json["classifier_dropout"] = 0.3;
  absl::StatusOr<RobertaConfig> config = RobertaConfigFromJson(json);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->classifier_dropout, 0.3);
  EXPECT_EQ(RobertaConfigToJson(*config)["classifier_dropout"], 0.3);
  json["classifier_dropout"] = 1.5;
  EXPECT_NE(RobertaConfigFromJson(json).status().message().find("classifier_dropout"), std::string::npos);
}

TEST(RobertaTest, MaxSequenceLengthIsWhatThePositionsCover) {
  EXPECT_EQ(MaxSequenceLength(*NamedRobertaConfig("roberta-base")), 512);
  const RobertaConfig config = SmallConfig(/*max_position_embeddings=*/10);
  RobertaClassifier model(config);
  model->eval();
  torch::NoGradGuard no_grad;
  EXPECT_NO_THROW(model->forward(torch::full({1, MaxSequenceLength(config)}, 5, torch::kLong)));
  EXPECT_THROW(model->forward(torch::full({1, MaxSequenceLength(config) + 1}, 5, torch::kLong)), c10::Error);
}

TEST(RobertaTest, ParameterCountIsTheModelsAndBoundsConfigs) {
  absl::StatusOr<LoadedRoberta> tiny = LoadRobertaFolder(kFixture);
  ASSERT_TRUE(tiny.ok()) << tiny.status();
  int64_t numel = 0;
  for (const auto& p : tiny->model->parameters()) numel += p.numel();
  EXPECT_EQ(RobertaParameterCount(tiny->model->config()), static_cast<double>(numel));
  // xlm-roberta-base: 278 million with its 4-label head.
  EXPECT_NEAR(RobertaParameterCount(*NamedRobertaConfig("xlm-roberta-base")), 278.0e6, 1.0e6);

  nlohmann::json json = RobertaConfigToJson(*NamedRobertaConfig("xlm-roberta-base"));
  json["num_hidden_layers"] = 100000;  // 7 trillion parameters
  EXPECT_NE(RobertaConfigFromJson(json).status().message().find("more than this loader builds"), std::string::npos);
  json = RobertaConfigToJson(*NamedRobertaConfig("xlm-roberta-base"));
  json["hidden_size"] = uint64_t{1} << 63;
  EXPECT_NE(RobertaConfigFromJson(json).status().message().find("from 0 to 2147483647"), std::string::npos);
  json = RobertaConfigToJson(*NamedRobertaConfig("xlm-roberta-base"));
  json["hidden_dropout_prob"] = 1.5;
  EXPECT_NE(RobertaConfigFromJson(json).status().message().find("not in [0, 1)"), std::string::npos);
  json = RobertaConfigToJson(*NamedRobertaConfig("xlm-roberta-base"));
  json["layer_norm_eps"] = 0;
  EXPECT_NE(RobertaConfigFromJson(json).status().message().find("layer_norm_eps"), std::string::npos);
}

}  // namespace
}  // namespace dlspeed
