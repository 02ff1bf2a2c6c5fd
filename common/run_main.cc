#include "common/run_main.h"

#include <exception>
#include <new>
#include <string>

#include "common/cli.h"
#include "common/exception_text.h"

namespace dlspeed {

int RunMain(int (*main)(int, char**), int argc, char** argv) {
  try {
    return main(argc, argv);
  } catch (const std::bad_alloc& e) {
    return ReportError(std::string("out of memory (") + e.what() + ")");
  } catch (const std::exception& e) {
    return ReportError(ExceptionText(e));
  } catch (...) {
    return ReportError("stopped by an exception of unknown type");
  }
}

}  // namespace dlspeed
