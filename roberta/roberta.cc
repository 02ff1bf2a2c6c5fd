#include "roberta/roberta.h"

#include <cmath>
#include <limits>
#include <memory>
#include <optional>

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/native/quantized/PackedParams.h>
#include <torch/nn/init.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace dlspeed {
namespace {

namespace nn = torch::nn;

// A parameterless module that only gives its children a name prefix, so that
// parameter names follow transformers' nesting (roberta.encoder.layer.0.
// attention.self.query.weight) while forward stays flat.
std::shared_ptr<nn::Module> Namespace(nn::Module& parent, const std::string& name) {
  return parent.register_module(name, std::make_shared<nn::Module>());
}

nn::LayerNorm MakeLayerNorm(const RobertaConfig& config) {
  return nn::LayerNorm(nn::LayerNormOptions({config.hidden_size}).eps(config.layer_norm_eps));
}

struct NamedConfig {
  const char* name;
  const char* model_type;
  int64_t vocab, hidden, layers, heads, intermediate;
};

constexpr NamedConfig kNamedConfigs[] = {
    {"roberta-small", "roberta", 50265, 768, 6, 12, 3072},  // distilroberta-base's shape
    {"roberta-base", "roberta", 50265, 768, 12, 12, 3072},
    {"roberta-large", "roberta", 50265, 1024, 24, 16, 4096},
    {"xlm-roberta-base", "xlm-roberta", 250002, 768, 12, 12, 3072},
    {"xlm-roberta-large", "xlm-roberta", 250002, 1024, 24, 16, 4096},
};

using LinearPacked = c10::intrusive_ptr<LinearPackedParamsBase>;

const c10::TypedOperatorHandle<LinearPacked(at::Tensor, std::optional<at::Tensor>)>& LinearPrepack() {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("quantized::linear_prepack", "")
                             .typed<LinearPacked(at::Tensor, std::optional<at::Tensor>)>();
  return op;
}

const c10::TypedOperatorHandle<at::Tensor(at::Tensor, const LinearPacked&, bool)>& LinearDynamic() {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("quantized::linear_dynamic", "")
                             .typed<at::Tensor(at::Tensor, const LinearPacked&, bool)>();
  return op;
}

}  // namespace

torch::Tensor RobertaLinearImpl::forward(const torch::Tensor& x) {
  if (packed_.isNone()) return torch::nn::LinearImpl::forward(x);
  // reduce_range as PyTorch's dynamic Linear uses on x86 (fbgemm's 7-bit activations).
  return LinearDynamic().call(x.to(at::kFloat).contiguous(), packed_.toCustomClass<LinearPackedParamsBase>(),
                              /*reduce_range=*/true);
}

void RobertaLinearImpl::QuantizeDynamicInt8() {
  torch::NoGradGuard no_grad;
  const at::Tensor w = weight.detach().to(at::kFloat).contiguous();
  const at::Tensor scales =
      (w.abs().amax(/*dim=*/1).to(at::kDouble) / 127.5).clamp_min(static_cast<double>(std::numeric_limits<float>::epsilon()));
  const at::Tensor q = at::quantize_per_channel(w, scales, at::zeros({w.size(0)}, at::kLong), /*axis=*/0, at::kQInt8);
  packed_ = c10::IValue(LinearPrepack().call(q, bias.defined() ? std::optional<at::Tensor>(bias.detach().to(at::kFloat))
                                                                : std::nullopt));
}

int QuantizeDynamicInt8(RobertaClassifierImpl& model) {
  int count = 0;
  for (const auto& module : model.modules(/*include_self=*/false)) {
    if (auto* linear = module->as<RobertaLinearImpl>()) {
      linear->QuantizeDynamicInt8();
      ++count;
    }
  }
  return count;
}

std::vector<std::string> NamedRobertaConfigs() {
  std::vector<std::string> names;
  for (const NamedConfig& c : kNamedConfigs) names.push_back(c.name);
  return names;
}

std::string RobertaConfigName(const RobertaConfig& config) {
  for (const NamedConfig& c : kNamedConfigs) {
    if (c.vocab == config.vocab_size && c.hidden == config.hidden_size && c.layers == config.num_hidden_layers &&
        c.heads == config.num_attention_heads && c.intermediate == config.intermediate_size) {
      return c.name;
    }
  }
  return "roberta-custom";
}

absl::StatusOr<RobertaConfig> NamedRobertaConfig(const std::string& name) {
  for (const NamedConfig& c : kNamedConfigs) {
    if (name != c.name) continue;
    RobertaConfig config;
    config.model_type = c.model_type;
    config.vocab_size = c.vocab;
    config.hidden_size = c.hidden;
    config.num_hidden_layers = c.layers;
    config.num_attention_heads = c.heads;
    config.intermediate_size = c.intermediate;
    return config;
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown model '", name, "' (choose ",
                                                 absl::StrJoin(NamedRobertaConfigs(), ", "),
                                                 ", or give a checkpoint folder)"));
}

int64_t MaxSequenceLength(const RobertaConfig& config) {
  return config.max_position_embeddings - config.pad_token_id - 1;
}

absl::StatusOr<RobertaConfig> RobertaConfigFromJson(const nlohmann::json& json) {
  if (!json.is_object()) return absl::InvalidArgumentError("config.json is not a JSON object");
  constexpr int64_t kMaxSize = (int64_t{1} << 31) - 1;  // any real config's sizes are far below
  RobertaConfig config;
  auto read_int = [&](const char* key, int64_t* value, bool required) -> absl::Status {
    if (!json.contains(key)) {
      return required ? absl::InvalidArgumentError(absl::StrCat("config.json lacks \"", key, "\"")) : absl::OkStatus();
    }
    // An unsigned integer above INT64_MAX reads as negative here.
    if (!json[key].is_number_integer() || json[key].get<int64_t>() < 0 || json[key].get<int64_t>() > kMaxSize) {
      return absl::InvalidArgumentError(
          absl::StrCat("config.json: \"", key, "\" must be an integer from 0 to ", kMaxSize));
    }
    *value = json[key].get<int64_t>();
    return absl::OkStatus();
  };
  auto read_double = [&](const char* key, double* value) -> absl::Status {
    if (!json.contains(key)) return absl::OkStatus();
    if (!json[key].is_number()) return absl::InvalidArgumentError(absl::StrCat("config.json: \"", key, "\" must be a number"));
    *value = json[key].get<double>();
    return absl::OkStatus();
  };
  for (auto [key, value, required] : {std::make_tuple("vocab_size", &config.vocab_size, true),
                                      std::make_tuple("hidden_size", &config.hidden_size, true),
                                      std::make_tuple("num_hidden_layers", &config.num_hidden_layers, true),
                                      std::make_tuple("num_attention_heads", &config.num_attention_heads, true),
                                      std::make_tuple("intermediate_size", &config.intermediate_size, true),
                                      std::make_tuple("max_position_embeddings", &config.max_position_embeddings, true),
                                      std::make_tuple("type_vocab_size", &config.type_vocab_size, false),
                                      std::make_tuple("pad_token_id", &config.pad_token_id, false),
                                      std::make_tuple("bos_token_id", &config.bos_token_id, false),
                                      std::make_tuple("eos_token_id", &config.eos_token_id, false),
                                      std::make_tuple("num_labels", &config.num_labels, false)}) {
    if (absl::Status s = read_int(key, value, required); !s.ok()) return s;
  }
  if (!json.contains("num_labels") && json.contains("id2label") && json["id2label"].is_object()) {
    config.num_labels = static_cast<int64_t>(json["id2label"].size());
  }
  for (auto [key, value] : {std::make_pair("layer_norm_eps", &config.layer_norm_eps),
                            std::make_pair("hidden_dropout_prob", &config.hidden_dropout_prob),
                            std::make_pair("attention_probs_dropout_prob", &config.attention_probs_dropout_prob)}) {
    if (absl::Status s = read_double(key, value); !s.ok()) return s;
  }
  if (json.contains("classifier_dropout") && !json["classifier_dropout"].is_null()) {
    double p = 0;
    if (absl::Status s = read_double("classifier_dropout", &p); !s.ok()) return s;
    config.classifier_dropout = p;
  }
  if (json.contains("model_type")) {
    if (!json["model_type"].is_string()) {
      return absl::InvalidArgumentError("config.json: \"model_type\" must be a string");
    }
    config.model_type = json["model_type"];
  }
  if (config.model_type != "roberta" && config.model_type != "xlm-roberta") {
    return absl::InvalidArgumentError(absl::StrCat("config.json: model_type '", config.model_type,
                                                   "' is not roberta or xlm-roberta"));
  }
  if (json.contains("hidden_act") && json["hidden_act"] != "gelu") {
    // dump() recurses: a deeply nested array would overflow the stack (found by fuzzing).
    const nlohmann::json& act = json["hidden_act"];
    const std::string shown = act.is_structured() ? absl::StrCat("(an ", act.type_name(), ")") : act.dump();
    return absl::InvalidArgumentError(
        absl::StrCat("config.json: hidden_act ", shown, " is not supported (only \"gelu\")"));
  }
  // A Linear layer with no inputs cannot be initialised (its bias bound is 1/sqrt(0)).
  for (auto [key, size] : {std::make_pair("hidden_size", config.hidden_size),
                           std::make_pair("intermediate_size", config.intermediate_size)}) {
    if (size < 1) return absl::InvalidArgumentError(absl::StrCat("config.json: \"", key, "\" must be at least 1"));
  }
  if (config.num_attention_heads == 0 || config.hidden_size % config.num_attention_heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat("config.json: hidden_size ", config.hidden_size,
                                                   " is not a multiple of num_attention_heads ",
                                                   config.num_attention_heads));
  }
  if (config.num_labels < 1 || config.vocab_size <= config.pad_token_id ||
      config.max_position_embeddings <= config.pad_token_id + 1 || config.type_vocab_size < 1) {
    return absl::InvalidArgumentError(
        "config.json: num_labels, vocab_size, type_vocab_size or max_position_embeddings is too small");
  }
  for (auto [key, p] : {std::make_pair("hidden_dropout_prob", config.hidden_dropout_prob),
                        std::make_pair("attention_probs_dropout_prob", config.attention_probs_dropout_prob),
                        std::make_pair("classifier_dropout", config.classifier_dropout.value_or(0.0))}) {
    if (!(p >= 0 && p < 1)) return absl::InvalidArgumentError(absl::StrCat("config.json: ", key, " ", p, " is not in [0, 1)"));
  }
  if (!(config.layer_norm_eps > 0 && std::isfinite(config.layer_norm_eps))) {
    return absl::InvalidArgumentError(absl::StrCat("config.json: layer_norm_eps ", config.layer_norm_eps,
                                                   " is not a positive number"));
  }
  if (const double count = RobertaParameterCount(config); count > kMaxRobertaParameters) {
    return absl::InvalidArgumentError(absl::StrCat("config.json describes a model of ", count,
                                                   " parameters: more than this loader builds (", kMaxRobertaParameters,
                                                   ")"));
  }
  return config;
}

double RobertaParameterCount(const RobertaConfig& c) {
  const double h = static_cast<double>(c.hidden_size), inter = static_cast<double>(c.intermediate_size);
  const double embeddings = (static_cast<double>(c.vocab_size) + static_cast<double>(c.max_position_embeddings) +
                             static_cast<double>(c.type_vocab_size)) * h + 2 * h;  // + LayerNorm
  // Q, K, V, output (weights and biases), two LayerNorms, the feed-forward pair.
  const double layer = 4 * (h * h + h) + 4 * h + (h * inter + inter) + (inter * h + h);
  const double classifier = (h * h + h) + (h * static_cast<double>(c.num_labels) + static_cast<double>(c.num_labels));
  return embeddings + static_cast<double>(c.num_hidden_layers) * layer + classifier;
}

nlohmann::json RobertaConfigToJson(const RobertaConfig& config) {
  nlohmann::json id2label = nlohmann::json::object(), label2id = nlohmann::json::object();
  for (int64_t i = 0; i < config.num_labels; ++i) {
    id2label[std::to_string(i)] = absl::StrCat("LABEL_", i);
    label2id[absl::StrCat("LABEL_", i)] = i;
  }
  const bool xlm = config.model_type == "xlm-roberta";
  return {{"architectures", {xlm ? "XLMRobertaForSequenceClassification" : "RobertaForSequenceClassification"}},
          {"model_type", config.model_type},
          {"vocab_size", config.vocab_size},
          {"hidden_size", config.hidden_size},
          {"num_hidden_layers", config.num_hidden_layers},
          {"num_attention_heads", config.num_attention_heads},
          {"intermediate_size", config.intermediate_size},
          {"hidden_act", "gelu"},
          {"max_position_embeddings", config.max_position_embeddings},
          {"type_vocab_size", config.type_vocab_size},
          {"pad_token_id", config.pad_token_id},
          {"bos_token_id", config.bos_token_id},
          {"eos_token_id", config.eos_token_id},
          {"layer_norm_eps", config.layer_norm_eps},
          {"hidden_dropout_prob", config.hidden_dropout_prob},
          {"attention_probs_dropout_prob", config.attention_probs_dropout_prob},
          {"classifier_dropout", config.classifier_dropout ? nlohmann::json(*config.classifier_dropout) : nlohmann::json()},
          {"initializer_range", 0.02},
          {"position_embedding_type", "absolute"},
          {"problem_type", "single_label_classification"},
          {"id2label", id2label},
          {"label2id", label2id}};
}

RobertaEmbeddingsImpl::RobertaEmbeddingsImpl(const RobertaConfig& config)
    : pad_token_id_(config.pad_token_id),
      word_embeddings(nn::EmbeddingOptions(config.vocab_size, config.hidden_size).padding_idx(config.pad_token_id)),
      position_embeddings(
          nn::EmbeddingOptions(config.max_position_embeddings, config.hidden_size).padding_idx(config.pad_token_id)),
      token_type_embeddings(config.type_vocab_size, config.hidden_size),
      layer_norm(MakeLayerNorm(config)),
      dropout(config.hidden_dropout_prob) {
  register_module("word_embeddings", word_embeddings);
  register_module("position_embeddings", position_embeddings);
  register_module("token_type_embeddings", token_type_embeddings);
  register_module("LayerNorm", layer_norm);
  register_module("dropout", dropout);
}

torch::Tensor RobertaEmbeddingsImpl::forward(const torch::Tensor& input_ids) {
  // transformers' create_position_ids_from_input_ids: real tokens are numbered
  // pad+1, pad+2, ... and padding keeps position pad_token_id.
  const torch::Tensor real = input_ids.ne(pad_token_id_).to(torch::kLong);
  const torch::Tensor positions = real.cumsum(1) * real + pad_token_id_;
  torch::Tensor x = word_embeddings(input_ids) + position_embeddings(positions);
  x = x + token_type_embeddings->weight[0];  // token_type_ids are all 0 for RoBERTa
  return dropout(layer_norm(x));
}

RobertaLayerImpl::RobertaLayerImpl(const RobertaConfig& config)
    : heads_(config.num_attention_heads),
      attention_dropout_(config.attention_probs_dropout_prob),
      query(config.hidden_size, config.hidden_size),
      key(config.hidden_size, config.hidden_size),
      value(config.hidden_size, config.hidden_size),
      attention_dense(config.hidden_size, config.hidden_size),
      intermediate_dense(config.hidden_size, config.intermediate_size),
      output_dense(config.intermediate_size, config.hidden_size),
      attention_norm(MakeLayerNorm(config)),
      output_norm(MakeLayerNorm(config)),
      dropout(config.hidden_dropout_prob) {
  auto attention = Namespace(*this, "attention");
  auto self = Namespace(*attention, "self");
  self->register_module("query", query);
  self->register_module("key", key);
  self->register_module("value", value);
  auto attention_output = Namespace(*attention, "output");
  attention_output->register_module("dense", attention_dense);
  attention_output->register_module("LayerNorm", attention_norm);
  Namespace(*this, "intermediate")->register_module("dense", intermediate_dense);
  auto output = Namespace(*this, "output");
  output->register_module("dense", output_dense);
  output->register_module("LayerNorm", output_norm);
  register_module("dropout", dropout);
}

torch::Tensor RobertaLayerImpl::forward(const torch::Tensor& hidden, const torch::Tensor& mask) {
  const int64_t batch = hidden.size(0), length = hidden.size(1), width = hidden.size(2);
  auto split_heads = [&](const torch::Tensor& t) { return t.view({batch, length, heads_, width / heads_}).transpose(1, 2); };
  const torch::Tensor context = at::scaled_dot_product_attention(
      split_heads(query(hidden)), split_heads(key(hidden)), split_heads(value(hidden)),
      // An undefined tensor is not "no mask" to scaled_dot_product_attention (found by fuzzing).
      mask.defined() ? std::optional<at::Tensor>(mask) : std::nullopt, is_training() ? attention_dropout_ : 0.0);
  const torch::Tensor attended = context.transpose(1, 2).reshape({batch, length, width});
  const torch::Tensor h = attention_norm(dropout(attention_dense(attended)) + hidden);
  const torch::Tensor ff = output_dense(torch::gelu(intermediate_dense(h)));
  return output_norm(dropout(ff) + h);
}

RobertaClassifierImpl::RobertaClassifierImpl(const RobertaConfig& config)
    : config_(config),
      embeddings(config),
      layers(),
      classifier_dense(config.hidden_size, config.hidden_size),
      classifier_out(config.hidden_size, config.num_labels),
      dropout(config.classifier_dropout.value_or(config.hidden_dropout_prob)) {
  auto roberta = Namespace(*this, "roberta");
  roberta->register_module("embeddings", embeddings);
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
    layer_list_.push_back(RobertaLayer(config));
    layers->push_back(layer_list_.back());
  }
  Namespace(*roberta, "encoder")->register_module("layer", layers);
  auto classifier = Namespace(*this, "classifier");
  classifier->register_module("dense", classifier_dense);
  classifier->register_module("out_proj", classifier_out);
  register_module("dropout", dropout);
  InitRobertaWeights(*this);
}

torch::Tensor RobertaClassifierImpl::Encode(const torch::Tensor& input_ids, const torch::Tensor& attention_mask) {
  // No mask: every token is attended to, as transformers does without one.
  const torch::Tensor mask = attention_mask.defined()
                                 ? attention_mask.ne(0).view({input_ids.size(0), 1, 1, input_ids.size(1)})
                                 : torch::Tensor();
  torch::Tensor hidden = embeddings(input_ids);
  for (RobertaLayer& layer : layer_list_) hidden = layer->forward(hidden, mask);
  return hidden;
}

torch::Tensor RobertaClassifierImpl::forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask) {
  torch::Tensor x = Encode(input_ids, attention_mask).select(1, 0);
  x = torch::tanh(classifier_dense(dropout(x)));
  return classifier_out(dropout(x));
}

void InitRobertaWeights(RobertaClassifierImpl& model) {
  torch::NoGradGuard no_grad;
  for (const auto& module : model.modules(/*include_self=*/false)) {
    if (auto* linear = module->as<nn::Linear>()) {
      linear->weight.normal_(0.0, 0.02);
      if (linear->bias.defined()) linear->bias.zero_();
    } else if (auto* embedding = module->as<nn::Embedding>()) {
      embedding->weight.normal_(0.0, 0.02);
      if (embedding->options.padding_idx()) embedding->weight[*embedding->options.padding_idx()].zero_();
    } else if (auto* norm = module->as<nn::LayerNorm>()) {
      norm->weight.fill_(1.0);
      norm->bias.zero_();
    }
  }
}

}  // namespace dlspeed
