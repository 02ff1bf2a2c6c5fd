// Text classification data for RoBERTa / XLM-R: the study's pre-tokenized
// files (<prefix>_ids.txt, <prefix>_labels.txt), raw "text<TAB>label" files
// tokenized with XLM-R's SentencePiece model, synthetic data for timing runs,
// and a batcher that pads, truncates, shuffles per epoch and shards across
// ranks like torch.utils.data.DistributedSampler.
//
//   absl::StatusOr<dlspeed::TextDataset> train = dlspeed::ReadIdsAndLabels("data/train");
//   if (!train.ok()) return Fail(train.status());  // one line naming the file
//   dlspeed::TextBatchOptions options;
//   options.batch_size = 32;
//   options.rank = rank;
//   options.world_size = world_size;
//   if (absl::Status s = dlspeed::CheckTextBatchOptions(*train, options); !s.ok()) return Fail(s);
//   dlspeed::TextBatcher batcher(*train, options);
//   for (int64_t epoch = 0; epoch < epochs; ++epoch) {
//     batcher.StartEpoch(epoch);
//     while (std::optional<dlspeed::TextBatch> batch = batcher.Next()) {
//       Step(batch->input_ids.to(device), ModelMask(*batch, device), batch->labels.to(device));
//     }
//   }
//
// Token ids follow XLM-R's (fairseq's) dictionary: <s>=0, <pad>=1, </s>=2,
// <unk>=3; every example is framed as <s> ... </s>.
#ifndef DLSPEED_ROBERTA_TEXT_DATA_H_
#define DLSPEED_ROBERTA_TEXT_DATA_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace sentencepiece {
class SentencePieceProcessor;
}  // namespace sentencepiece

namespace dlspeed {

// XLM-R's special token ids.
inline constexpr int64_t kTextBosId = 0;  // <s>
inline constexpr int64_t kTextPadId = 1;  // <pad>
inline constexpr int64_t kTextEosId = 2;  // </s>
inline constexpr int64_t kTextUnkId = 3;  // <unk>
// The largest label a data file may hold (so that 1 + label fits an int32).
inline constexpr int64_t kMaxTextLabel = 2147483646;

struct TextDataset {
  std::vector<std::vector<int64_t>> ids;  // token ids per example, already framed (<s> ... </s>)
  std::vector<int64_t> labels;            // one per example, in [0, num_labels)
  int64_t num_labels = 0;                 // 1 + max label (at least 1 if non-empty)
  int64_t size() const { return static_cast<int64_t>(ids.size()); }
};

// The most tokens any example of `data` has (0 if it holds none).
int64_t LongestSequence(const TextDataset& data);

// Reads the study's format: <prefix>_ids.txt holds one JSON array of arrays
// of token ids (or JSON Lines: one array per line), <prefix>_labels.txt one
// JSON array of integer labels of the same length. Errors are one line naming
// the file: NotFound (missing file), DataLoss (not JSON), InvalidArgument
// (a directory; wrong structure, naming the element; a negative or
// non-integer id or label, or a label above kMaxTextLabel; an empty example;
// a length mismatch). Examples are taken as they are: nothing checks that
// they are framed by <s> ... </s>.
absl::StatusOr<TextDataset> ReadIdsAndLabels(const std::string& prefix);

// A SentencePiece model (e.g. xlm-roberta-base's sentencepiece.bpe.model)
// with XLM-R's id mapping: fairseq's dictionary puts <s>=0, <pad>=1, </s>=2,
// <unk>=3 first, and every other piece's SentencePiece id p (p >= 3; the
// model's own ids are <unk>=0, <s>=1, </s>=2) becomes p + 1, as transformers'
// XLMRobertaTokenizer numbers them. <mask> is the last id (250001 for
// xlm-roberta-base). Copies share one immutable processor; Encode may be
// called from several threads.
class SentencePieceTokenizer {
 public:
  // NotFound if `model_path` is missing, DataLoss if it is not a SentencePiece
  // model, InvalidArgument if its <unk>, <s>, </s> are not ids 0, 1, 2.
  static absl::StatusOr<SentencePieceTokenizer> Load(const std::string& model_path);

  // <s> + the text's pieces (mapped) + </s>, truncated so that the total is at
  // most max_len (</s> kept last). max_len below 2 is taken as 2. Only a
  // prefix of a long text is encoded, enough for max_len. Internal if
  // SentencePiece fails.
  absl::StatusOr<std::vector<int64_t>> Encode(const std::string& text, int64_t max_len) const;

  // The XLM-R id of one piece ("▁hello"); kTextUnkId for unknown pieces.
  int64_t PieceToId(const std::string& piece) const;

  // Number of ids: the model's pieces + 2 (<pad> and <mask>), 250002 for
  // xlm-roberta-base.
  int64_t vocab_size() const;
  int64_t mask_id() const { return vocab_size() - 1; }

 private:
  explicit SentencePieceTokenizer(std::shared_ptr<const sentencepiece::SentencePieceProcessor> processor);
  int64_t MapId(int piece_id) const;

  std::shared_ptr<const sentencepiece::SentencePieceProcessor> processor_;
};

// Reads raw text: one example per line, "text<TAB>label" (split at the last
// tab; label a non-negative integer; blank lines skipped; lines end in \n or
// \r\n), each text encoded with `tokenizer` to at most max_len ids. NotFound
// for a missing file, InvalidArgument for a directory, for max_len < 2, or
// naming file and line for a bad line: no tab, a bad label, a carriage return
// inside it, bytes that are not UTF-8.
absl::StatusOr<TextDataset> ReadTsv(const std::string& path, const SentencePieceTokenizer& tokenizer,
                                    int64_t max_len);

// Whether a data set named on a command line is raw text: a name ending in
// .tsv (any case).
bool IsTsvPath(const std::string& source);

// The data set named on a command line: ReadTsv for a .tsv file (tokenizer
// required, else InvalidArgument), ReadIdsAndLabels for a prefix. A missing
// ids file says what a prefix is.
absl::StatusOr<TextDataset> LoadTextData(const std::string& source, const SentencePieceTokenizer* tokenizer,
                                         int64_t max_len);

// Whether `data`, read from `source`, fits a model with `num_labels` classes
// and `vocab_size` token ids; InvalidArgument naming the source and the first
// example that does not.
absl::Status CheckTextDataFitsModel(const TextDataset& data, const std::string& source, int64_t num_labels,
                                    int64_t vocab_size);

// `size` examples of random ids in [3, vocab_size) framed by 0 ... 2, total
// lengths (framing included) uniform in [min_len, max_len], labels uniform in
// [0, num_labels); num_labels is set to the argument. The same arguments give
// the same data on every platform. Arguments are clamped: size >= 0,
// min_len >= 2, max_len >= min_len, vocab_size >= 4, num_labels >= 1.
TextDataset SyntheticText(int64_t size, int64_t min_len, int64_t max_len, int64_t vocab_size,
                          int64_t num_labels, uint64_t seed);

struct TextBatchOptions {
  int64_t batch_size = 32;
  int64_t max_len = 128;        // longer sequences: first max_len-1 ids, then </s> (2)
  int64_t pad_id = 1;
  bool pad_to_max_len = false;  // false: pad to the longest sequence of the batch
  bool shuffle = true;          // a new permutation per epoch, seeded by (seed, epoch)
  uint64_t seed = 0;
  bool drop_last = false;       // drop this rank's last partial batch
  // DistributedSampler's sharding: pad the permutation by repeating its head
  // to a multiple of world_size, then take every world_size-th from rank.
  int64_t rank = 0, world_size = 1;
};

struct TextBatch {
  at::Tensor input_ids;       // int64 [B,S]
  at::Tensor attention_mask;  // int64 [B,S], 1 for real tokens, 0 for padding
  at::Tensor labels;          // int64 [B]
  int64_t index;              // position of the batch within its epoch
  // Whether any row is shorter than the batch: without padding the model may
  // be given no mask, which lets scaled_dot_product_attention use its
  // mask-free (flash) kernels, as transformers does for such batches.
  bool padded = false;
};

// The attention mask to give the model, on `device`: `batch.attention_mask`
// when the batch is padded, else an undefined tensor (no mask).
at::Tensor ModelMask(const TextBatch& batch, const c10::Device& device, bool non_blocking = false);

// InvalidArgument if TextBatcher would reject `options` or `data`:
// batch_size < 1, max_len < 2, pad_id < 0, rank outside [0, world_size),
// ids and labels of different lengths, an empty example, a negative id, or a
// label outside [0, num_labels).
absl::Status CheckTextBatchOptions(const TextDataset& data, const TextBatchOptions& options);

// Cuts a TextDataset into padded int64 batches, synchronously (batches are
// cheap to build). The epoch's order is torch.randperm(n) under a generator
// seeded with seed + epoch, padded and strided as DistributedSampler does, so
// it is the order DistributedSampler(seed=seed) gives after set_epoch(epoch).
// Batches depend only on the data, the options and the epoch.
class TextBatcher {
 public:
  // Requires CheckTextBatchOptions(data, options).ok() (throws c10::Error
  // otherwise). Copies the data into a compact form; `data` may go away.
  TextBatcher(const TextDataset& data, TextBatchOptions options);

  // Begins `epoch` (the rest of an unfinished epoch is dropped).
  void StartEpoch(int64_t epoch);
  // The epoch's next batch; nullopt once the epoch is done or before the
  // first StartEpoch.
  std::optional<TextBatch> Next();

  // Batches and samples this rank sees per epoch.
  int64_t batches_per_epoch() const;
  int64_t samples_per_epoch() const { return samples_per_epoch_; }

 private:
  TextBatch Build(int64_t index) const;

  const TextBatchOptions options_;
  std::vector<int64_t> tokens_;   // all examples' ids, back to back
  std::vector<int64_t> offsets_;  // example i is tokens_[offsets_[i], offsets_[i+1])
  std::vector<int64_t> labels_;
  int64_t samples_per_epoch_ = 0;
  bool started_ = false;
  std::vector<int64_t> order_;    // this rank's sample indices for the epoch
  int64_t next_ = 0;              // the next batch's index
};

}  // namespace dlspeed

#endif  // DLSPEED_ROBERTA_TEXT_DATA_H_
