#include "common/serialize/torch_save_writer.h"

#include <algorithm>

#include <ATen/ATen.h>
#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/pickler.h>
#include <torch/csrc/jit/serialization/pickler_helper.h>

#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"

namespace dlspeed {

absl::StatusOr<std::string> SerializeStateDict(const std::vector<std::pair<std::string, at::Tensor>>& entries) {
  try {
    c10::impl::GenericDict dict(c10::StringType::get(), c10::TensorType::get());
    for (const auto& [name, tensor] : entries) dict.insert_or_assign(name, tensor.detach().cpu().contiguous());
    std::string pickled;
    // No tensor table: tensors become persistent ids ('storage', type, key,
    // 'cpu', numel) as in torch.save; no type tags on the dict.
    torch::jit::Pickler pickler([&](const char* data, size_t size) { pickled.append(data, size); },
                                /*tensor_table=*/nullptr, /*type_renamer=*/nullptr,
                                /*memoized_class_types=*/nullptr, /*get_tensor_id=*/nullptr,
                                /*tag_aggregates=*/false);
    pickler.protocol();
    pickler.pushIValue(c10::IValue(dict));
    pickler.stop();

    std::string archive;
    caffe2::serialize::PyTorchStreamWriter writer([&](const void* data, size_t size) -> size_t {
      archive.append(static_cast<const char*>(data), size);
      return size;
    });
    writer.writeRecord("data.pkl", pickled.data(), pickled.size());
    writer.writeRecord("byteorder", "little", 6);
    const std::vector<at::Tensor>& tensors = pickler.tensorData();
    for (size_t i = 0; i < tensors.size(); ++i) {
      torch::jit::WriteableTensorData data = torch::jit::getWriteableTensorData(tensors[i]);
      writer.writeRecord(absl::StrCat("data/", i), data.data(), data.sizeInBytes());
    }
    writer.writeEndOfFile();
    return archive;
  } catch (const std::exception& e) {
    const std::string what = e.what();
    return absl::InternalError(absl::StrCat("cannot serialise the state_dict: ", what.substr(0, what.find('\n'))));
  }
}

absl::Status WriteTorchSaveStateDict(const std::string& path,
                                     const std::vector<std::pair<std::string, at::Tensor>>& entries) {
  absl::StatusOr<std::string> bytes = SerializeStateDict(entries);
  if (!bytes.ok()) return absl::Status(bytes.status().code(), absl::StrCat(path, ": ", bytes.status().message()));
  return WriteFileAtomically(path, *bytes);
}

at::Tensor TextTensor(const std::string& text) {
  at::Tensor bytes = at::empty({static_cast<int64_t>(text.size())}, at::kByte);
  std::copy(text.begin(), text.end(), bytes.data_ptr<uint8_t>());
  return bytes;
}

}  // namespace dlspeed
