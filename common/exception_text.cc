#include "common/exception_text.h"

#include <c10/util/Exception.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace dlspeed {

std::string ExceptionText(const std::exception& e) {
  const auto* c10_error = dynamic_cast<const c10::Error*>(&e);
  const std::string message = c10_error != nullptr ? c10_error->what_without_backtrace() : e.what();
  for (absl::string_view line : absl::StrSplit(message, '\n', absl::SkipWhitespace())) {
    return std::string(absl::StripAsciiWhitespace(line));
  }
  return "";
}

}  // namespace dlspeed
