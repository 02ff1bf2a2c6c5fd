// Scratch directories for tests: fresh, private to the test process, and
// removed by the project's test main (test_main.cc) when the tests end, so
// that the checkpoints tests write do not pile up on disk: ctest has no
// TEST_TMPDIR of its own, and Bazel keeps every one while --sandbox_debug is
// on (Debian's bazelrc turns it on; .bazelrc turns it off).
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
