// FUZZ_CHECK(condition): a property a fuzz target asserts about what a reader
// accepted; when it fails the target aborts, which libFuzzer reports as a
// crash with the input that caused it.
#ifndef DLSPEED_FUZZ_FUZZ_CHECK_H_
#define DLSPEED_FUZZ_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(condition)                                                           \
  do {                                                                                  \
    if (!(condition)) {                                                                 \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", __FILE__, __LINE__, #condition); \
      std::abort();                                                                     \
    }                                                                                   \
  } while (0)

#endif  // DLSPEED_FUZZ_FUZZ_CHECK_H_
