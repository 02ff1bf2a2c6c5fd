// Scratch directories for tests: fresh, private to the test process, and
// removed by the project's test main (test_main.cc) when the tests end, so
// that checkpoints written by tests do not pile up on disk. Bazel's sandbox
// leaves every test's TEST_TMPDIR behind; a full `bazel test //...` used to
// leave gigabytes of them.
#ifndef DLSPEED_COMMON_TESTING_SCRATCH_DIR_H_
#define DLSPEED_COMMON_TESTING_SCRATCH_DIR_H_

#include <string>

namespace dlspeed {

// The folder every scratch directory lives in: $TEST_TMPDIR/scratch under
// Bazel, /tmp/dlspeed-test-<pid> elsewhere (ctest).
std::string ScratchRoot();

// An empty directory ScratchRoot()/name, emptied first if it exists.
std::string ScratchDir(const std::string& name);

// The path ScratchRoot()/name for a file; the root is created, nothing removed.
std::string ScratchPath(const std::string& name);

// Removes ScratchRoot() and everything in it, unless DLSPEED_KEEP_TEST_FILES=1
// is set (then it says where the files are).
void RemoveScratchRoot();

}  // namespace dlspeed

#endif  // DLSPEED_COMMON_TESTING_SCRATCH_DIR_H_
