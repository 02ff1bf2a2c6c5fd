// A gtest main for tests that need real collectives: run directly, the test
// binary starts kTestRanks copies of itself with the project's launcher, each
// joins a Gloo group, and each runs every test in the same order, so that the
// ranks' collectives pair up. Only rank 0 writes the XML report.
//
//   TEST(MyTest, AveragesAcrossRanks) {
//     dlspeed::ProcessGroup* group = dlspeed::TestProcessGroup();
//     ASSERT_NE(group, nullptr);
//     ... group->rank(), group->backend() ...
//   }
#ifndef DLSPEED_COMMON_DISTRIBUTED_TWO_RANK_TEST_MAIN_H_
#define DLSPEED_COMMON_DISTRIBUTED_TWO_RANK_TEST_MAIN_H_

#include "common/distributed/process_group.h"

namespace dlspeed {

inline constexpr int kTestRanks = 2;

// This rank's group, made by the main before the tests run.
ProcessGroup* TestProcessGroup();

}  // namespace dlspeed

#endif  // DLSPEED_COMMON_DISTRIBUTED_TWO_RANK_TEST_MAIN_H_
