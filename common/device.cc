#include "common/device.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <string>

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/version.h>

#if defined(LIBTORCH_HAS_CUDA)
#include <ATen/detail/CUDAHooksInterface.h>
// ATen's CUDA context header needs the CUDA toolkit's headers (cuda_runtime,
// cuBLAS, cuSPARSE, cuSOLVER) on the include path; without them the device
// name is left unknown rather than breaking the build.
#if __has_include(<cuda_runtime_api.h>) && __has_include(<cusparse.h>) && \
    __has_include(<cublasLt.h>) && __has_include(<cusolverDn.h>)
#include <ATen/cuda/CUDAContextLight.h>
#include <c10/cuda/CUDACachingAllocator.h>
#define DLSPEED_HAS_CUDA_HEADERS 1
#endif
#endif

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/host_malloc.h"

namespace dlspeed {
namespace {

std::string CpuModel() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (absl::StartsWith(line, "model name")) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) {
        return std::string(absl::StripAsciiWhitespace(absl::string_view(line).substr(colon + 1)));
      }
    }
  }
  return "unknown CPU";
}

std::string DeviceName(const c10::Device& device) {
  if (!device.is_cuda()) return CpuModel();
#if defined(DLSPEED_HAS_CUDA_HEADERS)
  try {
    const c10::DeviceIndex index =
        device.has_index() ? device.index() : at::detail::getCUDAHooks().current_device();
    return at::cuda::getDeviceProperties(index)->name;
  } catch (const std::exception&) {
  }
#endif
  return "unknown CUDA device";
}

// The first line `command` prints, or "" when it fails.
std::string FirstLineOf(const std::string& command) {
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return "";
  char buffer[256];
  std::string line;
  if (fgets(buffer, sizeof(buffer), pipe) != nullptr) line = buffer;
  while (fgets(buffer, sizeof(buffer), pipe) != nullptr) {
  }
  if (pclose(pipe) != 0) return "";
  return std::string(absl::StripAsciiWhitespace(line));
}

// Single-quotes `text` for /bin/sh.
std::string ShellQuote(absl::string_view text) {
  std::string quoted = "'";
  for (char c : text) {
    if (c == '\'') {
      quoted += "'\\''";
    } else {
      quoted += c;
    }
  }
  return quoted + "'";
}

// The short HEAD of the checkout `git_dir_option` ("-C 'dir'" or "" for the
// working directory) names, with "-dirty" when a tracked file differs from
// it; "" outside a checkout.
std::string RevisionOf(const std::string& git_dir_option) {
  const std::string git = absl::StrCat("git --no-optional-locks ", git_dir_option, " ");
  const std::string revision = FirstLineOf(git + "rev-parse --short HEAD 2>/dev/null");
  if (revision.empty()) return "";
  const bool dirty = !FirstLineOf(git + "status --porcelain --untracked-files=no 2>/dev/null").empty();
  return dirty ? revision + "-dirty" : revision;
}

// Read once, at the first call (a binary's "in effect" line at its start): a
// record written hours later names the revision the run started from, not
// one the checkout has moved to since.
std::string GitRevision() {
  static const std::string revision = ReadGitRevision();
  return revision;
}

// Whether /bin/sh reads `word` as itself, unquoted.
bool IsPlainWord(absl::string_view word) {
  if (word.empty()) return false;
  for (char c : word) {
    if (!absl::ascii_isalnum(c) && !absl::StrContains("_-+=.,:/@%", c)) return false;
  }
  return true;
}

// The program's command line as a shell would take it again: its name
// without the directory, then each argument, quoted where needed.
std::string CommandLine() {
  std::ifstream file("/proc/self/cmdline", std::ios::binary);
  std::string word;
  std::string command;
  bool first = true;
  while (std::getline(file, word, '\0')) {
    if (first) {
      const size_t slash = word.rfind('/');
      if (slash != std::string::npos) word = word.substr(slash + 1);
    }
    if (!first) command += ' ';
    command += IsPlainWord(word) ? word : ShellQuote(word);
    first = false;
  }
  return command.empty() ? "unknown" : command;
}

std::string Hostname() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "unknown";
  return name;
}

std::string UtcTimestamp() {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

}  // namespace

absl::StatusOr<c10::Device> ResolveDevice(absl::string_view flag) {
  const std::string text = absl::AsciiStrToLower(absl::StripAsciiWhitespace(flag));
  const bool has_cuda = torch::cuda::is_available();
  if (text == "auto") return c10::Device(has_cuda ? c10::kCUDA : c10::kCPU);
  if (text == "cpu") return c10::Device(c10::kCPU);
  if (text == "cuda" || absl::StartsWith(text, "cuda:")) {
    if (!has_cuda) {
      return absl::FailedPreconditionError(absl::StrCat(
          "--device=", flag, ": CUDA is not available here (use --device=cpu or auto)"));
    }
    if (text == "cuda") return c10::Device(c10::kCUDA);
    int index = -1;
    const int count = static_cast<int>(torch::cuda::device_count());
    if (!absl::SimpleAtoi(absl::string_view(text).substr(5), &index) || index < 0) {
      return absl::InvalidArgumentError(absl::StrCat("--device=", flag, ": expected auto, cpu, cuda or cuda:N"));
    }
    if (index >= count) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "--device=%s: no such CUDA device (this machine has cuda:0 to cuda:%d)", flag,
          count - 1));
    }
    return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--device=", flag, ": expected auto, cpu, cuda or cuda:N"));
}

void ApplyBackendSettings(const BackendSettings& settings) {
  at::Context& context = at::globalContext();
  context.setBenchmarkCuDNN(settings.cudnn_benchmark);
  context.setAllowTF32CuDNN(settings.tf32_convolutions);
  context.setAllowTF32CuBLAS(settings.tf32_matmuls);
}

std::string ReadGitRevision() {
  std::string revision;
  if (const char* workspace = std::getenv("BUILD_WORKSPACE_DIRECTORY")) {
    revision = RevisionOf(absl::StrCat("-C ", ShellQuote(workspace)));
  }
  if (revision.empty()) revision = RevisionOf("");
  return revision.empty() ? "unknown" : revision;
}

nlohmann::json DescribeRuntime(const c10::Device& device) {
  const at::Context& context = at::globalContext();
  nlohmann::json runtime;
  runtime["device"] = device.str();
  runtime["device_name"] = DeviceName(device);
  runtime["libtorch_version"] = TORCH_VERSION;
  runtime["cuda_version"] = nullptr;
#if defined(LIBTORCH_HAS_CUDA)
  try {
    const long version = at::detail::getCUDAHooks().versionCUDART();  // e.g. 13000
    runtime["cuda_version"] = absl::StrCat(version / 1000, ".", version % 1000 / 10);
  } catch (const std::exception&) {
  }
#endif
  runtime["threads"] = at::get_num_threads();
  runtime["interop_threads"] = at::get_num_interop_threads();
  runtime["cudnn_benchmark"] = context.benchmarkCuDNN();
  runtime["allow_tf32_cudnn"] = context.allowTF32CuDNN();
  runtime["allow_tf32_cublas"] = context.allowTF32CuBLAS();
  runtime["host_malloc"] = HostMallocPolicy();
  runtime["hostname"] = Hostname();
  runtime["git_revision"] = GitRevision();
  runtime["command"] = CommandLine();
  runtime["timestamp"] = UtcTimestamp();
  return runtime;
}

CudaAllocatorCounts ReadCudaAllocatorCounts(const c10::Device& device) {
  CudaAllocatorCounts counts;
#if defined(DLSPEED_HAS_CUDA_HEADERS)
  if (!device.is_cuda()) return counts;
  try {
    const c10::DeviceIndex index =
        device.has_index() ? device.index() : at::detail::getCUDAHooks().current_device();
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(index);
    counts.device_mallocs = stats.num_device_alloc;
    counts.device_frees = stats.num_device_free;
    counts.alloc_retries = stats.num_alloc_retries;
    counts.device_syncs = stats.num_sync_all_streams;
  } catch (const std::exception&) {
  }
#else
  (void)device;
#endif
  return counts;
}

CudaAllocatorCounts operator-(const CudaAllocatorCounts& after, const CudaAllocatorCounts& before) {
  return {after.device_mallocs - before.device_mallocs, after.device_frees - before.device_frees,
          after.alloc_retries - before.alloc_retries, after.device_syncs - before.device_syncs};
}

CudaAllocatorCounts& operator+=(CudaAllocatorCounts& total, const CudaAllocatorCounts& more) {
  total.device_mallocs += more.device_mallocs;
  total.device_frees += more.device_frees;
  total.alloc_retries += more.alloc_retries;
  total.device_syncs += more.device_syncs;
  return total;
}

nlohmann::json ToJson(const CudaAllocatorCounts& counts) {
  return {{"device_mallocs", counts.device_mallocs},
          {"device_frees", counts.device_frees},
          {"alloc_retries", counts.alloc_retries},
          {"device_syncs", counts.device_syncs}};
}

}  // namespace dlspeed
