// Fuzzes checkpoint loading: the input as a torch.save file read by
// ReadTorchSaveStateDict, then loaded into a ResNet-18 by LoadStateDict (which
// checks names, shapes and dtypes). Either may fail with a status; neither may
// crash, and every tensor read stays inside its storage.
#include <cstddef>
#include <cstdint>
#include <string>

#include <ATen/core/Tensor.h>

#include "common/serialize/torch_save_reader.h"
#include "fuzz/fuzz_check.h"
#include "fuzz/fuzz_input_file.h"
#include "fuzz/tensor_bytes.h"
#include "resnet/resnet.h"
#include "resnet/resnet_checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static dlspeed::ResNet model = *dlspeed::MakeResNet(18);
  const std::string path = dlspeed::WriteFuzzInput("model.pth", data, size);
  auto entries = dlspeed::ReadTorchSaveStateDict(path);
  if (!entries.ok()) return 0;
  for (const auto& [name, tensor] : *entries) {
    FUZZ_CHECK(tensor.defined());
    const std::string bytes = dlspeed::TensorBytes(tensor);  // ASan sees any overrun here
    if (tensor.scalar_type() == at::kBool && tensor.is_contiguous()) {
      for (char byte : bytes) FUZZ_CHECK(static_cast<uint8_t>(byte) <= 1);
    }
  }
  (void)dlspeed::LoadStateDict(*model, path, "ResNet-18");
  return 0;
}
