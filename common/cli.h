// Command-line parsing on Abseil flags with the project's usage-error
// convention: a mistake on the command line ends in one line on stderr,
// "<program>: <what is wrong> (see --help)", and exit status 2.
//
// Example:
//   ABSL_FLAG(int, epochs, 20, "epochs to train");
//   int main(int argc, char** argv) {
//     std::vector<std::string> args = dlspeed::ParseCommandLineOrExit(
//         argc, argv, "usage: resnet_dp [flags] [depth gpus mixed]");
//     if (!args.empty()) {
//       absl::StatusOr<int> depth = dlspeed::ParseIntChoice(args[0], {18, 34, 50}, "depth");
//       if (!depth.ok()) dlspeed::ExitWithUsageError(depth.status().message());
//     }
//   }
#ifndef DLSPEED_COMMON_CLI_H_
#define DLSPEED_COMMON_CLI_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace dlspeed {

// Sets the usage message and parses the flags in argv (--name=value,
// --name value, -name, --name / --noname for booleans; "--" ends the flags).
// An unknown flag, a missing or bad value exits with status 2 after one line
// on stderr. --help and the other Abseil usage flags behave as in Abseil
// (--help prints usage and exits 1), except that --help lists the flags that
// any of the program's own files define, not only its main file's.
// --undefok is not honoured by the check.
// Under `bazel run` it then changes to the directory the user ran from
// (BUILD_WORKING_DIRECTORY), so relative paths mean what the user expects.
// Returns the positional arguments, without argv[0].
std::vector<std::string> ParseCommandLineOrExit(int argc, char** argv, absl::string_view usage);

// Prints "<program>: <message> (see --help)" on one line to stderr and exits
// with status 2.
[[noreturn]] void ExitWithUsageError(absl::string_view message);

// Prints "<program>: <message>" on one line to stderr and returns 1, for
// errors that are not about usage (a missing file, a failed write):
//   if (!data.ok()) return dlspeed::ReportError(data.status().message());
int ReportError(absl::string_view message);

// Parses `text` as one of the integers in `choices`; the error names `what`
// and lists the choices, e.g. "depth must be one of 18, 34, 50, not '20'".
absl::StatusOr<int> ParseIntChoice(absl::string_view text, const std::vector<int>& choices,
                                   absl::string_view what);

}  // namespace dlspeed

#endif  // DLSPEED_COMMON_CLI_H_
