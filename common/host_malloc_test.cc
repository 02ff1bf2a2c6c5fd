// HostMallocPolicy: linking the library keeps large freed blocks in glibc's
// heap (no block is mapped on its own), and says so.
#include "common/host_malloc.h"

#include <cstdlib>
#include <cstring>

#include <gtest/gtest.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace dlspeed {
namespace {

TEST(HostMallocTest, LargeBlocksComeFromTheHeap) {
#if !defined(__GLIBC__)
  GTEST_SKIP() << "not glibc";
#else
  if (std::getenv("DLSPEED_MALLOC") != nullptr) GTEST_SKIP() << "DLSPEED_MALLOC is set";
  EXPECT_EQ(HostMallocPolicy(), "heap-cached");
  const size_t mapped_before = mallinfo2().hblks;
  // 64 MB: far above glibc's largest mmap threshold (32 MB), so by default
  // this block would be mapped on its own and unmapped when freed.
  char* block = static_cast<char*>(std::malloc(64 << 20));
  ASSERT_NE(block, nullptr);
  std::memset(block, 1, 64 << 20);
  EXPECT_EQ(mallinfo2().hblks, mapped_before);
  std::free(block);
#endif
}

}  // namespace
}  // namespace dlspeed
