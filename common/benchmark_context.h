// The runtime facts every benchmark binary adds to Google Benchmark's context
// (its JSON output's "context" object), so that two runs set side by side by
// compare.py, or a run set beside a Python peer, say what they ran on.
//
// Example, once the binary's backend settings are applied:
//   dlspeed::AddRuntimeContext(device);
#ifndef DLSPEED_COMMON_BENCHMARK_CONTEXT_H_
#define DLSPEED_COMMON_BENCHMARK_CONTEXT_H_

#include <c10/core/Device.h>

namespace dlspeed {

// Adds libtorch_version, device (`device`) and device_name (its name),
// cpu_name, gpu_name ("none" without a GPU), torch_threads, and the backend
// switches in effect as the records name them (common/device.h):
// cudnn_benchmark, allow_tf32_cudnn, allow_tf32_cublas ("true" or "false").
void AddRuntimeContext(const c10::Device& device);

}  // namespace dlspeed

#endif  // DLSPEED_COMMON_BENCHMARK_CONTEXT_H_
