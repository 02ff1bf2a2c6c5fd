// How this process allocates host (CPU) memory. LibTorch's CPU tensors come
// from glibc's malloc, which maps every large block (from 128 KB, rising to
// 32 MB at most) straight from the kernel and unmaps it when it is freed, so a
// forward pass page-faults its large activations in afresh every call. On the
// 2-core VM of DESIGN.md that cost RoBERTa-base's int8 forward at batch 32
// about a quarter of its time. Linking this library keeps freed blocks in the
// heap instead (glibc's M_MMAP_MAX 0 and a 2 GB M_TRIM_THRESHOLD, set before
// main), as a caching allocator would: steady-state steps reuse resident
// memory, and the process keeps its peak footprint until it exits.
// The limit: a thread other than the main one allocates from an arena of its
// own, whose heaps are at most 64 MB, so a single block larger than that made
// on such a thread (resnet_dp's CPU replica threads, with ResNet-50 batches)
// is still mapped and unmapped each time; M_MMAP_MAX does not reach it.
//
// DLSPEED_MALLOC=default in the environment leaves glibc's defaults, e.g. to
// measure the difference. Every record names the policy in effect:
//   record["host_malloc"] = dlspeed::HostMallocPolicy();
#ifndef DLSPEED_COMMON_HOST_MALLOC_H_
#define DLSPEED_COMMON_HOST_MALLOC_H_

#include <string>

namespace dlspeed {

// "heap-cached" (the settings above are in effect), "glibc-default"
// (DLSPEED_MALLOC=default) or "not-glibc".
std::string HostMallocPolicy();

}  // namespace dlspeed

#endif  // DLSPEED_COMMON_HOST_MALLOC_H_
