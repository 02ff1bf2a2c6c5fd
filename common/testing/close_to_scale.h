// Comparing a model's outputs computed two ways (eager against TorchScript,
// a CUDA graph, fp16) in tests: every element within `tolerance` times the
// largest |expected|, since fused or reordered arithmetic errs in proportion
// to the output's scale. Both are compared in fp32, on the CPU.
#ifndef DLSPEED_COMMON_TESTING_CLOSE_TO_SCALE_H_
#define DLSPEED_COMMON_TESTING_CLOSE_TO_SCALE_H_

#include <ATen/core/Tensor.h>

namespace dlspeed {

// Fails the calling test if the shapes differ, `expected` is all zeros, or
// max|actual - expected| > tolerance * max|expected|.
void ExpectCloseToScale(const at::Tensor& actual, const at::Tensor& expected, double tolerance);

}  // namespace dlspeed

#endif  // DLSPEED_COMMON_TESTING_CLOSE_TO_SCALE_H_
