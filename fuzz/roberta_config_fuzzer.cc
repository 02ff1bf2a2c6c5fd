// Fuzzes RobertaConfigFromJson (a checkpoint folder's config.json, the first
// thing LoadRobertaFolder reads): it either fails with a status or returns a
// config within kMaxRobertaParameters whose sizes are consistent; a small
// accepted config must also build and run a forward pass.
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "fuzz/fuzz_check.h"
#include "roberta/roberta.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const nlohmann::json json = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return 0;
  absl::StatusOr<dlspeed::RobertaConfig> config = dlspeed::RobertaConfigFromJson(json);
  if (!config.ok()) return 0;
  const double parameters = dlspeed::RobertaParameterCount(*config);
  FUZZ_CHECK(parameters <= dlspeed::kMaxRobertaParameters);
  FUZZ_CHECK(config->num_attention_heads > 0 && config->hidden_size % config->num_attention_heads == 0);
  FUZZ_CHECK(config->num_labels >= 1 && config->hidden_size >= 1 && config->intermediate_size >= 1);
  if (parameters > 2e5) return 0;  // keep each input fast
  torch::NoGradGuard no_grad;
  dlspeed::RobertaClassifier model(*config);
  model->eval();
  const int64_t length = std::min<int64_t>(4, config->max_position_embeddings - config->pad_token_id - 1);
  const torch::Tensor ids = torch::full({1, length}, std::min<int64_t>(config->vocab_size - 1, 5), torch::kLong);
  const torch::Tensor logits = model->forward(ids);
  FUZZ_CHECK(logits.size(0) == 1 && logits.size(1) == config->num_labels);
  return 0;
}
