#include "common/data/augment.h"

#include <vector>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include "gtest/gtest.h"

namespace dlspeed {
namespace {

at::Generator Gen(uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

// An image whose pixels are all distinct and non-zero.
at::Tensor DistinctImage(int64_t c, int64_t h, int64_t w) {
  return (at::arange(c * h * w, at::kLong) % 250 + 1).to(at::kByte).view({c, h, w});
}

// Every crop-and-flip of `image` torchvision could produce, by slicing:
// [2*9*9, C, H, W], ordered (flip, top, left).
at::Tensor AllCrops(const at::Tensor& image) {
  const int64_t h = image.size(1), w = image.size(2);
  at::Tensor padded = at::constant_pad_nd(image, {4, 4, 4, 4}, 0);
  std::vector<at::Tensor> crops;
  for (bool flip : {false, true})
    for (int64_t top = 0; top <= 8; ++top)
      for (int64_t left = 0; left <= 8; ++left) {
        at::Tensor crop = padded.slice(1, top, top + h).slice(2, left, left + w);
        crops.push_back(flip ? crop.flip({2}) : crop);
      }
  return at::stack(crops);
}

TEST(AugmentTest, KeepsShapeAndType) {
  at::Generator gen = Gen(1);
  at::Tensor images = at::randint(0, 256, {5, 3, 32, 32}, gen, at::kByte);
  at::Tensor out = RandomCropFlip(images, gen);
  EXPECT_EQ(out.sizes(), images.sizes());
  EXPECT_EQ(out.scalar_type(), at::kByte);
  EXPECT_TRUE(out.is_contiguous());
  // Padding adds zeros; it never invents other values.
  EXPECT_LE(out.max().item<int64_t>(), images.max().item<int64_t>());
}

TEST(AugmentTest, EachImageIsAShiftedZeroPaddedMaybeFlippedCopy) {
  const int64_t b = 2000;
  const at::Tensor image = DistinctImage(3, 8, 8);
  at::Generator gen = Gen(42);
  at::Tensor out = RandomCropFlip(image.unsqueeze(0).expand({b, 3, 8, 8}).contiguous(), gen);
  const at::Tensor crops = AllCrops(image);  // [162,3,8,8]
  // match[i][k]: output i equals crop k.
  at::Tensor match = out.view({b, 1, -1}).eq(crops.view({1, 162, -1})).all(2);
  // Pixels are distinct, so each output is exactly one crop.
  EXPECT_TRUE(match.sum(1).eq(1).all().item<bool>());
  // 2000 draws reach every offset and both flips, flipping about half.
  EXPECT_TRUE(match.sum(0).gt(0).all().item<bool>());
  const double flipped = match.slice(1, 81, 162).sum().item<double>() / b;
  EXPECT_NEAR(flipped, 0.5, 0.05);
  // The centre crop without flip is the image itself.
  EXPECT_TRUE(at::equal(crops[40], image));
}

TEST(AugmentTest, ReferenceFlipMirrorsColumns) {
  const at::Tensor image = DistinctImage(1, 2, 3);
  const at::Tensor crops = AllCrops(image);
  // Centre crop flipped (index 81 + 40) reverses each row.
  EXPECT_TRUE(at::equal(crops[121][0][0], image[0][0].flip({0})));
  EXPECT_EQ(crops[121][0][1][0].item<int64_t>(), image[0][1][2].item<int64_t>());
}

TEST(AugmentTest, SameSeedSameOutput) {
  at::Generator data_gen = Gen(5);
  at::Tensor images = at::randint(0, 256, {16, 3, 32, 32}, data_gen, at::kByte);
  at::Generator a = Gen(9), b = Gen(9), c = Gen(10);
  at::Tensor out_a = RandomCropFlip(images, a);
  EXPECT_TRUE(at::equal(out_a, RandomCropFlip(images, b)));
  EXPECT_FALSE(at::equal(out_a, RandomCropFlip(images, c)));
  // The generator advances: a second call differs from the first.
  EXPECT_FALSE(at::equal(out_a, RandomCropFlip(images, a)));
}

TEST(AugmentTest, NormalizesToMinusOneOne) {
  at::Tensor x = at::tensor(std::vector<int64_t>{0, 51, 255, 128}).to(at::kByte);
  at::Tensor y = NormalizeImages(x);
  EXPECT_EQ(y.scalar_type(), at::kFloat);
  EXPECT_FLOAT_EQ(y[0].item<float>(), -1.0f);
  EXPECT_FLOAT_EQ(y[1].item<float>(), -0.6f);
  EXPECT_FLOAT_EQ(y[2].item<float>(), 1.0f);
  EXPECT_NEAR(y[3].item<float>(), 1.0f / 255, 1e-6);
  at::Generator gen = Gen(3);
  at::Tensor images = at::randint(0, 256, {4, 3, 32, 32}, gen, at::kByte);
  at::Tensor n = NormalizeImages(images);
  EXPECT_EQ(n.sizes(), images.sizes());
  EXPECT_GE(n.min().item<float>(), -1.0f);
  EXPECT_LE(n.max().item<float>(), 1.0f);
}

}  // namespace
}  // namespace dlspeed
