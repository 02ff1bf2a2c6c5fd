// A small RobertaConfig for tests: 2 layers of 2 heads, a feed-forward twice
// the width, and the sizes a test picks, so that a model builds and runs in
// milliseconds on the CPU.
#ifndef DLSPEED_ROBERTA_TEST_CONFIG_H_
#define DLSPEED_ROBERTA_TEST_CONFIG_H_

#include <cstdint>

#include "roberta/roberta.h"

namespace dlspeed {

inline RobertaConfig SmallRobertaConfig(int64_t vocab_size, int64_t hidden_size, int64_t max_position_embeddings) {
  RobertaConfig config;
  config.vocab_size = vocab_size;
  config.hidden_size = hidden_size;
  config.num_hidden_layers = 2;
  config.num_attention_heads = 2;
  config.intermediate_size = 2 * hidden_size;
  config.max_position_embeddings = max_position_embeddings;
  return config;
}

}  // namespace dlspeed

#endif  // DLSPEED_ROBERTA_TEST_CONFIG_H_
