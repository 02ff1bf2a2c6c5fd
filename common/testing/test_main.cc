// The gtest main of the project's tests: runs them, then removes the scratch
// directories they made (common/testing/scratch_dir.h).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/testing/scratch_dir.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleMock(&argc, argv);
  const int result = RUN_ALL_TESTS();
  // A death test's child runs this main too; only the parent owns the files.
  if (::testing::GTEST_FLAG(internal_run_death_test).empty()) dlspeed::RemoveScratchRoot();
  return result;
}
