#include "common/benchmark_context.h"

#include <string>

#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>
#include <torch/cuda.h>

#include "common/device.h"

namespace dlspeed {

void AddRuntimeContext(const c10::Device& device) {
  const nlohmann::json runtime = DescribeRuntime(device);
  benchmark::AddCustomContext("libtorch_version", runtime.value("libtorch_version", "unknown"));
  benchmark::AddCustomContext("device", device.str());
  benchmark::AddCustomContext("device_name", runtime.value("device_name", "unknown"));
  benchmark::AddCustomContext("cpu_name", DescribeRuntime(c10::Device(c10::kCPU)).value("device_name", "unknown"));
  const bool gpu = torch::cuda::is_available();
  benchmark::AddCustomContext(
      "gpu_name", gpu ? DescribeRuntime(c10::Device(c10::kCUDA, 0)).value("device_name", "unknown") : "none");
  benchmark::AddCustomContext("torch_threads", std::to_string(runtime.value("threads", 0)));
  for (const char* key : {"cudnn_benchmark", "allow_tf32_cudnn", "allow_tf32_cublas"}) {
    benchmark::AddCustomContext(key, runtime.value(key, false) ? "true" : "false");
  }
}

}  // namespace dlspeed
