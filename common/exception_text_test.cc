#include "common/exception_text.h"

#include <stdexcept>

#include <c10/util/Exception.h>
#include <gtest/gtest.h>

namespace dlspeed {
namespace {

TEST(ExceptionTextTest, FirstNonBlankLineWithoutTheBacktrace) {
  try {
    TORCH_CHECK(false, "shapes differ: [2] and [3]");
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find('\n'), std::string::npos) << "c10::Error's what() holds more lines";
    EXPECT_EQ(ExceptionText(e), "shapes differ: [2] and [3]");
  }
  EXPECT_EQ(ExceptionText(std::runtime_error("\n  \n  expected a value here  \nat line 3")),
            "expected a value here");
  EXPECT_EQ(ExceptionText(std::runtime_error("")), "");
}

}  // namespace
}  // namespace dlspeed
