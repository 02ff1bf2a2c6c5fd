// A program's main that turns an exception escaping the program into one
// error line instead of std::terminate's abort and core dump.
//
//   int main(int argc, char** argv) { return dlspeed::RunMain(dlspeed::Main, argc, argv); }
#ifndef DLSPEED_COMMON_RUN_MAIN_H_
#define DLSPEED_COMMON_RUN_MAIN_H_

namespace dlspeed {

// Runs `main` and returns what it returns. An exception that escapes it (a
// LibTorch error, or an allocation that fails in the middle of training)
// becomes one line on stderr, "<program>: <its first line>" (ExceptionText,
// common/exception_text.h), and exit status 1.
int RunMain(int (*main)(int, char**), int argc, char** argv);

}  // namespace dlspeed

#endif  // DLSPEED_COMMON_RUN_MAIN_H_
