// A small program for cli_test: prints its flags and positional arguments.
// "choice N" as positional arguments checks N with ParseIntChoice.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "common/cli.h"
#include "common/cli_test_library_flag.h"

ABSL_FLAG(int, steps, 10, "steps to run");
ABSL_FLAG(std::string, name, "none", "a name");
ABSL_FLAG(bool, verbose, false, "say more");

int main(int argc, char** argv) {
  const std::vector<std::string> args =
      dlspeed::ParseCommandLineOrExit(argc, argv, "usage: cli_test_main [flags] [args...]");
  if (args.size() == 2 && args[0] == "choice") {
    absl::StatusOr<int> depth = dlspeed::ParseIntChoice(args[1], {18, 34, 50}, "depth");
    if (!depth.ok()) dlspeed::ExitWithUsageError(depth.status().message());
    std::printf("depth=%d\n", *depth);
  }
  std::printf("steps=%d name=%s verbose=%d library_level=%d\n", absl::GetFlag(FLAGS_steps),
              absl::GetFlag(FLAGS_name).c_str(), absl::GetFlag(FLAGS_verbose) ? 1 : 0, dlspeed::LibraryLevel());
  for (const std::string& arg : args) std::printf("arg:%s\n", arg.c_str());
  return 0;
}
