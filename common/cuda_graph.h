// Replaying a forward pass as a CUDA graph: the kernels of one call are
// captured once on a static input buffer and then launched together, which
// removes the per-kernel launch overhead that dominates small batches.
//
//   absl::StatusOr<std::unique_ptr<dlspeed::CudaGraphRunner>> graph =
//       dlspeed::CudaGraphRunner::Capture([&](const torch::Tensor& x) { return model->forward(x); }, example);
//   if (!graph.ok()) return graph.status();        // no CUDA here, or capture failed
//   torch::Tensor logits = (*graph)->Run(images);  // same shape, dtype and device as `example`
//
// Only in LibTorch builds with CUDA (and CUDA headers at build time);
// elsewhere Capture returns Unimplemented.
#ifndef DLSPEED_COMMON_CUDA_GRAPH_H_
#define DLSPEED_COMMON_CUDA_GRAPH_H_

#include <functional>
#include <memory>

#include <ATen/core/Tensor.h>

#include "absl/status/statusor.h"

namespace dlspeed {

// Whether this build can capture CUDA graphs (a CUDA device must also exist).
bool CudaGraphsBuiltIn();

class CudaGraphRunner {
 public:
  using Forward = std::function<at::Tensor(const at::Tensor&)>;

  // Runs `forward` `warmup` times on a side stream (cuDNN and cuBLAS pick
  // their algorithms and workspaces), then captures one call on a copy of
  // `example` (a CUDA tensor). Autocast must not be active (its weight cache
  // does not survive capture; InvalidArgument): give the model the dtype it
  // should run in.
  static absl::StatusOr<std::unique_ptr<CudaGraphRunner>> Capture(const Forward& forward, const at::Tensor& example,
                                                                  int warmup = 3);
  ~CudaGraphRunner();

  // Copies `input` into the static input and replays the graph. The result is
  // the graph's static output: read or copy it before the next Run. `input`
  // must have the example's sizes, dtype and device (else c10::Error). A graph
  // captured under InferenceMode must also be run under it (its static input
  // is an inference tensor).
  at::Tensor Run(const at::Tensor& input);

 private:
  struct Impl;
  explicit CudaGraphRunner(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace dlspeed

#endif  // DLSPEED_COMMON_CUDA_GRAPH_H_
