#include "common/serialize/safetensors.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <new>
#include <set>
#include <tuple>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"
#include "common/exception_text.h"

namespace dlspeed {
namespace {

constexpr uint64_t kMaxHeaderBytes = 100 << 20;  // the format's own limit
constexpr uint64_t kMaxElements = uint64_t{std::numeric_limits<uint32_t>::max()} * 1024;  // per tensor

struct DtypeName {
  const char* name;
  at::ScalarType type;
};

constexpr DtypeName kDtypes[] = {
    {"F64", at::kDouble}, {"F32", at::kFloat}, {"F16", at::kHalf}, {"BF16", at::kBFloat16},
    {"I64", at::kLong},   {"I32", at::kInt},   {"I16", at::kShort}, {"I8", at::kChar},
    {"U8", at::kByte},    {"BOOL", at::kBool},
};

const DtypeName* FindDtype(const std::string& name) {
  for (const DtypeName& d : kDtypes) {
    if (name == d.name) return &d;
  }
  return nullptr;
}

const DtypeName* FindDtype(at::ScalarType type) {
  for (const DtypeName& d : kDtypes) {
    if (type == d.type) return &d;
  }
  return nullptr;
}

// ReadSafetensors, less catching what LibTorch throws.
absl::StatusOr<NamedTensors> ReadSafetensorsUnguarded(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto corrupt = [&](const std::string& why) {
    return absl::DataLossError(absl::StrCat(path, " is not a valid safetensors file: ", why));
  };
  if (bytes.size() < 8) return corrupt(absl::StrCat("only ", bytes.size(), " bytes"));
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | static_cast<uint8_t>(bytes[i]);
  if (header_size > kMaxHeaderBytes || header_size > bytes.size() - 8) {
    return corrupt(absl::StrCat("header of ", header_size, " bytes in a file of ", bytes.size()));
  }
  const nlohmann::json header = nlohmann::json::parse(bytes.begin() + 8, bytes.begin() + 8 + header_size,
                                                      /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object()) return corrupt("its header is not a JSON object");
  const char* data = bytes.data() + 8 + header_size;
  const uint64_t data_size = bytes.size() - 8 - header_size;

  struct Entry {
    uint64_t begin, end;
    std::string name;
    at::ScalarType type;
    std::vector<int64_t> shape;
  };
  std::vector<Entry> entries;
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") continue;
    const std::string where = absl::StrCat("tensor '", name, "'");
    if (!info.is_object() || !info.contains("dtype") || !info["dtype"].is_string() || !info.contains("shape") ||
        !info["shape"].is_array() || !info.contains("data_offsets") || !info["data_offsets"].is_array() ||
        info["data_offsets"].size() != 2) {
      return corrupt(absl::StrCat(where, " lacks dtype, shape or data_offsets"));
    }
    const DtypeName* dtype = FindDtype(info["dtype"].get<std::string>());
    if (dtype == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": ", where, " has unsupported dtype ",
                                                     info["dtype"].get<std::string>()));
    }
    Entry entry{0, 0, name, dtype->type, {}};
    uint64_t numel = 1;
    // The product of the non-zero dimensions is bounded, not just numel: a zero
    // dimension makes numel 0 but not the strides at::empty computes from the
    // others. The bound also rejects any dimension above INT64_MAX (which
    // would turn negative as an int64_t).
    uint64_t nonzero_product = 1;
    for (const auto& dim : info["shape"]) {
      if (!dim.is_number_unsigned()) return corrupt(absl::StrCat(where, " has a bad shape"));
      const uint64_t size = dim.get<uint64_t>();
      if (size > 0 && nonzero_product > kMaxElements / size) {
        return corrupt(absl::StrCat(where, " is impossibly large"));
      }
      if (size > 0) nonzero_product *= size;
      numel *= size;
      entry.shape.push_back(static_cast<int64_t>(size));
    }
    const auto& offsets = info["data_offsets"];
    if (!offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned()) {
      return corrupt(absl::StrCat(where, " has bad data_offsets"));
    }
    entry.begin = offsets[0].get<uint64_t>();
    entry.end = offsets[1].get<uint64_t>();
    const uint64_t expected = numel * c10::elementSize(dtype->type);
    if (entry.begin > entry.end || entry.end > data_size || entry.end - entry.begin != expected) {
      return corrupt(absl::StrCat(where, " has data_offsets [", entry.begin, ", ", entry.end, ") but needs ",
                                  expected, " bytes within the ", data_size, " bytes of data"));
    }
    entries.push_back(std::move(entry));
  }
  // By (begin, end), as the format does: an empty tensor [n, n) comes before a
  // non-empty one [n, m); the name orders empty tensors at one offset. The
  // sorted ranges must then tile the data exactly.
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name);
  });
  auto unused = [&](uint64_t from, uint64_t to) {
    return corrupt(absl::StrCat("bytes [", from, ", ", to, ") of its data belong to no tensor"));
  };
  NamedTensors tensors;
  uint64_t next = 0;  // where the next tensor's data must begin
  for (size_t i = 0; i < entries.size(); ++i) {
    const Entry& e = entries[i];
    if (e.begin < next) {
      return corrupt(absl::StrCat("tensors '", entries[i - 1].name, "' and '", e.name, "' overlap"));
    }
    if (e.begin > next) return unused(next, e.begin);
    next = e.end;
    if (e.type == at::kBool) {  // any other byte is a bool that is neither true nor false
      for (uint64_t k = e.begin; k < e.end; ++k) {
        const int byte = static_cast<uint8_t>(data[k]);
        if (byte > 1) {
          return corrupt(absl::StrCat("tensor '", e.name, "' is BOOL but holds the byte ", byte, ", not 0 or 1"));
        }
      }
    }
    at::Tensor tensor = at::empty(e.shape, at::TensorOptions().dtype(e.type));
    if (e.end > e.begin) std::memcpy(tensor.data_ptr(), data + e.begin, e.end - e.begin);
    tensors.emplace_back(e.name, std::move(tensor));
  }
  if (next != data_size) return unused(next, data_size);
  return tensors;
}

}  // namespace

absl::StatusOr<NamedTensors> ReadSafetensors(const std::string& path) {
  // The checks above should leave LibTorch nothing to refuse; should one slip
  // through, its c10::Error still becomes a status rather than a terminate.
  try {
    return ReadSafetensorsUnguarded(path);
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(absl::StrCat(path, ": out of memory while reading"));
  } catch (const std::exception& e) {
    return absl::DataLossError(absl::StrCat(path, " is not a valid safetensors file: ", ExceptionText(e)));
  }
}

absl::Status WriteSafetensors(const std::string& path, const NamedTensors& tensors,
                              const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<at::Tensor> contiguous;
  std::set<std::string> names;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (name == "__metadata__" || !names.insert(name).second) {
      return absl::InvalidArgumentError(absl::StrCat("cannot write ", path, ": duplicate or reserved name '", name, "'"));
    }
    const DtypeName* dtype = FindDtype(tensor.scalar_type());
    if (dtype == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot write ", path, ": tensor '", name, "' has unsupported dtype ", c10::toString(tensor.scalar_type())));
    }
    at::Tensor cpu = tensor.detach().to(at::kCPU).contiguous();
    const uint64_t size = static_cast<uint64_t>(cpu.numel()) * cpu.element_size();
    header[name] = {{"dtype", dtype->name}, {"shape", cpu.sizes().vec()}, {"data_offsets", {offset, offset + size}}};
    offset += size;
    contiguous.push_back(std::move(cpu));
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // the data starts 8-byte aligned
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((static_cast<uint64_t>(text.size()) >> (8 * i)) & 0xff);
  bytes += text;
  bytes.reserve(bytes.size() + offset);
  for (const at::Tensor& tensor : contiguous) {
    bytes.append(static_cast<const char*>(tensor.data_ptr()), tensor.numel() * tensor.element_size());
  }
  return WriteFileAtomically(path, absl::string_view(bytes.data(), bytes.size()));
}

}  // namespace dlspeed
