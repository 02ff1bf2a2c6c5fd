#include "common/data/synthetic.h"

#include <algorithm>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

namespace dlspeed {

ImageDataset MakeSyntheticImages(int64_t n, uint64_t seed, int64_t num_classes) {
  n = std::max<int64_t>(n, 0);
  num_classes = std::max<int64_t>(num_classes, 1);
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  ImageDataset out;
  out.images = at::randint(0, 256, {n, 3, 32, 32}, gen, at::TensorOptions(at::kByte));
  out.labels = at::randint(0, num_classes, {n}, gen, at::TensorOptions(at::kLong));
  out.num_classes = num_classes;
  return out;
}

}  // namespace dlspeed
