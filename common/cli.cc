#include "common/cli.h"

#include <unistd.h>

#include <errno.h>  // program_invocation_short_name

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <optional>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"

namespace dlspeed {
namespace {

std::string& ProgramName() {
  static std::string name = program_invocation_short_name;
  return name;
}

// Abseil's own flags, which its ParseCommandLine handles: usage flags (no
// value) and flag-file flags (a value, perhaps as the next argument).
bool IsAbseilUsageFlag(absl::string_view name) {
  for (absl::string_view own : {"help", "helpfull", "helpshort", "helppackage", "version",
                                "only_check_args"}) {
    if (name == own) return true;
  }
  return false;
}
bool IsAbseilValuedFlag(absl::string_view name) {
  for (absl::string_view own : {"helpon", "helpmatch", "flagfile", "fromenv", "tryfromenv",
                                "undefok"}) {
    if (name == own) return true;
  }
  return false;
}

// Checks the flag argument argv[*i] (a separate value moves *i on to it);
// returns what is wrong with it, or nothing.
std::optional<std::string> CheckFlag(int argc, char** argv, int* i) {
  const absl::string_view arg = argv[*i];
  absl::string_view body = arg.substr(absl::StartsWith(arg, "--") ? 2 : 1);
  const size_t equals = body.find('=');
  const bool has_value = equals != absl::string_view::npos;
  const absl::string_view name = body.substr(0, equals);
  absl::string_view value = has_value ? body.substr(equals + 1) : absl::string_view();

  if (IsAbseilUsageFlag(name)) return std::nullopt;
  if (IsAbseilValuedFlag(name)) {
    if (!has_value && *i + 1 < argc) ++*i;
    return std::nullopt;
  }
  absl::CommandLineFlag* flag = name.empty() ? nullptr : absl::FindCommandLineFlag(name);
  bool negative = false;
  if (flag == nullptr && absl::StartsWith(name, "no")) {
    flag = absl::FindCommandLineFlag(name.substr(2));
    negative = flag != nullptr;
  }
  if (flag == nullptr) return absl::StrCat("unknown flag '", arg, "'");
  if (flag->IsRetired()) return std::nullopt;  // Abseil ignores it with a warning
  const std::string dashes = absl::StrCat("--", flag->Name());

  if (flag->IsOfType<bool>()) {
    if (negative && has_value) return absl::StrCat("--no", flag->Name(), " takes no value");
    if (!has_value) return std::nullopt;
    if (value.empty()) return absl::StrCat("missing value after '", arg, "'");
  } else {
    if (negative) return absl::StrCat("unknown flag '", arg, "' (", dashes, " is not a boolean)");
    if (!has_value) {
      if (*i + 1 >= argc) return absl::StrCat("missing value for ", dashes);
      value = argv[++*i];
    }
  }
  std::string error;
  if (!flag->ParseFrom(value, &error)) {
    // Abseil says "Illegal value '<v>' specified for flag '<name>'[; <detail>]".
    const size_t detail = error.find("; ");
    return absl::StrCat("invalid value '", value, "' for ", dashes,
                        detail == std::string::npos ? "" : absl::StrCat(": ", error.substr(detail + 2)));
  }
  return std::nullopt;
}

}  // namespace

std::vector<std::string> ParseCommandLineOrExit(int argc, char** argv, absl::string_view usage) {
  if (argc > 0 && argv[0] != nullptr) {
    const absl::string_view path = argv[0];
    const size_t slash = path.rfind('/');
    ProgramName() = std::string(slash == absl::string_view::npos ? path : path.substr(slash + 1));
  }
  absl::SetProgramUsageMessage(usage);
  // --help lists the flags of all the program's own files, not only of the
  // file named after the program (Abseil's default), which would leave out
  // flags that libraries share, such as resnet/training_flags.cc's.
  absl::FlagsUsageConfig config;
  config.contains_help_flags = [](absl::string_view file) { return !absl::StrContains(file, "absl/"); };
  absl::SetFlagsUsageConfig(config);
  for (int i = 1; i < argc; ++i) {
    const absl::string_view arg = argv[i];
    if (arg == "--") break;
    if (arg.size() < 2 || arg[0] != '-') continue;  // positional
    if (std::optional<std::string> problem = CheckFlag(argc, argv, &i)) {
      ExitWithUsageError(*problem);
    }
  }
  const std::vector<char*> remaining = absl::ParseCommandLine(argc, argv);
  // Under `bazel run` the binary starts in its runfiles tree; relative paths
  // (models/, results.jsonl, data/) should mean the user's directory.
  if (const char* dir = std::getenv("BUILD_WORKING_DIRECTORY"); dir != nullptr && *dir != '\0') {
    if (chdir(dir) != 0) ExitWithUsageError(absl::StrCat("cannot enter BUILD_WORKING_DIRECTORY '", dir, "'"));
  }
  return std::vector<std::string>(remaining.begin() + (remaining.empty() ? 0 : 1), remaining.end());
}

int ReportError(absl::string_view message) {
  const std::string line = absl::StrReplaceAll(message, {{"\n", " "}});
  std::fprintf(stderr, "%s: %s\n", ProgramName().c_str(), line.c_str());
  std::fflush(stderr);
  return 1;
}

void ExitWithUsageError(absl::string_view message) {
  const std::string line = absl::StrReplaceAll(message, {{"\n", " "}});
  std::fprintf(stderr, "%s: %s (see --help)\n", ProgramName().c_str(), line.c_str());
  std::fflush(stderr);
  std::exit(2);
}

absl::StatusOr<int> ParseIntChoice(absl::string_view text, const std::vector<int>& choices,
                                   absl::string_view what) {
  int value = 0;
  if (absl::SimpleAtoi(text, &value) &&
      std::find(choices.begin(), choices.end(), value) != choices.end()) {
    return value;
  }
  return absl::InvalidArgumentError(absl::StrCat(what, " must be one of ",
                                                 absl::StrJoin(choices, ", "), ", not '", text,
                                                 "'"));
}

}  // namespace dlspeed
