#include "common/data/cifar10.h"

#include <filesystem>
#include <fstream>
#include <system_error>
#include <vector>

#include <ATen/ATen.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace dlspeed {
namespace {

namespace fs = std::filesystem;

// Reads one batch file into `records` (uint8 [n, 3073]).
absl::Status ReadBatchFile(const fs::path& path, at::Tensor* records) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    return absl::NotFoundError(absl::StrCat("CIFAR-10 file '", path.string(),
                                            "' not found or not a regular file"));
  }
  const uintmax_t bytes = fs::file_size(path, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("cannot stat CIFAR-10 file '", path.string(), "': ", ec.message()));
  }
  if (bytes == 0 || bytes % kCifar10RecordBytes != 0) {
    return absl::DataLossError(absl::StrCat(
        "CIFAR-10 file '", path.string(), "' is truncated or not CIFAR-10: ", bytes,
        " bytes is not a whole number of ", kCifar10RecordBytes, "-byte records"));
  }
  const int64_t n = static_cast<int64_t>(bytes) / kCifar10RecordBytes;
  at::Tensor data = at::empty({n, kCifar10RecordBytes}, at::kByte);
  std::ifstream in(path, std::ios::binary);
  in.read(reinterpret_cast<char*>(data.data_ptr<uint8_t>()),
          static_cast<std::streamsize>(bytes));
  if (!in || in.gcount() != static_cast<std::streamsize>(bytes)) {
    return absl::DataLossError(
        absl::StrCat("cannot read CIFAR-10 file '", path.string(), "'"));
  }
  const uint8_t* p = data.data_ptr<uint8_t>();
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t label = p[i * kCifar10RecordBytes];
    if (label > 9) {
      return absl::DataLossError(absl::StrCat("CIFAR-10 file '", path.string(),
                                              "' is corrupt: record ", i, " has label ",
                                              static_cast<int>(label), ", expected 0..9"));
    }
  }
  *records = std::move(data);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ImageDataset> ReadCifar10(const std::string& dir, Split split) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return absl::NotFoundError(absl::StrCat(
        "data directory '", dir,
        "' not found: get the CIFAR-10 binary version (cifar-10-binary.tar.gz from "
        "https://www.cs.toronto.edu/~kriz/cifar.html), unpack it and pass --data_dir, "
        "or use --dataset=synthetic"));
  }
  std::vector<std::string> names;
  if (split == Split::kTrain) {
    for (int i = 1; i <= 5; ++i) names.push_back(absl::StrCat("data_batch_", i, ".bin"));
  } else {
    names.push_back("test_batch.bin");
  }
  fs::path root(dir);
  if (!fs::exists(root / names[0], ec) && fs::is_directory(root / "cifar-10-batches-bin", ec)) {
    root /= "cifar-10-batches-bin";
  }
  std::vector<at::Tensor> parts;
  for (const std::string& name : names) {
    at::Tensor records;
    absl::Status status = ReadBatchFile(root / name, &records);
    if (!status.ok()) return status;
    parts.push_back(std::move(records));
  }
  at::Tensor all = parts.size() == 1 ? parts[0] : at::cat(parts);
  const int64_t n = all.size(0);
  ImageDataset out;
  out.labels = all.select(1, 0).to(at::kLong);
  out.images = all.slice(1, 1).reshape({n, 3, 32, 32}).contiguous();
  out.num_classes = 10;
  return out;
}

}  // namespace dlspeed
