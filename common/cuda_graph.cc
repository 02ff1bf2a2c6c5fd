#include "common/cuda_graph.h"

#include <utility>

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>

#if defined(LIBTORCH_HAS_CUDA) && __has_include(<cuda_runtime_api.h>) && __has_include(<cusparse.h>) && \
    __has_include(<cublasLt.h>) && __has_include(<cusolverDn.h>)
#define DLSPEED_CUDA_GRAPHS 1
#include <ATen/cuda/CUDAGraph.h>
#include <c10/core/DeviceGuard.h>
#include <c10/core/StreamGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

#include "absl/strings/str_cat.h"

namespace dlspeed {

#if defined(DLSPEED_CUDA_GRAPHS)

struct CudaGraphRunner::Impl {
  at::cuda::CUDAGraph graph;
  at::Tensor input, output;
};

bool CudaGraphsBuiltIn() { return true; }

absl::StatusOr<std::unique_ptr<CudaGraphRunner>> CudaGraphRunner::Capture(const Forward& forward,
                                                                          const at::Tensor& example, int warmup) {
  if (!example.is_cuda()) return absl::InvalidArgumentError("CUDA graphs need a CUDA input");
  if (at::autocast::is_autocast_enabled(at::kCUDA)) {
    // The replays would read autocast's cached weight casts, freed when the autocast scope ends.
    return absl::InvalidArgumentError("CUDA graphs cannot be captured under autocast: convert the model instead");
  }
  try {
    auto impl = std::make_unique<Impl>();
    impl->input = example.clone();
    // c10's device-generic guards and streams: they reach CUDA through
    // libc10_cuda, so this file needs no direct link to the CUDA runtime.
    c10::DeviceGuard device_guard(example.device());
    const c10::DeviceIndex index = example.device().index();
    c10::cuda::getCurrentCUDAStream(index).unwrap().synchronize();  // the example is ready
    const c10::Stream side = c10::cuda::getStreamFromPool(/*isHighPriority=*/false, index).unwrap();
    {
      c10::StreamGuard stream_guard(side);
      for (int i = 0; i < warmup; ++i) forward(impl->input);
      side.synchronize();
      impl->graph.capture_begin();
      try {
        impl->output = forward(impl->input);
      } catch (...) {
        // End the capture on this stream whatever happened, so that neither
        // the pooled stream nor the caching allocator is left capturing.
        try {
          impl->graph.capture_end();
        } catch (...) {
        }
        throw;
      }
      impl->graph.capture_end();
    }
    side.synchronize();
    return std::unique_ptr<CudaGraphRunner>(new CudaGraphRunner(std::move(impl)));
  } catch (const std::exception& e) {
    std::string message = e.what();
    return absl::InternalError(absl::StrCat("CUDA graph capture failed: ", message.substr(0, message.find('\n'))));
  }
}

at::Tensor CudaGraphRunner::Run(const at::Tensor& input) {
  // copy_ would broadcast a smaller batch or convert another dtype silently.
  TORCH_CHECK(input.sizes() == impl_->input.sizes() && input.scalar_type() == impl_->input.scalar_type() &&
                  input.device() == impl_->input.device(),
              "CudaGraphRunner::Run: the input must match the captured one: ", impl_->input.sizes(), " ",
              impl_->input.scalar_type(), " on ", impl_->input.device(), ", not ", input.sizes(), " ",
              input.scalar_type(), " on ", input.device());
  impl_->input.copy_(input, /*non_blocking=*/true);
  impl_->graph.replay();
  return impl_->output;
}

#else  // no CUDA in this build

struct CudaGraphRunner::Impl {};

bool CudaGraphsBuiltIn() { return false; }

absl::StatusOr<std::unique_ptr<CudaGraphRunner>> CudaGraphRunner::Capture(const Forward&, const at::Tensor&, int) {
  return absl::UnimplementedError("this build has no CUDA: CUDA graphs are unavailable");
}

at::Tensor CudaGraphRunner::Run(const at::Tensor&) { return at::Tensor(); }

#endif

CudaGraphRunner::CudaGraphRunner(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CudaGraphRunner::~CudaGraphRunner() = default;

}  // namespace dlspeed
