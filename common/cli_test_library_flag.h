// A flag defined in a library rather than in the program's main file, for
// cli_test: --help must list it too.
#ifndef DLSPEED_COMMON_CLI_TEST_LIBRARY_FLAG_H_
#define DLSPEED_COMMON_CLI_TEST_LIBRARY_FLAG_H_

namespace dlspeed {

// The value of --library_level.
int LibraryLevel();

}  // namespace dlspeed

#endif  // DLSPEED_COMMON_CLI_TEST_LIBRARY_FLAG_H_
