#include "common/run_main.h"

#include <new>
#include <string>

#include <c10/util/Exception.h>
#include <gtest/gtest.h>

namespace dlspeed {
namespace {

int ThrowsATorchError(int, char**) {
  TORCH_CHECK(false, "DefaultCPUAllocator: not enough memory");
  return 0;
}
int ThrowsBadAlloc(int, char**) { throw std::bad_alloc(); }
int ThrowsAnInt(int, char**) { throw 7; }
int ReturnsThree(int, char**) { return 3; }

TEST(RunMainTest, AnEscapedExceptionIsOneLineAndExitOne) {
  char name[] = "prog";
  char* argv[] = {name, nullptr};
  testing::internal::CaptureStderr();
  EXPECT_EQ(RunMain(ThrowsATorchError, 1, argv), 1);
  std::string printed = testing::internal::GetCapturedStderr();
  EXPECT_NE(printed.find(": DefaultCPUAllocator: not enough memory\n"), std::string::npos) << printed;
  EXPECT_EQ(printed.find('\n'), printed.size() - 1) << "one line, without c10's backtrace: " << printed;

  testing::internal::CaptureStderr();
  EXPECT_EQ(RunMain(ThrowsBadAlloc, 1, argv), 1);
  printed = testing::internal::GetCapturedStderr();
  EXPECT_NE(printed.find(": out of memory (std::bad_alloc)\n"), std::string::npos) << printed;

  testing::internal::CaptureStderr();
  EXPECT_EQ(RunMain(ThrowsAnInt, 1, argv), 1);
  printed = testing::internal::GetCapturedStderr();
  EXPECT_NE(printed.find(": stopped by an exception of unknown type\n"), std::string::npos) << printed;
}

TEST(RunMainTest, ReturnsWhatMainReturns) {
  char name[] = "prog";
  char* argv[] = {name, nullptr};
  EXPECT_EQ(RunMain(ReturnsThree, 1, argv), 3);
}

}  // namespace
}  // namespace dlspeed
