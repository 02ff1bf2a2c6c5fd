#include "common/data/augment.h"

#include <ATen/ATen.h>

namespace dlspeed {
namespace {
constexpr int64_t kPad = 4;
}  // namespace

at::Tensor RandomCropFlip(const at::Tensor& images_uint8, at::Generator& gen) {
  TORCH_CHECK(images_uint8.dim() == 4, "RandomCropFlip expects [B,C,H,W], got ",
              images_uint8.sizes());
  const int64_t b = images_uint8.size(0), c = images_uint8.size(1);
  const int64_t h = images_uint8.size(2), w = images_uint8.size(3);
  const int64_t pw = w + 2 * kPad;
  const at::TensorOptions longs(at::kLong);
  // Per image: top and left offset of the window in the padded image, and
  // whether to flip. Drawn in this order so results depend only on `gen`.
  at::Tensor top = at::randint(0, 2 * kPad + 1, {b, 1}, gen, longs);
  at::Tensor left = at::randint(0, 2 * kPad + 1, {b, 1}, gen, longs);
  at::Tensor flip = at::randint(0, 2, {b, 1}, gen, longs).to(at::kBool);

  at::Tensor rows = top + at::arange(h, longs);                     // [B,H]
  at::Tensor cols = at::where(flip, left + at::arange(w - 1, -1, -1, longs),
                              left + at::arange(w, longs));         // [B,W]
  // Flat index into each padded image plane, shared by its C channels.
  at::Tensor index = (rows.unsqueeze(2) * pw + cols.unsqueeze(1)).view({b, 1, h * w});
  at::Tensor padded = at::constant_pad_nd(images_uint8, {kPad, kPad, kPad, kPad}, 0);
  return padded.view({b, c, -1}).gather(2, index.expand({b, c, h * w})).view({b, c, h, w});
}

at::Tensor NormalizeImages(const at::Tensor& images_uint8) {
  return images_uint8.to(at::kFloat).div_(255.0f).sub_(0.5f).div_(0.5f);
}

}  // namespace dlspeed
