// Keeps ATen's CPU operators on one thread when they are called from a
// background thread, such as a data loader's worker.
//
// ATen runs its CPU operators on OpenMP, and every thread that calls one gets
// a team of its own, as large as the main thread's. Each team's threads spin
// for a while after every operator, so a loader's two workers on a two-core
// machine kept four more threads busy beside the two doing the training step
// (resnet_single's CPU step at batch 32: 63-70 ms without workers, 85-94 ms
// with one, on 2026-11-27). A worker that builds whole batches in the
// background needs no team: calling this first gives it none.
//
//   std::thread worker([] {
//     dlspeed::UseOneIntraOpThreadHere();
//     ...  // at:: calls run on this thread alone
//   });
#ifndef DLSPEED_COMMON_INTRA_OP_THREADS_H_
#define DLSPEED_COMMON_INTRA_OP_THREADS_H_

namespace dlspeed {

// From now on, ATen operators called on this thread run on it alone. Other
// threads keep their settings. Returns false where LibTorch does not use
// OpenMP (then nothing changes).
bool UseOneIntraOpThreadHere();

}  // namespace dlspeed

#endif  // DLSPEED_COMMON_INTRA_OP_THREADS_H_
