#include "common/testing/close_to_scale.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

namespace dlspeed {

void ExpectCloseToScale(const at::Tensor& actual, const at::Tensor& expected, double tolerance) {
  ASSERT_EQ(actual.sizes(), expected.sizes());
  const at::Tensor a = actual.detach().to(at::kCPU, at::kFloat);
  const at::Tensor e = expected.detach().to(at::kCPU, at::kFloat);
  const double scale = e.abs().max().item<double>();
  ASSERT_GT(scale, 0) << "the expected output is all zeros";
  const double error = (a - e).abs().max().item<double>();
  EXPECT_LE(error, tolerance * scale) << "max abs error " << error << " at output scale " << scale;
}

}  // namespace dlspeed
