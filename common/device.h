// Device selection, the runtime facts every result record carries, and the
// CUDA caching allocator's counts the training records add.
//
// Example:
//   absl::StatusOr<c10::Device> device = dlspeed::ResolveDevice(absl::GetFlag(FLAGS_device));
//   if (!device.ok()) dlspeed::ExitWithUsageError(device.status().message());
//   dlspeed::ApplyBackendSettings({/*cudnn_benchmark=*/true, /*tf32_convolutions=*/true, /*tf32_matmuls=*/false});
//   nlohmann::json runtime = dlspeed::DescribeRuntime(*device);
#ifndef DLSPEED_COMMON_DEVICE_H_
#define DLSPEED_COMMON_DEVICE_H_

#include <cstdint>

#include <c10/core/Device.h>
#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace dlspeed {

// Parses a --device value: "auto" (CUDA when available, else CPU), "cpu",
// "cuda" (the current CUDA device) or "cuda:N". Fails, naming the value:
// InvalidArgument when the text is not a device (a usage error),
// FailedPrecondition when CUDA is asked for but absent or N is out of range.
absl::StatusOr<c10::Device> ResolveDevice(absl::string_view flag);

// Global backend switches that change GPU speed (and fp32 results). The TF32
// defaults are PyTorch's (torch.backends.cudnn.allow_tf32 = True,
// torch.backends.cuda.matmul.allow_tf32 = False), so that a C++ run and a
// Python peer left at their defaults do the same arithmetic.
struct BackendSettings {
  bool cudnn_benchmark = true;     // let cuDNN time algorithms per shape
  bool tf32_convolutions = true;   // TF32 tensor cores for fp32 cuDNN convolutions
  bool tf32_matmuls = false;       // TF32 tensor cores for fp32 cuBLAS matmuls
};

// Applies `settings` to at::globalContext() (cuDNN benchmark, TF32 for cuDNN
// and for cuBLAS). Harmless on CPU-only LibTorch.
void ApplyBackendSettings(const BackendSettings& settings);

// Facts about the process and machine for a result record: device,
// device_name, libtorch_version, cuda_version (null without CUDA), threads,
// interop_threads, cudnn_benchmark, allow_tf32_cudnn, allow_tf32_cublas (as in
// effect now), hostname, git_revision (the short HEAD of the checkout `bazel
// run` started from, else of the working directory, with "-dirty" when a
// tracked file differs from it; "unknown" outside one; read at the first
// call, so that a long run's records name the revision it started from),
// command (the program's
// name and arguments, quoted for a shell: what reruns it) and timestamp (UTC,
// ISO 8601). Never fails.
nlohmann::json DescribeRuntime(const c10::Device& device);

// The git_revision DescribeRuntime names, read now (DescribeRuntime reads it
// once, at its first call).
std::string ReadGitRevision();

// What the CUDA caching allocator has done on a device since the process
// started: cudaMalloc and cudaFree calls, allocations retried after emptying
// its cache, and device-wide synchronisations. Steady-state training leaves
// all four flat; a rise over timed steps means those steps paid for allocator
// work (a cudaFree waits for the whole device).
struct CudaAllocatorCounts {
  int64_t device_mallocs = 0;
  int64_t device_frees = 0;
  int64_t alloc_retries = 0;
  int64_t device_syncs = 0;
};

// The counts for `device`; zeros off CUDA (or in a build without CUDA headers).
CudaAllocatorCounts ReadCudaAllocatorCounts(const c10::Device& device);

CudaAllocatorCounts operator-(const CudaAllocatorCounts& after, const CudaAllocatorCounts& before);
CudaAllocatorCounts& operator+=(CudaAllocatorCounts& total, const CudaAllocatorCounts& more);

// A record's "cuda_allocator" object: {"device_mallocs": ..., "device_frees":
// ..., "alloc_retries": ..., "device_syncs": ...}.
nlohmann::json ToJson(const CudaAllocatorCounts& counts);

}  // namespace dlspeed

#endif  // DLSPEED_COMMON_DEVICE_H_
