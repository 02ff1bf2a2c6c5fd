// The study's torchvision transforms on uint8 image batches:
// RandomCrop(32, padding=4) + RandomHorizontalFlip() for training, and
// ToTensor + Normalize((0.5,0.5,0.5), (0.5,0.5,0.5)) for every input.
//
//   at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(/*seed=*/7);
//   at::Tensor x = dlspeed::NormalizeImages(dlspeed::RandomCropFlip(batch, gen));
#ifndef DLSPEED_COMMON_DATA_AUGMENT_H_
#define DLSPEED_COMMON_DATA_AUGMENT_H_

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

namespace dlspeed {

// Zero-pad each image by 4 pixels, crop a random 32x32 window (offsets drawn
// uniformly in 0..8 per image), then flip it left-right with probability 0.5.
// Takes and returns uint8 [B,C,H,W] (any H, W; CIFAR is 32x32); all random
// numbers come from `gen` (a CPU generator), so the same seed gives the same
// output.
at::Tensor RandomCropFlip(const at::Tensor& images_uint8, at::Generator& gen);

// uint8 [..] -> float32 (x/255 - 0.5)/0.5, i.e. values in [-1, 1].
at::Tensor NormalizeImages(const at::Tensor& images_uint8);

}  // namespace dlspeed

#endif  // DLSPEED_COMMON_DATA_AUGMENT_H_
