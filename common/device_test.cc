#include "common/device.h"

#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>

#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include "common/testing/scratch_dir.h"

namespace dlspeed {
namespace {

TEST(DeviceTest, ResolvesCpuAndAuto) {
  absl::StatusOr<c10::Device> cpu = ResolveDevice("cpu");
  ASSERT_TRUE(cpu.ok()) << cpu.status();
  EXPECT_EQ(*cpu, c10::Device(c10::kCPU));
  absl::StatusOr<c10::Device> automatic = ResolveDevice("auto");
  ASSERT_TRUE(automatic.ok()) << automatic.status();
  EXPECT_EQ(automatic->is_cuda(), torch::cuda::is_available());
}

TEST(DeviceTest, RejectsUnknownDevicesNamingTheFlag) {
  absl::StatusOr<c10::Device> device = ResolveDevice("gpu0");
  ASSERT_FALSE(device.ok());
  EXPECT_NE(device.status().message().find("gpu0"), std::string::npos) << device.status();
  device = ResolveDevice("cuda:99");
  ASSERT_FALSE(device.ok());
  EXPECT_NE(device.status().message().find("cuda:99"), std::string::npos) << device.status();
  EXPECT_FALSE(ResolveDevice("cuda:x").ok());
  EXPECT_FALSE(ResolveDevice("cuda:-1").ok());
}

TEST(DeviceTest, CudaNeedsCuda) {
  if (torch::cuda::is_available()) {
    absl::StatusOr<c10::Device> device = ResolveDevice("cuda:0");
    ASSERT_TRUE(device.ok()) << device.status();
    EXPECT_EQ(*device, c10::Device(c10::kCUDA, 0));
  } else {
    absl::StatusOr<c10::Device> device = ResolveDevice("cuda");
    ASSERT_FALSE(device.ok());
    EXPECT_NE(device.status().message().find("--device=cuda"), std::string::npos);
  }
}

TEST(DeviceTest, DescribeRuntimeReadsBackBackendSettings) {
  ApplyBackendSettings({/*cudnn_benchmark=*/false, /*tf32_convolutions=*/false, /*tf32_matmuls=*/true});
  nlohmann::json runtime = DescribeRuntime(c10::Device(c10::kCPU));
  EXPECT_EQ(runtime["cudnn_benchmark"], false);
  EXPECT_EQ(runtime["allow_tf32_cudnn"], false);
  EXPECT_EQ(runtime["allow_tf32_cublas"], true);
  // The defaults are PyTorch's: TF32 in cuDNN convolutions, not in cuBLAS matmuls.
  ApplyBackendSettings(BackendSettings());
  runtime = DescribeRuntime(c10::Device(c10::kCPU));
  EXPECT_EQ(runtime["cudnn_benchmark"], true);
  EXPECT_EQ(runtime["allow_tf32_cudnn"], true);
  EXPECT_EQ(runtime["allow_tf32_cublas"], false);

  EXPECT_EQ(runtime["device"], "cpu");
  EXPECT_FALSE(runtime["device_name"].get<std::string>().empty());
  EXPECT_EQ(runtime["libtorch_version"].get<std::string>().substr(0, 2), "2.");
  EXPECT_GE(runtime["threads"].get<int>(), 1);
  EXPECT_GE(runtime["interop_threads"].get<int>(), 1);
  EXPECT_FALSE(runtime["hostname"].get<std::string>().empty());
  EXPECT_FALSE(runtime["git_revision"].get<std::string>().empty());
  EXPECT_TRUE(runtime.contains("cuda_version"));
  EXPECT_TRUE(std::regex_match(runtime["timestamp"].get<std::string>(),
                               std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)")))
      << runtime["timestamp"];
}

// The first line `command` prints, or "" if it fails.
std::string FirstLine(const std::string& command) {
  FILE* pipe = popen(command.c_str(), "r");
  char buffer[256] = {};
  std::string line;
  if (fgets(buffer, sizeof(buffer), pipe) != nullptr) line = buffer;
  if (pclose(pipe) != 0) return "";
  if (!line.empty() && line.back() == '\n') line.pop_back();
  return line;
}

TEST(DeviceTest, CudaAllocatorCountsRiseWhenTheDriverIsAskedForMemory) {
  const CudaAllocatorCounts cpu = ReadCudaAllocatorCounts(c10::Device(c10::kCPU));
  EXPECT_EQ(cpu.device_mallocs + cpu.device_frees + cpu.alloc_retries + cpu.device_syncs, 0);
  CudaAllocatorCounts total{1, 1, 1, 1};
  total += CudaAllocatorCounts{2, 4, 6, 8} - CudaAllocatorCounts{1, 2, 3, 4};
  EXPECT_EQ(ToJson(total), nlohmann::json({{"device_mallocs", 2}, {"device_frees", 3}, {"alloc_retries", 4},
                                           {"device_syncs", 5}}));
  if (!torch::cuda::is_available()) GTEST_SKIP() << "the rest needs a GPU";
  const c10::Device gpu(c10::kCUDA, 0);
  const CudaAllocatorCounts before = ReadCudaAllocatorCounts(gpu);
  // A block of a size no cached one serves: the allocator calls cudaMalloc.
  const torch::Tensor block = torch::empty({(int64_t{1} << 28) + 12345}, torch::TensorOptions().dtype(torch::kByte).device(gpu));
  EXPECT_GT(ReadCudaAllocatorCounts(gpu).device_mallocs, before.device_mallocs);
}

TEST(DeviceTest, GitRevisionComesFromBuildWorkspaceDirectory) {
  const std::filesystem::path repo = ScratchDir("device_test_repo");
  const std::string git = "git -C '" + repo.string() + "' ";
  if (system((git + "init -q && " + git +
              "-c user.email=t@example.com -c user.name=t commit -q --allow-empty -m x")
                 .c_str()) != 0) {
    GTEST_SKIP() << "git cannot make a repository here";
  }
  const std::string expected = FirstLine(git + "rev-parse --short HEAD");
  ASSERT_FALSE(expected.empty());
  // What the records say was read at the first call, and stays.
  const std::string in_records = DescribeRuntime(c10::Device(c10::kCPU))["git_revision"];
  setenv("BUILD_WORKSPACE_DIRECTORY", repo.c_str(), /*overwrite=*/1);
  EXPECT_EQ(ReadGitRevision(), expected);
  // An untracked file leaves the revision clean; a change to a tracked one marks it.
  std::ofstream(repo / "notes.txt") << "first\n";
  EXPECT_EQ(ReadGitRevision(), expected);
  ASSERT_EQ(system((git + "add notes.txt && " + git +
                    "-c user.email=t@example.com -c user.name=t commit -q -m notes").c_str()),
            0);
  const std::string second = FirstLine(git + "rev-parse --short HEAD");
  EXPECT_EQ(ReadGitRevision(), second);
  std::ofstream(repo / "notes.txt") << "changed\n";
  EXPECT_EQ(ReadGitRevision(), second + "-dirty");
  setenv("BUILD_WORKSPACE_DIRECTORY", (repo / "missing").c_str(), /*overwrite=*/1);
  EXPECT_NE(ReadGitRevision(), "");  // never fails
  unsetenv("BUILD_WORKSPACE_DIRECTORY");
  EXPECT_EQ(DescribeRuntime(c10::Device(c10::kCPU))["git_revision"], in_records);
}

TEST(DeviceTest, CommandIsTheProgramAndItsArguments) {
  // This test's own command line: the binary's name without its directory,
  // then any arguments the runner gave it.
  const std::string command = DescribeRuntime(c10::Device(c10::kCPU))["command"];
  EXPECT_TRUE(command == "device_test" || command.rfind("device_test ", 0) == 0) << command;
}

}  // namespace
}  // namespace dlspeed
