#include "common/cli_test_library_flag.h"

#include "absl/flags/flag.h"

ABSL_FLAG(int, library_level, 0, "a level that a library's flag sets");

namespace dlspeed {

int LibraryLevel() { return absl::GetFlag(FLAGS_library_level); }

}  // namespace dlspeed
