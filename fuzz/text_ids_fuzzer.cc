// Fuzzes ReadIdsAndLabels (the study's <prefix>_ids.txt and _labels.txt): the
// input up to its first zero byte is the ids file, the rest the labels file.
// It either fails with a status or returns non-empty examples (framing is not
// checked) with non-negative ids and one label each below num_labels.
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "fuzz/fuzz_check.h"
#include "fuzz/fuzz_input_file.h"
#include "roberta/text_data.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const uint8_t* split = std::find(data, data + size, uint8_t{0});
  dlspeed::WriteFuzzInput("data_ids.txt", data, static_cast<size_t>(split - data));
  const uint8_t* labels = split == data + size ? split : split + 1;
  dlspeed::WriteFuzzInput("data_labels.txt", labels, static_cast<size_t>(data + size - labels));
  absl::StatusOr<dlspeed::TextDataset> read = dlspeed::ReadIdsAndLabels(dlspeed::FuzzInputDir() + "/data");
  if (!read.ok()) return 0;
  FUZZ_CHECK(read->ids.size() == read->labels.size());
  for (size_t i = 0; i < read->ids.size(); ++i) {
    FUZZ_CHECK(!read->ids[i].empty());
    for (int64_t id : read->ids[i]) FUZZ_CHECK(id >= 0);
    FUZZ_CHECK(read->labels[i] >= 0 && read->labels[i] < read->num_labels);
  }
  return 0;
}
