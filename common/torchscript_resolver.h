// The name resolver for TorchScript source that this project generates in C++
// (torch::jit::Module::define): `torch.*` names ATen operators and
// `quantized.*` the quantized:: ones (quantized.conv2d, quantized.linear,
// quantized.linear_dynamic, ...); define()'s default resolver knows only torch.
//
//   module.define(source, dlspeed::TorchAndQuantizedResolver());
#ifndef DLSPEED_COMMON_TORCHSCRIPT_RESOLVER_H_
#define DLSPEED_COMMON_TORCHSCRIPT_RESOLVER_H_

#include <memory>

#include <torch/csrc/jit/frontend/resolver.h>

namespace dlspeed {

std::shared_ptr<torch::jit::Resolver> TorchAndQuantizedResolver();

}  // namespace dlspeed

#endif  // DLSPEED_COMMON_TORCHSCRIPT_RESOLVER_H_
