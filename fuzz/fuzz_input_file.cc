#include "fuzz/fuzz_input_file.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace dlspeed {

const std::string& FuzzInputDir() {
  static const std::string dir = [] {
    const char* root = std::getenv("TEST_TMPDIR");
    const std::filesystem::path path = std::filesystem::path(root != nullptr ? root : "/tmp") /
                                       ("dlspeed-fuzz-" + std::to_string(getpid()));
    std::filesystem::create_directories(path);
    return path.string();
  }();
  return dir;
}

std::string WriteFuzzInput(const std::string& name, const uint8_t* data, size_t size) {
  const std::string path = FuzzInputDir() + "/" + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  out.close();
  if (!out) {
    std::fprintf(stderr, "fuzz: cannot write %s\n", path.c_str());
    std::abort();
  }
  return path;
}

}  // namespace dlspeed
