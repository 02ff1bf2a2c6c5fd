#include "roberta/roberta_script.h"

#include <string>

#include <torch/csrc/jit/passes/freeze_module.h>
#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace dlspeed {
namespace {

std::string Attr(const std::string& name) { return absl::StrCat("self.", absl::StrReplaceAll(name, {{".", "__"}})); }

// The forward pass of roberta.h as TorchScript source.
std::string ForwardSource(const RobertaConfig& c) {
  const std::string hidden = absl::StrCat(c.hidden_size);
  const std::string eps = absl::StrCat(c.layer_norm_eps);
  auto linear = [](const std::string& x, const std::string& name) {
    return absl::StrCat("torch.linear(", x, ", ", Attr(name + ".weight"), ", ", Attr(name + ".bias"), ")");
  };
  auto norm = [&](const std::string& x, const std::string& name) {
    return absl::StrCat("torch.layer_norm(", x, ", [", hidden, "], ", Attr(name + ".weight"), ", ",
                        Attr(name + ".bias"), ", ", eps, ")");
  };
  const std::string e = "roberta.embeddings.";
  std::string s = absl::StrCat(
      "def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:\n",
      "    batch = input_ids.size(0)\n",
      "    length = input_ids.size(1)\n",
      "    real = torch.ne(input_ids, ", c.pad_token_id, ").long()\n",
      "    positions = torch.cumsum(real, 1) * real + ", c.pad_token_id, "\n",
      "    x = torch.embedding(", Attr(e + "word_embeddings.weight"), ", input_ids, ", c.pad_token_id, ")\n",
      "    x = x + torch.embedding(", Attr(e + "position_embeddings.weight"), ", positions, ", c.pad_token_id, ")\n",
      "    x = x + ", Attr(e + "token_type_embeddings.weight"), "[0]\n",
      "    x = ", norm("x", e + "LayerNorm"), "\n",
      "    mask = torch.ne(attention_mask, 0).view(batch, 1, 1, length)\n");
  const int64_t heads = c.num_attention_heads, head_size = c.hidden_size / c.num_attention_heads;
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string l = absl::StrCat("roberta.encoder.layer.", i, ".");
    auto split = [&](const std::string& name) {
      return absl::StrCat(linear("x", l + "attention.self." + name), ".view(batch, length, ", heads, ", ", head_size,
                          ").transpose(1, 2)");
    };
    absl::StrAppend(&s, "    q = ", split("query"), "\n", "    k = ", split("key"), "\n", "    v = ", split("value"),
                    "\n",
                    "    a = torch.scaled_dot_product_attention(q, k, v, mask).transpose(1, 2).reshape(batch, length, ",
                    hidden, ")\n",
                    "    h = ", norm(linear("a", l + "attention.output.dense") + " + x", l + "attention.output.LayerNorm"),
                    "\n", "    f = ", linear("torch.gelu(" + linear("h", l + "intermediate.dense") + ")", l + "output.dense"),
                    "\n", "    x = ", norm("f + h", l + "output.LayerNorm"), "\n");
  }
  absl::StrAppend(&s, "    c = torch.tanh(", linear("x.select(1, 0)", "classifier.dense"), ")\n", "    return ",
                  linear("c", "classifier.out_proj"), "\n");
  return s;
}

}  // namespace

absl::StatusOr<torch::jit::Module> ScriptRoberta(RobertaClassifierImpl& model, bool freeze) {
  for (const auto& module : model.modules(/*include_self=*/false)) {
    if (auto* linear = module->as<RobertaLinearImpl>(); linear != nullptr && linear->quantized()) {
      return absl::FailedPreconditionError("cannot script a RoBERTa whose Linear layers are dynamic int8");
    }
  }
  try {
    torch::jit::Module module(c10::QualifiedName("__torch__.dlspeed.ScriptedRoberta"));
    module.register_attribute("training", c10::BoolType::get(), false);
    {
      torch::NoGradGuard no_grad;
      for (const auto& item : model.named_parameters(/*recurse=*/true)) {
        module.register_parameter(absl::StrReplaceAll(item.key(), {{".", "__"}}), item.value().detach().clone(),
                                  /*is_buffer=*/false);
      }
    }
    module.define(ForwardSource(model.config()));
    module.eval();
    if (freeze) module = torch::jit::freeze(module);
    return module;
  } catch (const std::exception& e) {
    std::string message = e.what();
    return absl::InternalError(absl::StrCat("cannot script the RoBERTa model: ", message.substr(0, message.find('\n'))));
  }
}

}  // namespace dlspeed
