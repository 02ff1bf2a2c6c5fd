#include "roberta/text_data.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>
#include <numeric>
#include <random>
#include <sstream>
#include <utility>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <c10/util/Exception.h>
#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

// Debian's sentencepiece header declares `namespace absl { using
// std::string_view; }`, which is ambiguous next to Debian's Abseil (whose
// absl::string_view is its own class). Renaming that namespace while the
// header is read keeps its types (std::string_view) and so its symbols.
#define absl dlspeed_sentencepiece_absl
#include <sentencepiece_processor.h>
#undef absl

namespace dlspeed {
namespace {

using nlohmann::json;

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// A JSON value for an error message, cut short. Arrays and objects are
// described, not printed: dump() recurses, and a deeply nested one from a
// hostile file would overflow the stack.
std::string Show(const json& value) {
  if (value.is_array()) return absl::StrCat("an array of ", value.size(), " elements");
  if (value.is_object()) return absl::StrCat("an object of ", value.size(), " members");
  std::string text = value.dump();
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  return text;
}

// Text from a file for an error message: at most 40 bytes, escaped.
std::string ShowText(absl::string_view text) {
  if (text.size() > 40) return absl::StrCat("\"", absl::CHexEscape(text.substr(0, 37)), "...\"");
  return absl::StrCat("\"", absl::CHexEscape(text), "\"");
}

// Whether `path` names a directory (std::ifstream opens one without complaint).
bool IsDirectory(const std::string& path) {
  std::error_code error;
  return std::filesystem::is_directory(path, error);
}

// The byte offset of the first byte that is not part of well-formed UTF-8,
// or npos: a shortest-form encoding of a code point up to U+10FFFF that is
// not a surrogate.
size_t FirstInvalidUtf8(absl::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const unsigned char lead = static_cast<unsigned char>(text[i]);
    size_t length = 0;
    uint32_t min = 0, code = 0;
    if (lead < 0x80) {
      ++i;
      continue;
    } else if ((lead & 0xE0) == 0xC0) {
      length = 2, min = 0x80, code = lead & 0x1F;
    } else if ((lead & 0xF0) == 0xE0) {
      length = 3, min = 0x800, code = lead & 0x0F;
    } else if ((lead & 0xF8) == 0xF0) {
      length = 4, min = 0x10000, code = lead & 0x07;
    } else {
      return i;
    }
    if (i + length > text.size()) return i;
    for (size_t k = 1; k < length; ++k) {
      const unsigned char next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xC0) != 0x80) return i;
      code = (code << 6) | (next & 0x3F);
    }
    if (code < min || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return i;
    i += length;
  }
  return absl::string_view::npos;
}

// The error for a label above kMaxTextLabel (1 + the largest label is the
// number of classes); `where` names it ("PATH: element 3", "PATH:4").
absl::Status LabelTooLarge(int64_t label, absl::string_view where) {
  return absl::InvalidArgumentError(
      absl::StrCat(where, ": label ", label, " is beyond the largest allowed, ", kMaxTextLabel));
}

// The value as a non-negative int64, or nullopt.
std::optional<int64_t> NonNegativeInt(const json& value) {
  if (value.is_number_unsigned()) {
    const uint64_t v = value.get<uint64_t>();
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return static_cast<int64_t>(v);
  }
  if (value.is_number_integer()) {
    const int64_t v = value.get<int64_t>();
    if (v < 0) return std::nullopt;
    return v;
  }
  return std::nullopt;
}

absl::StatusOr<std::string> ReadFile(const std::string& path, absl::string_view what) {
  if (IsDirectory(path)) return absl::InvalidArgumentError(absl::StrCat(what, " file ", path, " is a directory"));
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", what, " file ", path));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat("cannot read ", what, " file ", path));
  return text.str();
}

// Appends one example (a JSON array of token ids) to `out`; `where` names it
// in errors ("element 3", "line 4").
absl::Status AppendExample(const json& value, const std::string& path, const std::string& where,
                           std::vector<std::vector<int64_t>>* out) {
  if (!value.is_array()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", where, " is not an array of token ids (got ", Show(value), ")"));
  }
  if (value.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", where, " is an empty array (an example needs at least one token id)"));
  }
  std::vector<int64_t> ids;
  ids.reserve(value.size());
  for (size_t i = 0; i < value.size(); ++i) {
    const std::optional<int64_t> id = NonNegativeInt(value[i]);
    if (!id) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": ", where, ", position ", i, ": ",
                                                     Show(value[i]),
                                                     " is not a non-negative integer token id"));
    }
    ids.push_back(*id);
  }
  out->push_back(std::move(ids));
  return absl::OkStatus();
}

// One JSON array of arrays, or JSON Lines (one array per line).
absl::StatusOr<std::vector<std::vector<int64_t>>> ParseIds(const std::string& text,
                                                           const std::string& path) {
  std::vector<std::vector<int64_t>> ids;
  if (absl::StripAsciiWhitespace(text).empty()) {
    return absl::DataLossError(absl::StrCat(path, " is empty (expected a JSON array of arrays of token ids)"));
  }
  size_t error_byte = 0;
  try {
    const json doc = json::parse(text);
    if (!doc.is_array()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, " does not hold a JSON array of arrays of token ids (got ", Show(doc), ")"));
    }
    // A flat array of numbers is JSON Lines with a single line.
    if (!doc.empty() && std::none_of(doc.begin(), doc.end(), [](const json& v) { return v.is_array(); })) {
      absl::Status status = AppendExample(doc, path, "line 1", &ids);
      if (!status.ok()) return status;
      return ids;
    }
    ids.reserve(doc.size());
    for (size_t i = 0; i < doc.size(); ++i) {
      absl::Status status = AppendExample(doc[i], path, absl::StrCat("element ", i), &ids);
      if (!status.ok()) return status;
    }
    return ids;
  } catch (const json::parse_error& e) {
    error_byte = e.byte;
  } catch (const json::out_of_range&) {  // a number beyond double's range (found by fuzzing)
    return absl::InvalidArgumentError(absl::StrCat(path, " holds a number out of range for a token id"));
  }
  // Not one JSON document: JSON Lines, blank lines skipped.
  std::istringstream lines(text);
  std::string line;
  int64_t line_number = 0;
  while (std::getline(lines, line)) {
    ++line_number;
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    const json value = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (value.is_discarded()) {
      if (ids.empty()) {
        return absl::DataLossError(absl::StrCat(path, " is not JSON (parse error at byte ", error_byte,
                                                ") nor JSON Lines (line ", line_number, " is not JSON)"));
      }
      return absl::DataLossError(absl::StrCat(path, ": line ", line_number, " is not JSON"));
    }
    absl::Status status = AppendExample(value, path, absl::StrCat("line ", line_number), &ids);
    if (!status.ok()) return status;
  }
  return ids;
}

absl::StatusOr<std::vector<int64_t>> ParseLabels(const std::string& text, const std::string& path) {
  const json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    return absl::DataLossError(absl::StrCat(path, " is not JSON (expected a JSON array of integer labels)"));
  }
  if (!doc.is_array()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " does not hold a JSON array of integer labels (got ", Show(doc), ")"));
  }
  std::vector<int64_t> labels;
  labels.reserve(doc.size());
  for (size_t i = 0; i < doc.size(); ++i) {
    const std::optional<int64_t> label = NonNegativeInt(doc[i]);
    if (!label) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": element ", i, ": ", Show(doc[i]),
                                                     " is not a non-negative integer label"));
    }
    if (*label > kMaxTextLabel) return LabelTooLarge(*label, absl::StrCat(path, ": element ", i));
    labels.push_back(*label);
  }
  return labels;
}

int64_t NumLabels(const std::vector<int64_t>& labels) {
  if (labels.empty()) return 0;
  return *std::max_element(labels.begin(), labels.end()) + 1;
}

// Uniform in [lo, hi] (hi >= lo), the same on every standard library.
int64_t Uniform(std::mt19937_64& rng, int64_t lo, int64_t hi) {
  const uint64_t range = static_cast<uint64_t>(hi - lo) + 1;
  return lo + static_cast<int64_t>(rng() % range);
}

}  // namespace

int64_t LongestSequence(const TextDataset& data) {
  size_t longest = 0;
  for (const std::vector<int64_t>& ids : data.ids) longest = std::max(longest, ids.size());
  return static_cast<int64_t>(longest);
}

absl::StatusOr<TextDataset> ReadIdsAndLabels(const std::string& prefix) {
  const std::string ids_path = prefix + "_ids.txt";
  const std::string labels_path = prefix + "_labels.txt";
  absl::StatusOr<std::string> ids_text = ReadFile(ids_path, "token ids");
  if (!ids_text.ok()) return ids_text.status();
  absl::StatusOr<std::string> labels_text = ReadFile(labels_path, "labels");
  if (!labels_text.ok()) return labels_text.status();

  TextDataset data;
  absl::StatusOr<std::vector<std::vector<int64_t>>> ids = ParseIds(*ids_text, ids_path);
  if (!ids.ok()) return ids.status();
  data.ids = std::move(*ids);
  absl::StatusOr<std::vector<int64_t>> labels = ParseLabels(*labels_text, labels_path);
  if (!labels.ok()) return labels.status();
  data.labels = std::move(*labels);
  if (data.ids.size() != data.labels.size()) {
    return absl::InvalidArgumentError(absl::StrCat(ids_path, " has ", data.ids.size(), " examples but ",
                                                   labels_path, " has ", data.labels.size(), " labels"));
  }
  data.num_labels = NumLabels(data.labels);
  return data;
}

SentencePieceTokenizer::SentencePieceTokenizer(
    std::shared_ptr<const sentencepiece::SentencePieceProcessor> processor)
    : processor_(std::move(processor)) {}

absl::StatusOr<SentencePieceTokenizer> SentencePieceTokenizer::Load(const std::string& model_path) {
  if (!std::ifstream(model_path, std::ios::binary)) {
    return absl::NotFoundError(absl::StrCat("cannot open SentencePiece model ", model_path,
                                            " (xlm-roberta-base's is sentencepiece.bpe.model)"));
  }
  auto processor = std::make_shared<sentencepiece::SentencePieceProcessor>();
  const sentencepiece::util::Status status = processor->Load(model_path);
  if (!status.ok()) {
    return absl::DataLossError(
        absl::StrCat(model_path, " is not a SentencePiece model (", status.ToString(), ")"));
  }
  if (processor->unk_id() != 0 || processor->bos_id() != 1 || processor->eos_id() != 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        model_path, " numbers <unk>, <s>, </s> as ", processor->unk_id(), ", ", processor->bos_id(), ", ",
        processor->eos_id(), "; XLM-R's id mapping needs a model with 0, 1, 2"));
  }
  return SentencePieceTokenizer(std::move(processor));
}

int64_t SentencePieceTokenizer::MapId(int piece_id) const {
  switch (piece_id) {
    case 0: return kTextUnkId;  // SentencePiece's <unk>
    case 1: return kTextBosId;  // <s>
    case 2: return kTextEosId;  // </s>
    default: return static_cast<int64_t>(piece_id) + 1;
  }
}

absl::StatusOr<std::vector<int64_t>> SentencePieceTokenizer::Encode(const std::string& text, int64_t max_len) const {
  max_len = std::max<int64_t>(max_len, 2);
  // Only the first max_len - 2 pieces are kept, so a long text is encoded a
  // prefix at a time (a megabyte line would otherwise take gigabytes): a
  // prefix cut at a space gives the same first pieces as the whole text, as
  // pieces never span a space; one that yields a few pieces more than are
  // kept is enough, else a prefix four times as long is tried.
  const size_t wanted = static_cast<size_t>(max_len - 2) + 8;
  std::vector<int> pieces;
  for (size_t prefix = 64 * wanted;; prefix *= 4) {
    absl::string_view part = text;
    if (prefix < text.size()) {
      const size_t space = part.rfind(' ', prefix);
      part = part.substr(0, space != absl::string_view::npos && space > 0 ? space : prefix);
      while (!part.empty() && (static_cast<unsigned char>(text[part.size()]) & 0xC0) == 0x80) {
        part.remove_suffix(1);  // not inside a UTF-8 sequence
      }
    }
    const sentencepiece::util::Status status = processor_->Encode(std::string(part), &pieces);
    if (!status.ok()) return absl::InternalError(absl::StrCat("SentencePiece cannot encode: ", status.ToString()));
    if (part.size() == text.size() || pieces.size() >= wanted) break;
  }
  const int64_t keep = std::min<int64_t>(static_cast<int64_t>(pieces.size()), max_len - 2);
  std::vector<int64_t> ids;
  ids.reserve(keep + 2);
  ids.push_back(kTextBosId);
  for (int64_t i = 0; i < keep; ++i) ids.push_back(MapId(pieces[i]));
  ids.push_back(kTextEosId);
  return ids;
}

int64_t SentencePieceTokenizer::PieceToId(const std::string& piece) const {
  if (piece == "<pad>") return kTextPadId;
  if (piece == "<mask>") return mask_id();
  return MapId(processor_->PieceToId(piece));
}

int64_t SentencePieceTokenizer::vocab_size() const { return processor_->GetPieceSize() + 2; }

absl::StatusOr<TextDataset> ReadTsv(const std::string& path, const SentencePieceTokenizer& tokenizer,
                                    int64_t max_len) {
  if (max_len < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_len must be at least 2 (for <s> and </s>), got ", max_len, " for ", path));
  }
  if (IsDirectory(path)) return absl::InvalidArgumentError(absl::StrCat("text file ", path, " is a directory"));
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open text file ", path));
  TextDataset data;
  std::string line;
  int64_t line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    if (line.find('\r') != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ":", line_number, ": a carriage return inside the line (lines must end in \\n or \\r\\n)"));
    }
    if (const size_t bad = FirstInvalidUtf8(line); bad != absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", line_number, ": not UTF-8 (byte ", bad + 1, " of the line)"));
    }
    const size_t tab = line.rfind('\t');
    if (tab == std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(path, ":", line_number,
                                                     ": no tab between text and label (expected text<TAB>label)"));
    }
    const absl::string_view label_text = absl::StripAsciiWhitespace(absl::string_view(line).substr(tab + 1));
    int64_t label = 0;
    if (!absl::SimpleAtoi(label_text, &label) || label < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", line_number, ": label ", ShowText(label_text), " is not a non-negative integer"));
    }
    if (label > kMaxTextLabel) return LabelTooLarge(label, absl::StrCat(path, ":", line_number));
    absl::StatusOr<std::vector<int64_t>> ids = tokenizer.Encode(line.substr(0, tab), max_len);
    if (!ids.ok()) return absl::InternalError(absl::StrCat(path, ":", line_number, ": ", ids.status().message()));
    data.ids.push_back(std::move(*ids));
    data.labels.push_back(label);
  }
  if (in.bad()) return absl::DataLossError(absl::StrCat("cannot read text file ", path));
  data.num_labels = NumLabels(data.labels);
  return data;
}

bool IsTsvPath(const std::string& source) {
  return source.size() > 4 && absl::EqualsIgnoreCase(absl::string_view(source).substr(source.size() - 4), ".tsv");
}

absl::StatusOr<TextDataset> LoadTextData(const std::string& source, const SentencePieceTokenizer* tokenizer,
                                         int64_t max_len) {
  if (IsTsvPath(source)) {
    if (tokenizer == nullptr) return absl::InvalidArgumentError(absl::StrCat(source, " is raw text: give --tokenizer"));
    return ReadTsv(source, *tokenizer, max_len);
  }
  absl::StatusOr<TextDataset> data = ReadIdsAndLabels(source);
  if (absl::IsNotFound(data.status()) && !std::filesystem::exists(source + "_ids.txt")) {
    return absl::NotFoundError(absl::StrCat(data.status().message(),
                                            " (a data set is a prefix P of P_ids.txt and P_labels.txt, or a .tsv file)"));
  }
  return data;
}

absl::Status CheckTextDataFitsModel(const TextDataset& data, const std::string& source, int64_t num_labels,
                                    int64_t vocab_size) {
  for (int64_t i = 0; i < data.size(); ++i) {
    if (data.labels[i] >= num_labels) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": example ", i, " has label ", data.labels[i],
                                                     " but the model has ", num_labels, " classes"));
    }
    for (int64_t id : data.ids[i]) {
      if (id >= vocab_size) {
        return absl::InvalidArgumentError(absl::StrCat(source, ": example ", i, " has token id ", id,
                                                       " but the model's vocabulary has ", vocab_size,
                                                       " (a tokenizer for another model?)"));
      }
    }
  }
  return absl::OkStatus();
}

TextDataset SyntheticText(int64_t size, int64_t min_len, int64_t max_len, int64_t vocab_size,
                          int64_t num_labels, uint64_t seed) {
  size = std::max<int64_t>(size, 0);
  min_len = std::max<int64_t>(min_len, 2);
  max_len = std::max(max_len, min_len);
  vocab_size = std::max<int64_t>(vocab_size, 4);
  num_labels = std::max<int64_t>(num_labels, 1);
  std::mt19937_64 rng(seed);
  TextDataset data;
  data.ids.reserve(size);
  data.labels.reserve(size);
  for (int64_t i = 0; i < size; ++i) {
    const int64_t length = Uniform(rng, min_len, max_len);
    std::vector<int64_t> ids(length);
    ids.front() = kTextBosId;
    for (int64_t j = 1; j + 1 < length; ++j) ids[j] = Uniform(rng, 3, vocab_size - 1);
    ids.back() = kTextEosId;
    data.ids.push_back(std::move(ids));
    data.labels.push_back(Uniform(rng, 0, num_labels - 1));
  }
  data.num_labels = num_labels;
  return data;
}

absl::Status CheckTextBatchOptions(const TextDataset& data, const TextBatchOptions& options) {
  if (options.batch_size < 1) {
    return absl::InvalidArgumentError(absl::StrCat("batch size must be at least 1, got ", options.batch_size));
  }
  if (options.max_len < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_len must be at least 2 (for <s> and </s>), got ", options.max_len));
  }
  if (options.pad_id < 0) {
    return absl::InvalidArgumentError(absl::StrCat("pad id must be non-negative, got ", options.pad_id));
  }
  if (options.world_size < 1 || options.rank < 0 || options.rank >= options.world_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("rank ", options.rank, " is not in a world of size ", options.world_size));
  }
  if (data.ids.size() != data.labels.size()) {
    return absl::InvalidArgumentError(absl::StrCat("text data set has ", data.ids.size(), " examples but ",
                                                   data.labels.size(), " labels"));
  }
  for (size_t i = 0; i < data.ids.size(); ++i) {
    if (data.ids[i].empty()) return absl::InvalidArgumentError(absl::StrCat("example ", i, " is empty"));
    if (*std::min_element(data.ids[i].begin(), data.ids[i].end()) < 0) {
      return absl::InvalidArgumentError(absl::StrCat("example ", i, " has a negative token id"));
    }
    if (data.labels[i] < 0 || data.labels[i] >= data.num_labels) {
      return absl::InvalidArgumentError(absl::StrCat("label of example ", i, " is ", data.labels[i],
                                                     ", outside [0, ", data.num_labels, ")"));
    }
  }
  return absl::OkStatus();
}

TextBatcher::TextBatcher(const TextDataset& data, TextBatchOptions options) : options_(options) {
  const absl::Status status = CheckTextBatchOptions(data, options);
  TORCH_CHECK(status.ok(), "TextBatcher: ", std::string(status.message()));
  offsets_.reserve(data.ids.size() + 1);
  offsets_.push_back(0);
  for (const std::vector<int64_t>& ids : data.ids) offsets_.push_back(offsets_.back() + ids.size());
  tokens_.reserve(offsets_.back());
  for (const std::vector<int64_t>& ids : data.ids) tokens_.insert(tokens_.end(), ids.begin(), ids.end());
  labels_ = data.labels;
  samples_per_epoch_ = CeilDiv(data.size(), options_.world_size);
}

int64_t TextBatcher::batches_per_epoch() const {
  return options_.drop_last ? samples_per_epoch_ / options_.batch_size
                            : CeilDiv(samples_per_epoch_, options_.batch_size);
}

void TextBatcher::StartEpoch(int64_t epoch) {
  // DistributedSampler: the same permutation on every rank (randperm seeded
  // with seed + epoch), padded with its head to a multiple of world_size,
  // then every world_size-th sample from rank.
  const int64_t n = static_cast<int64_t>(labels_.size());
  std::vector<int64_t> order(n);
  if (options_.shuffle && n > 0) {
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(options_.seed + static_cast<uint64_t>(epoch));
    const at::Tensor perm = at::randperm(n, gen, at::TensorOptions(at::kLong)).contiguous();
    std::copy(perm.data_ptr<int64_t>(), perm.data_ptr<int64_t>() + n, order.begin());
  } else {
    std::iota(order.begin(), order.end(), int64_t{0});
  }
  const int64_t total = samples_per_epoch_ * options_.world_size;
  for (int64_t i = n; i < total; ++i) order.push_back(order[i - n]);
  order_.clear();
  order_.reserve(samples_per_epoch_);
  for (int64_t i = options_.rank; i < total; i += options_.world_size) order_.push_back(order[i]);
  started_ = true;
  next_ = 0;
}

std::optional<TextBatch> TextBatcher::Next() {
  if (!started_ || next_ >= batches_per_epoch()) return std::nullopt;
  return Build(next_++);
}

at::Tensor ModelMask(const TextBatch& batch, const c10::Device& device, bool non_blocking) {
  return batch.padded ? batch.attention_mask.to(device, non_blocking) : at::Tensor();
}

TextBatch TextBatcher::Build(int64_t index) const {
  const int64_t begin = index * options_.batch_size;
  const int64_t end = std::min(begin + options_.batch_size, static_cast<int64_t>(order_.size()));
  const int64_t rows = end - begin;
  int64_t width = options_.max_len;
  if (!options_.pad_to_max_len) {
    width = 0;
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t sample = order_[begin + r];
      width = std::max(width, std::min(offsets_[sample + 1] - offsets_[sample], options_.max_len));
    }
  }
  TextBatch batch;
  batch.input_ids = at::full({rows, width}, options_.pad_id, at::TensorOptions(at::kLong));
  batch.attention_mask = at::zeros({rows, width}, at::TensorOptions(at::kLong));
  batch.labels = at::empty({rows}, at::TensorOptions(at::kLong));
  batch.index = index;
  int64_t* ids = batch.input_ids.data_ptr<int64_t>();
  int64_t* mask = batch.attention_mask.data_ptr<int64_t>();
  int64_t* labels = batch.labels.data_ptr<int64_t>();
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t sample = order_[begin + r];
    const int64_t length = offsets_[sample + 1] - offsets_[sample];
    const int64_t kept = std::min(length, options_.max_len);
    int64_t* row = ids + r * width;
    std::copy_n(tokens_.begin() + offsets_[sample], kept, row);
    if (length > kept) row[kept - 1] = kTextEosId;  // truncated: </s> stays last
    std::fill_n(mask + r * width, kept, int64_t{1});
    batch.padded = batch.padded || kept < width;
    labels[r] = labels_[sample];
  }
  return batch;
}

}  // namespace dlspeed
