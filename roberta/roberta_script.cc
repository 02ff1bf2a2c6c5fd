#include "roberta/roberta_script.h"

#include <set>
#include <string>

#include <ATen/native/quantized/PackedParams.h>
#include <torch/csrc/jit/passes/freeze_module.h>
#include <torch/custom_class.h>
#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/torchscript_resolver.h"

namespace dlspeed {
namespace {

// A module attribute's name for a parameter or module path, and its use in source.
std::string AttrName(const std::string& name) { return absl::StrReplaceAll(name, {{".", "__"}}); }
std::string Attr(const std::string& name) { return "self." + AttrName(name); }

// The attribute holding a dynamic int8 Linear's prepacked weights.
std::string PackedName(const std::string& linear_name) { return AttrName(linear_name) + "__packed"; }

// The forward pass of roberta.h as TorchScript source; the Linear layers named
// in `int8` run quantized.linear_dynamic as RobertaLinearImpl::forward does
// (7-bit activations, reduce_range).
std::string ForwardSource(const RobertaConfig& c, const std::set<std::string>& int8) {
  const std::string hidden = absl::StrCat(c.hidden_size);
  const std::string eps = absl::StrCat(c.layer_norm_eps);
  auto linear = [&](const std::string& x, const std::string& name) {
    if (int8.count(name)) return absl::StrCat("quantized.linear_dynamic((", x, ").contiguous(), ", "self." + PackedName(name), ", True)");
    return absl::StrCat("torch.linear(", x, ", ", Attr(name + ".weight"), ", ", Attr(name + ".bias"), ")");
  };
  auto norm = [&](const std::string& x, const std::string& name) {
    return absl::StrCat("torch.layer_norm(", x, ", [", hidden, "], ", Attr(name + ".weight"), ", ",
                        Attr(name + ".bias"), ", ", eps, ")");
  };
  const std::string e = "roberta.embeddings.";
  std::string s = absl::StrCat(
      "def forward(self, input_ids: Tensor, attention_mask: Optional[Tensor] = None) -> Tensor:\n",
      "    batch = input_ids.size(0)\n",
      "    length = input_ids.size(1)\n",
      "    real = torch.ne(input_ids, ", c.pad_token_id, ").long()\n",
      "    positions = torch.cumsum(real, 1) * real + ", c.pad_token_id, "\n",
      "    x = torch.embedding(", Attr(e + "word_embeddings.weight"), ", input_ids, ", c.pad_token_id, ")\n",
      "    x = x + torch.embedding(", Attr(e + "position_embeddings.weight"), ", positions, ", c.pad_token_id, ")\n",
      "    x = x + ", Attr(e + "token_type_embeddings.weight"), "[0]\n",
      "    x = ", norm("x", e + "LayerNorm"), "\n",
      // No mask: every token is attended to, as in the eager model, and
      // scaled_dot_product_attention may pick its mask-free (flash) kernels.
      "    mask: Optional[Tensor] = None\n",
      "    if attention_mask is not None:\n",
      "        mask = torch.ne(attention_mask, 0).view(batch, 1, 1, length)\n");
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
  try {
    torch::jit::Module module(c10::QualifiedName("__torch__.dlspeed.ScriptedRoberta"));
    module.register_attribute("training", c10::BoolType::get(), false);
    std::set<std::string> int8;
    for (const auto& item : model.named_modules(/*name_prefix=*/"", /*include_self=*/false)) {
      if (auto* linear = item.value()->as<RobertaLinearImpl>(); linear != nullptr && linear->quantized()) {
        int8.insert(item.key());
        module.register_attribute(PackedName(item.key()),
                                  c10::getCustomClassType<c10::intrusive_ptr<LinearPackedParamsBase>>(),
                                  linear->packed());
      }
    }
    {
      torch::NoGradGuard no_grad;
      for (const auto& item : model.named_parameters(/*recurse=*/true)) {
        const std::string owner = item.key().substr(0, item.key().rfind('.'));
        if (int8.count(owner)) continue;  // in the packed weights
        module.register_parameter(AttrName(item.key()), item.value().detach().clone(),
                                  /*is_buffer=*/false);
      }
    }
    module.define(ForwardSource(model.config(), int8), TorchAndQuantizedResolver());
    module.eval();
    if (freeze) module = torch::jit::freeze(module);
    return module;
  } catch (const std::exception& e) {
    std::string message = e.what();
    return absl::InternalError(absl::StrCat("cannot script the RoBERTa model: ", message.substr(0, message.find('\n'))));
  }
}

}  // namespace dlspeed
