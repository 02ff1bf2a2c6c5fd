#include "common/testing/scratch_dir.h"

#include <ftw.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace dlspeed {
namespace fs = std::filesystem;
namespace {

int RemoveEntry(const char* path, const struct stat*, int, struct FTW*) {
  std::remove(path);  // a file, or a directory already emptied (FTW_DEPTH)
  return 0;           // go on past what cannot be removed
}

// Removes `path` and everything under it, if it exists. std::filesystem's
// remove_all is not used: on the H200 host of 2026-11-27 (torch 2.11 wheel,
// g++ 13) it crashed on any non-empty directory, for a cause not yet found
// (the same build here, with g++ 12, does not crash; gpu_check logs where the
// filesystem symbols bind there).
void RemoveTree(const std::string& path) {
  nftw(path.c_str(), RemoveEntry, /*nopenfd=*/16, FTW_DEPTH | FTW_PHYS);
}

}  // namespace

std::string ScratchRoot() {
  const char* bazel_tmp = std::getenv("TEST_TMPDIR");
  if (bazel_tmp != nullptr && *bazel_tmp != '\0') return (fs::path(bazel_tmp) / "scratch").string();
  return (fs::temp_directory_path() / ("dlspeed-test-" + std::to_string(getpid()))).string();
}

std::string ScratchDir(const std::string& name) {
  const fs::path dir = fs::path(ScratchRoot()) / name;
  RemoveTree(dir.string());
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
  RemoveTree(root);
}

}  // namespace dlspeed
