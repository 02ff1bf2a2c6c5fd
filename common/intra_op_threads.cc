#include "common/intra_op_threads.h"

#include <dlfcn.h>

#include <ATen/Parallel.h>

namespace dlspeed {

bool UseOneIntraOpThreadHere() {
  // OpenMP's own setter, from the OpenMP runtime LibTorch loaded (looked up
  // rather than linked, so that this cannot bring in a second runtime).
  using SetNumThreads = void (*)(int);
  static const auto set_num_threads = reinterpret_cast<SetNumThreads>(dlsym(RTLD_DEFAULT, "omp_set_num_threads"));
  if (set_num_threads == nullptr) return false;
  // ATen sizes each thread's team once, on the thread's first call into it;
  // have that happen now, or it would undo the setting below later.
  at::get_num_threads();
  set_num_threads(1);  // OpenMP keeps this per thread
  return at::get_num_threads() == 1;
}

}  // namespace dlspeed
