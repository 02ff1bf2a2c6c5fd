#include "common/testing/scratch_dir.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

namespace dlspeed {
namespace fs = std::filesystem;

std::string ScratchRoot() {
  const char* bazel_tmp = std::getenv("TEST_TMPDIR");
  if (bazel_tmp != nullptr && *bazel_tmp != '\0') return (fs::path(bazel_tmp) / "scratch").string();
  return (fs::temp_directory_path() / ("dlspeed-test-" + std::to_string(getpid()))).string();
}

std::string ScratchDir(const std::string& name) {
  const fs::path dir = fs::path(ScratchRoot()) / name;
  std::error_code ignored;
  fs::remove_all(dir, ignored);
  fs::create_directories(dir);
  return dir.string();
}

std::string ScratchPath(const std::string& name) {
  fs::create_directories(ScratchRoot());
  return (fs::path(ScratchRoot()) / name).string();
}

void RemoveScratchRoot() {
  const std::string root = ScratchRoot();
  const char* keep = std::getenv("DLSPEED_KEEP_TEST_FILES");
  if (keep != nullptr && std::string(keep) == "1") {
    std::fprintf(stderr, "test files kept in %s\n", root.c_str());
    return;
  }
  std::error_code ignored;
  fs::remove_all(root, ignored);
}

}  // namespace dlspeed
