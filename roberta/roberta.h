// RoBERTa / XLM-RoBERTa encoder with a sequence-classification head, in the
// LibTorch C++ frontend, with Hugging Face transformers' parameter names and
// semantics (RobertaForSequenceClassification / XLMRobertaForSequenceClassification):
// position ids count non-padding tokens from pad_token_id + 1, the attention
// mask hides padding, GELU (erf), post-LayerNorm, and the classifier head
// dense -> tanh -> out_proj on the first token (<s>); dropout only in training
// (the head's is classifier_dropout when config.json sets it).
//
//   absl::StatusOr<dlspeed::RobertaConfig> config = dlspeed::NamedRobertaConfig("xlm-roberta-base");
//   dlspeed::RobertaClassifier model(*config);
//   torch::Tensor logits = model->forward(input_ids, attention_mask);  // [B, num_labels]
//
// Checkpoint folders (config.json + model.safetensors) are read and written
// by roberta_checkpoint.h.
#ifndef DLSPEED_ROBERTA_ROBERTA_H_
#define DLSPEED_ROBERTA_ROBERTA_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <ATen/core/ivalue.h>
#include <nlohmann/json.hpp>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include "absl/status/statusor.h"

namespace dlspeed {

struct RobertaConfig {
  std::string model_type = "xlm-roberta";  // or "roberta"
  int64_t vocab_size = 250002;
  int64_t hidden_size = 768;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 12;
  int64_t intermediate_size = 3072;
  int64_t max_position_embeddings = 514;
  int64_t type_vocab_size = 1;
  int64_t pad_token_id = 1;
  int64_t bos_token_id = 0;
  int64_t eos_token_id = 2;
  double layer_norm_eps = 1e-5;
  double hidden_dropout_prob = 0.1;
  double attention_probs_dropout_prob = 0.1;
  // The classifier head's dropout; none (config.json's null): hidden_dropout_prob.
  std::optional<double> classifier_dropout;
  int64_t num_labels = 4;
};

// The configs of roberta-base, roberta-large, xlm-roberta-base,
// xlm-roberta-large, and "roberta-small": the study's RoBERTa small, taken as
// distilroberta-base's shape (6 layers of roberta-base). num_labels = 4.
// Unknown names are InvalidArgument, listing the known ones.
absl::StatusOr<RobertaConfig> NamedRobertaConfig(const std::string& name);
std::vector<std::string> NamedRobertaConfigs();
// The named config with this shape (vocabulary, width, depth, heads), e.g. for
// a checkpoint of xlm-roberta-base; otherwise "roberta-custom".
std::string RobertaConfigName(const RobertaConfig& config);

// The number of parameters of a RobertaClassifier with `config` (a double:
// no overflow whatever the sizes).
double RobertaParameterCount(const RobertaConfig& config);

// The most parameters a config.json may describe: 2^35 (34 billion, three
// times xlm-roberta-xxl), so that a corrupt file cannot make the loader try
// to allocate terabytes.
inline constexpr double kMaxRobertaParameters = 34359738368.0;

// The longest sequence, <s> and </s> included, whose positions the model's
// position embeddings cover (they number real tokens from pad_token_id + 1):
// 512 for roberta-base's 514.
int64_t MaxSequenceLength(const RobertaConfig& config);

// A config from a Hugging Face config.json (its RoBERTa fields; num_labels
// from "num_labels" or the size of "id2label"); InvalidArgument when a field
// is missing, of the wrong type, out of range (a size above 2^31, dropout
// outside [0, 1), a layer_norm_eps that is not positive, more parameters than
// kMaxRobertaParameters) or inconsistent (hidden_size not divisible by the
// heads, a hidden_act other than "gelu", ...).
absl::StatusOr<RobertaConfig> RobertaConfigFromJson(const nlohmann::json& json);
nlohmann::json RobertaConfigToJson(const RobertaConfig& config);

// nn::Linear (same parameters and names) that can switch to dynamic int8
// quantization for inference: per-channel int8 weights, prepacked once, and
// activations quantized batch by batch (quantized::linear_dynamic), as
// torch.ao.quantization.quantize_dynamic does for nn.Linear with
// per_channel_dynamic_qconfig (its default qconfig is per-tensor).
class RobertaLinearImpl : public torch::nn::LinearImpl {
 public:
  RobertaLinearImpl(int64_t in_features, int64_t out_features)
      : torch::nn::LinearImpl(torch::nn::LinearOptions(in_features, out_features)) {}
  torch::Tensor forward(const torch::Tensor& x);
  // Packs the current weights; later forwards run in int8 on the CPU, without
  // gradients. Throws c10::Error if this LibTorch lacks the quantized kernels.
  void QuantizeDynamicInt8();
  bool quantized() const { return !packed_.isNone(); }
  // The prepacked int8 weights (a LinearPackedParamsBase), None before QuantizeDynamicInt8.
  const c10::IValue& packed() const { return packed_; }

 private:
  c10::IValue packed_;  // LinearPackedParamsBase once quantized
};
TORCH_MODULE(RobertaLinear);

class RobertaEmbeddingsImpl : public torch::nn::Module {
 public:
  explicit RobertaEmbeddingsImpl(const RobertaConfig& config);
  torch::Tensor forward(const torch::Tensor& input_ids);

 private:
  int64_t pad_token_id_;
  torch::nn::Embedding word_embeddings{nullptr}, position_embeddings{nullptr}, token_type_embeddings{nullptr};
  torch::nn::LayerNorm layer_norm{nullptr};
  torch::nn::Dropout dropout{nullptr};
};
TORCH_MODULE(RobertaEmbeddings);

// One encoder layer: self-attention (attention.self.{query,key,value},
// attention.output.{dense,LayerNorm}), then the feed-forward block
// (intermediate.dense, output.{dense,LayerNorm}).
class RobertaLayerImpl : public torch::nn::Module {
 public:
  explicit RobertaLayerImpl(const RobertaConfig& config);
  // `mask`: bool [B, 1, 1, S], true where a key may be attended to, or
  // undefined (attend to every token).
  torch::Tensor forward(const torch::Tensor& hidden, const torch::Tensor& mask);

 private:
  int64_t heads_;
  double attention_dropout_;
  RobertaLinear query{nullptr}, key{nullptr}, value{nullptr}, attention_dense{nullptr};
  RobertaLinear intermediate_dense{nullptr}, output_dense{nullptr};
  torch::nn::LayerNorm attention_norm{nullptr}, output_norm{nullptr};
  torch::nn::Dropout dropout{nullptr};
};
TORCH_MODULE(RobertaLayer);

class RobertaClassifierImpl : public torch::nn::Module {
 public:
  explicit RobertaClassifierImpl(const RobertaConfig& config);
  // input_ids: int64 [B, S]; attention_mask: [B, S], nonzero for real tokens
  // (undefined: every token). Returns logits [B, num_labels].
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask = {});
  // The encoder's output [B, S, hidden] (last_hidden_state).
  torch::Tensor Encode(const torch::Tensor& input_ids, const torch::Tensor& attention_mask = {});

  const RobertaConfig& config() const { return config_; }

 private:
  RobertaConfig config_;
  RobertaEmbeddings embeddings{nullptr};
  torch::nn::ModuleList layers{nullptr};   // registered as roberta.encoder.layer
  std::vector<RobertaLayer> layer_list_;  // the same layers, typed
  RobertaLinear classifier_dense{nullptr}, classifier_out{nullptr};
  torch::nn::Dropout dropout{nullptr};
};
TORCH_MODULE(RobertaClassifier);

// Switches every Linear layer of the model (attention, feed-forward and the
// classifier head) to dynamic int8; returns how many were quantized.
int QuantizeDynamicInt8(RobertaClassifierImpl& model);

// Initialises weights as transformers does (normal(0, 0.02) for linear and
// embedding weights, zero biases, unit LayerNorms, a zero padding embedding).
void InitRobertaWeights(RobertaClassifierImpl& model);

}  // namespace dlspeed

#endif  // DLSPEED_ROBERTA_ROBERTA_H_
