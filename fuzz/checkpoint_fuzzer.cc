// Fuzzes checkpoint loading: the input as a torch.save file read by
// ReadTorchSaveStateDict, then loaded into a ResNet-18 by LoadStateDict (which
// checks names and shapes). Either may fail with a status; neither may crash.
#include <cstddef>
#include <cstdint>

#include <ATen/core/Tensor.h>

#include "common/serialize/torch_save_reader.h"
#include "fuzz/fuzz_check.h"
#include "fuzz/fuzz_input_file.h"
#include "resnet/resnet.h"
#include "resnet/resnet_checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static dlspeed::ResNet model = *dlspeed::MakeResNet(18);
  const std::string path = dlspeed::WriteFuzzInput("model.pth", data, size);
  auto entries = dlspeed::ReadTorchSaveStateDict(path);
  if (!entries.ok()) return 0;
  for (const auto& [name, tensor] : *entries) {
    FUZZ_CHECK(tensor.defined());
    if (tensor.numel() > 0 && tensor.is_floating_point()) tensor.sum();  // ASan sees any overrun
  }
  (void)dlspeed::LoadStateDict(*model, path, "ResNet-18");
  return 0;
}
