#include "common/torchscript_resolver.h"

#include <string>

#include <torch/csrc/jit/frontend/sugared_value.h>

namespace dlspeed {
namespace {

class TorchAndQuantized : public torch::jit::Resolver {
 public:
  std::shared_ptr<torch::jit::SugaredValue> resolveValue(const std::string& name, torch::jit::GraphFunction&,
                                                         const torch::jit::SourceRange&) override {
    if (name == "torch") return std::make_shared<torch::jit::BuiltinModule>("aten");
    if (name == "quantized") return std::make_shared<torch::jit::BuiltinModule>("quantized");
    return nullptr;
  }
  c10::TypePtr resolveType(const std::string&, const torch::jit::SourceRange&) override { return nullptr; }
};

}  // namespace

std::shared_ptr<torch::jit::Resolver> TorchAndQuantizedResolver() { return std::make_shared<TorchAndQuantized>(); }

}  // namespace dlspeed
