#include "common/data/idx.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <ATen/ATen.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace dlspeed {
namespace {

namespace fs = std::filesystem;

// Sanity bound on the element count a header may claim (1 TiB).
constexpr uint64_t kMaxElements = uint64_t{1} << 40;

// The bytes of an IDX file, plain or gzip-compressed. A gzip file may hold
// several members (concatenated gzip files) with zero bytes after any of
// them, as Python's gzip module reads it; anything else after a member is an
// error (zlib's gzread would skip it silently). The file is held in memory; its
// inflated bytes are made as they are read, so a header that claims more
// data than the file holds costs no memory.
class IdxBytes {
 public:
  explicit IdxBytes(std::string path) : path_(std::move(path)) {}
  ~IdxBytes() {
    if (zlib_ready_) inflateEnd(&stream_);
  }
  IdxBytes(const IdxBytes&) = delete;
  IdxBytes& operator=(const IdxBytes&) = delete;

  absl::Status Open() {
    std::ifstream in(path_, std::ios::binary);
    std::error_code error;
    const uintmax_t size = fs::file_size(path_, error);
    if (!in || error) {
      return absl::UnavailableError(absl::StrCat("cannot open IDX file '", path_, "': ", std::strerror(errno)));
    }
    file_.resize(size);
    // istream::read turns a read error into badbit (an iterator over the
    // stream buffer would let it escape as an exception naming no file).
    in.read(reinterpret_cast<char*>(file_.data()), static_cast<std::streamsize>(size));
    if (static_cast<uintmax_t>(in.gcount()) != size) {
      return absl::UnavailableError(absl::StrCat("cannot read IDX file '", path_, "': ",
                                                 in.bad() ? std::strerror(errno) : "it changed while read"));
    }
    gzip_ = file_.size() >= 2 && file_[0] == 0x1f && file_[1] == 0x8b;
    if (gzip_) {
      if (inflateInit2(&stream_, 16 + MAX_WBITS) != Z_OK) {  // 16: a gzip wrapper
        return absl::ResourceExhaustedError(absl::StrCat("cannot inflate IDX file '", path_, "'"));
      }
      zlib_ready_ = true;
      in_member_ = true;
    }
    return absl::OkStatus();
  }

  // Reads up to `n` bytes; returns how many were read (short at the end of
  // the data), or an error naming the file for a corrupt or truncated gzip
  // stream or bytes after it that are not gzip data.
  absl::StatusOr<uint64_t> Read(uint8_t* out, uint64_t n) {
    if (!gzip_) {
      const uint64_t got = std::min<uint64_t>(n, file_.size() - position_);
      if (got > 0) std::memcpy(out, file_.data() + position_, got);
      position_ += got;
      return got;
    }
    uint64_t done = 0;
    while (done < n) {
      if (!in_member_) {
        while (position_ < file_.size() && file_[position_] == 0) ++position_;  // padding
        const uint8_t* rest = file_.data() + position_;
        const size_t left = file_.size() - position_;
        if (left == 0) break;  // the end
        if (left < 2 || rest[0] != 0x1f || rest[1] != 0x8b) {
          return absl::DataLossError(absl::StrCat("IDX file '", path_, "' is corrupt: what follows its gzip stream (",
                                                  left, left == 1 ? " byte" : " bytes", ") is not gzip data"));
        }
        inflateReset(&stream_);  // another member
        in_member_ = true;
      }
      stream_.next_in = file_.data() + position_;
      stream_.avail_in = static_cast<uInt>(std::min<size_t>(file_.size() - position_, 1u << 30));
      stream_.next_out = out + done;
      stream_.avail_out = static_cast<uInt>(std::min<uint64_t>(n - done, 1u << 30));
      const uint8_t* in_before = stream_.next_in;
      const uint8_t* out_before = stream_.next_out;
      const int rc = inflate(&stream_, Z_NO_FLUSH);
      position_ += static_cast<size_t>(stream_.next_in - in_before);
      done += static_cast<uint64_t>(stream_.next_out - out_before);
      if (rc == Z_STREAM_END) {
        in_member_ = false;
      } else if (rc == Z_BUF_ERROR || (rc == Z_OK && position_ == file_.size() && stream_.avail_out > 0)) {
        // Room for output left but no input: the stream stops before its end.
        return absl::DataLossError(absl::StrCat("IDX file '", path_, "' is truncated: its gzip stream ends early"));
      } else if (rc != Z_OK) {
        return absl::DataLossError(absl::StrCat("IDX file '", path_, "' is corrupt: ",
                                                stream_.msg != nullptr ? stream_.msg : "not a gzip stream"));
      }
    }
    return done;
  }

 private:
  const std::string path_;
  std::vector<uint8_t> file_;
  size_t position_ = 0;  // in file_
  bool gzip_ = false;
  z_stream stream_{};
  bool zlib_ready_ = false;
  bool in_member_ = false;  // inside a gzip member (else between them)
};

absl::Status Truncated(const std::string& path, const std::string& what) {
  return absl::DataLossError(absl::StrCat("IDX file '", path, "' is truncated: ", what));
}

// The file `dir`/`name`.gz, else `dir`/`name`.
absl::StatusOr<std::string> FindFile(const std::string& dir, const std::string& name) {
  std::error_code ec;
  const fs::path gz = fs::path(dir) / (name + ".gz");
  if (fs::is_regular_file(gz, ec)) return gz.string();
  const fs::path plain = fs::path(dir) / name;
  if (fs::is_regular_file(plain, ec)) return plain.string();
  return absl::NotFoundError(
      absl::StrCat("Fashion-MNIST file '", gz.string(), "' not found (nor '", name, "')"));
}

}  // namespace

absl::StatusOr<at::Tensor> ReadIdxFile(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    return absl::NotFoundError(
        absl::StrCat("IDX file '", path, "' not found or not a regular file"));
  }
  IdxBytes file(path);
  if (absl::Status opened = file.Open(); !opened.ok()) return opened;
  uint8_t magic[4];
  absl::StatusOr<uint64_t> got = file.Read(magic, 4);
  if (!got.ok()) return got.status();
  if (*got < 4) return Truncated(path, "no complete header");
  if (magic[0] != 0 || magic[1] != 0) {
    return absl::DataLossError(absl::StrCat("'", path, "' is not an IDX file: bad magic number"));
  }
  if (magic[2] != 0x08) {
    return absl::UnimplementedError(
        absl::StrCat("IDX file '", path, "' has element type 0x", absl::Hex(magic[2]),
                     ": only unsigned bytes (0x08) are supported"));
  }
  const int ndims = magic[3];
  if (ndims == 0) {
    return absl::DataLossError(absl::StrCat("IDX file '", path, "' has 0 dimensions"));
  }
  std::vector<uint8_t> header(4 * ndims);
  got = file.Read(header.data(), header.size());
  if (!got.ok()) return got.status();
  if (*got < header.size()) return Truncated(path, "header ends inside the dimensions");
  std::vector<int64_t> dims;
  uint64_t count = 1;
  // The product of the non-zero dimensions bounds the tensor's strides too: a
  // zero dimension makes the count 0 but not the strides (found by fuzzing).
  uint64_t nonzero_product = 1;
  for (int i = 0; i < ndims; ++i) {
    const uint8_t* b = &header[4 * i];
    const uint64_t dim = (uint64_t{b[0]} << 24) | (uint64_t{b[1]} << 16) |
                         (uint64_t{b[2]} << 8) | uint64_t{b[3]};
    if (dim != 0 && nonzero_product > kMaxElements / dim) {
      return absl::DataLossError(
          absl::StrCat("IDX file '", path, "' is corrupt: its dimensions are implausibly large"));
    }
    if (dim != 0) nonzero_product *= dim;
    count *= dim;
    dims.push_back(static_cast<int64_t>(dim));
  }
  // Read in pieces so that a corrupt header cannot make us allocate more than
  // the file holds.
  std::vector<uint8_t> data;
  while (data.size() < count) {
    const uint64_t want = std::min<uint64_t>(count - data.size(), 16u << 20);
    const size_t old = data.size();
    data.resize(old + want);
    got = file.Read(data.data() + old, want);
    if (!got.ok()) return got.status();
    if (*got < want) {
      return Truncated(path, absl::StrCat("expected ", count, " data bytes, found ",
                                          old + *got));
    }
  }
  uint8_t extra;
  got = file.Read(&extra, 1);
  if (!got.ok()) return got.status();
  if (*got != 0) {
    return absl::DataLossError(absl::StrCat("IDX file '", path,
                                            "' is corrupt: trailing bytes after its ",
                                            count, " data bytes"));
  }
  at::Tensor out = at::empty(dims, at::kByte);
  if (count > 0) std::memcpy(out.data_ptr<uint8_t>(), data.data(), count);
  return out;
}

absl::StatusOr<ImageDataset> ReadFashionMnist(const std::string& dir, Split split) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return absl::NotFoundError(absl::StrCat(
        "data directory '", dir,
        "' not found: install Debian's dataset-fashion-mnist package (it fills ",
        kFashionMnistDir,
        ") or get the gzipped IDX files from "
        "https://github.com/zalandoresearch/fashion-mnist and pass --data_dir, "
        "or use --dataset=synthetic"));
  }
  const std::string prefix = split == Split::kTrain ? "train" : "t10k";
  absl::StatusOr<std::string> images_path = FindFile(dir, prefix + "-images-idx3-ubyte");
  if (!images_path.ok()) return images_path.status();
  absl::StatusOr<std::string> labels_path = FindFile(dir, prefix + "-labels-idx1-ubyte");
  if (!labels_path.ok()) return labels_path.status();
  absl::StatusOr<at::Tensor> images = ReadIdxFile(*images_path);
  if (!images.ok()) return images.status();
  absl::StatusOr<at::Tensor> labels = ReadIdxFile(*labels_path);
  if (!labels.ok()) return labels.status();

  if (images->dim() != 3 || images->size(1) != 28 || images->size(2) != 28) {
    return absl::DataLossError(absl::StrCat("Fashion-MNIST file '", *images_path,
                                            "' does not hold 28x28 images"));
  }
  if (labels->dim() != 1) {
    return absl::DataLossError(
        absl::StrCat("Fashion-MNIST file '", *labels_path, "' is not a list of labels"));
  }
  const int64_t n = images->size(0);
  if (labels->size(0) != n) {
    return absl::DataLossError(absl::StrCat("Fashion-MNIST files disagree: '", *images_path,
                                            "' has ", n, " images but '", *labels_path,
                                            "' has ", labels->size(0), " labels"));
  }
  const uint8_t* label = labels->data_ptr<uint8_t>();
  for (int64_t i = 0; i < n; ++i) {
    if (label[i] > 9) {
      return absl::DataLossError(absl::StrCat("Fashion-MNIST file '", *labels_path,
                                              "' is corrupt: label ", i, " is ",
                                              static_cast<int>(label[i]), ", expected 0..9"));
    }
  }
  ImageDataset out;
  out.images = at::constant_pad_nd(*images, {2, 2, 2, 2}, 0)
                   .unsqueeze(1)
                   .expand({n, 3, 32, 32})
                   .contiguous();
  out.labels = labels->to(at::kLong);
  out.num_classes = 10;
  return out;
}

}  // namespace dlspeed
