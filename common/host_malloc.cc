#include "common/host_malloc.h"

#include <cstdlib>
#include <cstring>
#include <limits>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace dlspeed {
namespace {

const char* ApplyPolicy() {
#if defined(__GLIBC__)
  const char* choice = std::getenv("DLSPEED_MALLOC");
  if (choice != nullptr && std::strcmp(choice, "default") == 0) return "glibc-default";
  // mallopt returns 1 on success; unless both settings took, say "glibc-default".
  const bool no_mmap = mallopt(M_MMAP_MAX, 0) == 1;
  const bool no_trim = mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max()) == 1;  // ~2 GB
  return no_mmap && no_trim ? "heap-cached" : "glibc-default";
#else
  return "not-glibc";
#endif
}

// Applied once, by whichever comes first: the initializer below or a call
// from another file's static initializer (a benchmark's registration).
const char* Policy() {
  static const char* const policy = ApplyPolicy();
  return policy;
}

// Before main, so that the first tensors already follow the policy.
const char* const kApplied = Policy();

}  // namespace

std::string HostMallocPolicy() { return Policy(); }

}  // namespace dlspeed
