#include "common/training_stats.h"

#include <gtest/gtest.h>

namespace dlspeed {
namespace {

TEST(PlanEpochsTest, AFreshRunTimesEveryEpochButTheFirst) {
  const EpochPlan plan = PlanEpochs(/*epochs=*/3, /*steps_per_epoch=*/10);
  EXPECT_EQ(plan.first_epoch, 0);
  EXPECT_EQ(plan.first_step, 0);
  EXPECT_FALSE(plan.Timed(0));
  EXPECT_TRUE(plan.Timed(1));
  EXPECT_TRUE(plan.Timed(2));
  EXPECT_DOUBLE_EQ(plan.WholeEpochSeconds(1, 4.0), 4.0);
}

TEST(PlanEpochsTest, ASingleEpochIsTimed) {
  const EpochPlan plan = PlanEpochs(/*epochs=*/1, /*steps_per_epoch=*/10);
  EXPECT_TRUE(plan.Timed(0));
  EXPECT_DOUBLE_EQ(plan.WholeEpochSeconds(0, 4.0), 4.0);
}

TEST(PlanEpochsTest, TheRestOfAResumedEpochIsLeftOutWhenLaterOnesRun) {
  const EpochPlan plan = PlanEpochs(/*epochs=*/3, /*steps_per_epoch=*/10, /*start_epoch=*/1, /*start_step=*/4);
  EXPECT_EQ(plan.first_epoch, 1);
  EXPECT_EQ(plan.first_step, 4);
  EXPECT_FALSE(plan.Timed(1));
  EXPECT_TRUE(plan.Timed(2));
}

TEST(PlanEpochsTest, ACheckpointAfterAnEpochsLastStepStartsTheNext) {
  const EpochPlan plan = PlanEpochs(/*epochs=*/3, /*steps_per_epoch=*/10, /*start_epoch=*/0, /*start_step=*/10);
  EXPECT_EQ(plan.first_epoch, 1);
  EXPECT_EQ(plan.first_step, 0);
  EXPECT_FALSE(plan.Timed(1));
  EXPECT_TRUE(plan.Timed(2));
}

TEST(PlanEpochsTest, TheRestOfTheLastEpochCountsAsAWholeEpochsTime) {
  // Resumed with 4 of the last epoch's 10 steps done: the 6 steps run in 3 s
  // stand for a 5 s epoch, not a 3 s one.
  const EpochPlan plan = PlanEpochs(/*epochs=*/3, /*steps_per_epoch=*/10, /*start_epoch=*/2, /*start_step=*/4);
  EXPECT_TRUE(plan.Timed(2));
  EXPECT_DOUBLE_EQ(plan.WholeEpochSeconds(2, 3.0), 5.0);
}

}  // namespace
}  // namespace dlspeed
