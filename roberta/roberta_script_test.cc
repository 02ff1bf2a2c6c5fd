#include "roberta/roberta_script.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "common/testing/scratch_dir.h"
#include "resnet/resnet_script.h"
#include "roberta/roberta.h"
#include "roberta/test_config.h"

namespace dlspeed {
namespace {

// A small random model: 50 tokens, width 16, 2 layers of 2 heads. Its
// weights are larger than the initialiser's (std 0.02), so that the logits
// depend on which tokens are attended to, and a lost mask shows.
RobertaClassifier SmallModel() {
  torch::manual_seed(0);
  RobertaClassifier model(SmallRobertaConfig(/*vocab_size=*/50, /*hidden_size=*/16, /*max_position_embeddings=*/20));
  {
    torch::NoGradGuard no_grad;
    for (torch::Tensor& p : model->parameters()) p.normal_(/*mean=*/0, /*std=*/0.3);
  }
  model->eval();
  return model;
}

double MaxDifference(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<double>(); }

// forward({ids}) (no mask, as the benchmark and unpadded batches run it) and
// forward({ids, all ones}) compute the eager model's logits; a padded batch's
// mask still hides its padding.
void ExpectMatchesEager(torch::jit::Module& script, RobertaClassifierImpl& model, const std::string& what) {
  SCOPED_TRACE(what);
  torch::NoGradGuard no_grad;
  const torch::Tensor ids = torch::tensor({{0, 7, 9, 11, 2}, {0, 5, 4, 3, 2}});
  const torch::Tensor eager = model.forward(ids);
  const torch::Tensor unmasked = script.forward({ids}).toTensor();
  const torch::Tensor ones = script.forward({ids, torch::ones_like(ids)}).toTensor();
  EXPECT_LT(MaxDifference(unmasked, eager), 1e-5);
  EXPECT_LT(MaxDifference(unmasked, ones), 1e-5);
  // Again without a mask, after the executor has seen one.
  EXPECT_LT(MaxDifference(script.forward({ids}).toTensor(), eager), 1e-5);

  const torch::Tensor padded_ids = torch::tensor({{0, 7, 9, 2, 1, 1}, {0, 5, 4, 3, 8, 2}});
  const torch::Tensor padded_mask = torch::tensor({{1, 1, 1, 1, 0, 0}, {1, 1, 1, 1, 1, 1}});
  const torch::Tensor padded = script.forward({padded_ids, padded_mask}).toTensor();
  EXPECT_LT(MaxDifference(padded, model.forward(padded_ids, padded_mask)), 1e-5);
  EXPECT_GT(MaxDifference(padded, script.forward({padded_ids}).toTensor()), 1e-4) << "the mask was ignored";
}

TEST(RobertaScriptTest, MaskIsOptionalFrozenUnfrozenInt8AndLoadedBack) {
  RobertaClassifier model = SmallModel();
  const std::string path = ScratchPath("roberta.ts");
  for (const bool quantize : {false, true}) {
    if (quantize) QuantizeDynamicInt8(*model);
    for (const bool freeze : {true, false}) {
      const std::string what = std::string(quantize ? "int8" : "fp32") + (freeze ? " frozen" : " unfrozen");
      absl::StatusOr<torch::jit::Module> script = ScriptRoberta(*model, freeze);
      ASSERT_TRUE(script.ok()) << what << ": " << script.status();
      ExpectMatchesEager(*script, *model, what);
      ASSERT_TRUE(SaveScript(*script, path).ok()) << what;
      absl::StatusOr<torch::jit::Module> again = LoadScript(path);
      ASSERT_TRUE(again.ok()) << what << ": " << again.status();
      ExpectMatchesEager(*again, *model, what + ", loaded back");
    }
  }
}

}  // namespace
}  // namespace dlspeed
