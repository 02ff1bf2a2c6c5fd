// The one line of an exception worth printing: LibTorch's c10::Error carries a
// C++ backtrace and TorchScript's messages may start with a blank line, so
// error messages quote this instead of what().
//
//   } catch (const std::exception& e) {
//     return absl::InternalError(absl::StrCat("cannot write ", path, ": ", dlspeed::ExceptionText(e)));
//   }
#ifndef DLSPEED_COMMON_EXCEPTION_TEXT_H_
#define DLSPEED_COMMON_EXCEPTION_TEXT_H_

#include <exception>
#include <string>

namespace dlspeed {

// The first non-blank line of the message (a c10::Error's without its
// backtrace), without surrounding whitespace.
std::string ExceptionText(const std::exception& e);

}  // namespace dlspeed

#endif  // DLSPEED_COMMON_EXCEPTION_TEXT_H_
